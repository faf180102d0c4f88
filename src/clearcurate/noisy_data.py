"""Build noisy instruction datasets with known noise labels, as in the CLEAR paper.

SQuAD-N (paper, Sec. 4): a fraction of training responses is replaced by a random *other*
sentence of the same context; test responses stay clean; train and test are split by article
so no paragraph is shared.
GSM8K-N: a fraction of training solutions is replaced by another question's worked solution
(fluent and plausible, but with the wrong final number); test questions come from GSM8K's own
test split. Noise labels go to a separate file that curation never reads.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from clearcurate.records import Record, read_jsonl

GSM8K_PROMPT = "Solve the math word problem step by step. End with the final number after ####.\n\n{question}"
_CALCULATOR = re.compile(r"<<[^>]*>>")
SQUAD_PROMPT = (
    "Answer the question with a short span copied from the context.\n\n"
    "Context: {context}\n\nQuestion: {question}"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True)
class SquadNConfig:
    """Size and noise of a SQuAD-N build; the defaults are the bundled CPU demo."""

    n_train: int = 100
    n_test: int = 90  # most of the 92 eligible questions of the test articles: a 1-question step is 1.1 points
    noise_rate: float = 0.2
    seed: int = 0
    max_context_words: int = 80  # short paragraphs keep a CPU demo within minutes
    min_sentences: int = 3
    max_questions_per_paragraph: int = 2
    test_article_share: float = 0.3


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences (a regex is enough for Wikipedia prose)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _noise_sentence(context: str, answers: list[str], rng: random.Random) -> str | None:
    """A sentence of the context that contains none of the gold answers, or None."""
    candidates = [s for s in split_sentences(context) if not any(a in s for a in answers)]
    return rng.choice(candidates) if candidates else None


def build_squad_n(source: str | Path, cfg: SquadNConfig) -> tuple[list[Record], list[Record], list[Record]]:
    """Return (train rows, test rows, noise labels) built from the flat SQuAD dev JSONL."""
    rng = random.Random(cfg.seed)
    rows = read_jsonl(source)
    eligible = [
        r
        for r in rows
        if len(r["context"].split()) <= cfg.max_context_words
        and len(split_sentences(r["context"])) >= cfg.min_sentences
    ]
    titles = sorted({r["title"] for r in eligible})
    rng.shuffle(titles)
    n_test_titles = max(1, round(len(titles) * cfg.test_article_share))
    test_titles = set(titles[:n_test_titles])

    def pick(pool: list[Record], n: int) -> list[Record]:
        pool = pool[:]
        rng.shuffle(pool)
        per_paragraph: dict[str, int] = {}
        chosen: list[Record] = []
        for r in pool:
            if per_paragraph.get(r["context"], 0) >= cfg.max_questions_per_paragraph:
                continue
            per_paragraph[r["context"]] = per_paragraph.get(r["context"], 0) + 1
            chosen.append(r)
            if len(chosen) == n:
                return chosen
        raise ValueError(f"only {len(chosen)} eligible questions, {n} requested")

    train_src = pick([r for r in eligible if r["title"] not in test_titles], cfg.n_train)
    test_src = pick([r for r in eligible if r["title"] in test_titles], cfg.n_test)

    def to_record(r: Record) -> Record:
        return {
            "id": r["id"],
            "prompt": SQUAD_PROMPT.format(context=r["context"], question=r["question"]),
            "response": r["answers"][0],
            "answers": sorted(set(r["answers"])),
            "title": r["title"],
        }

    train = [to_record(r) for r in train_src]
    test = [to_record(r) for r in test_src]
    n_noisy = round(cfg.noise_rate * len(train))
    labels: list[Record] = []
    noisy_ids: set[str] = set()
    for idx in rng.sample(range(len(train)), len(train)):
        if len(noisy_ids) == n_noisy:
            break
        src = train_src[idx]
        sentence = _noise_sentence(src["context"], src["answers"], rng)
        if sentence is None:
            continue
        labels.append({"id": train[idx]["id"], "noisy": True, "clean_response": train[idx]["response"]})
        train[idx]["response"] = sentence
        noisy_ids.add(train[idx]["id"])
    labels += [{"id": r["id"], "noisy": False, "clean_response": r["response"]} for r in train if r["id"] not in noisy_ids]
    order = {r["id"]: i for i, r in enumerate(train)}
    labels.sort(key=lambda x: order[x["id"]])
    # The training file carries only what a user's real data would: no answers list, no labels.
    train = [{k: v for k, v in r.items() if k != "answers"} for r in train]
    return train, test, labels


@dataclass(frozen=True)
class Gsm8kNConfig:
    """Size and noise of a GSM8K-N build; short solutions keep CPU training and decoding cheap."""

    n_train: int = 100
    n_test: int = 50
    noise_rate: float = 0.2
    seed: int = 0
    max_solution_words: int = 60


def gsm8k_final_answer(solution: str) -> str:
    """The final number of a GSM8K solution (the text after ``####``)."""
    if "####" not in solution:
        raise ValueError(f"not a GSM8K solution (no '####'): {solution[:80]!r}")
    return solution.rsplit("####", 1)[1].strip().replace(",", "")


def _gsm8k_record(row: Record, index: int, split: str) -> Record:
    # The <<a*b=c>> calculator annotations are tooling for the original paper, not text to imitate.
    solution = _CALCULATOR.sub("", row["answer"]).strip()
    return {
        "id": f"gsm8k-{split}-{index}",
        "prompt": GSM8K_PROMPT.format(question=row["question"]),
        "response": solution,
        "answers": [gsm8k_final_answer(solution)],
    }


def build_gsm8k_n(
    train_source: str | Path, test_source: str | Path, cfg: Gsm8kNConfig
) -> tuple[list[Record], list[Record], list[Record]]:
    """Return (train rows, test rows, noise labels) from GSM8K's train and test JSONL files."""
    rng = random.Random(cfg.seed)

    def pick(source: str | Path, split: str, n: int) -> list[Record]:
        rows = [_gsm8k_record(r, i, split) for i, r in enumerate(read_jsonl(source))]
        rows = [r for r in rows if len(r["response"].split()) <= cfg.max_solution_words]
        if len(rows) < n:
            raise ValueError(f"{source}: only {len(rows)} short enough solutions, {n} requested")
        return rng.sample(rows, n)

    train = pick(train_source, "train", cfg.n_train)
    test = pick(test_source, "test", cfg.n_test)
    noisy_idx = set(rng.sample(range(len(train)), round(cfg.noise_rate * len(train))))
    clean = [r["response"] for r in train]
    labels: list[Record] = []
    for i, row in enumerate(train):
        if i in noisy_idx:
            donors = [j for j in range(len(train)) if train[j]["answers"] != row["answers"]]
            row["response"] = clean[rng.choice(donors)]
        labels.append({"id": row["id"], "noisy": i in noisy_idx, "clean_response": clean[i]})
    train = [{k: v for k, v in r.items() if k != "answers"} for r in train]
    return train, test, labels
