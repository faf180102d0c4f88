"""Build noisy instruction datasets with known noise labels, as in the CLEAR paper.

SQuAD-N (paper, Sec. 4): a fraction of training responses is replaced by a random *other*
sentence of the same context; test responses stay clean; train and test are split by article
so no paragraph is shared.
GSM8K-N: a fraction of training solutions is replaced by another question's worked solution
(fluent and plausible, but with the wrong final number); test questions come from GSM8K's own
test split. Noise labels go to a separate file that curation never reads.

Both builders also make *plausible* errors (`noise="plausible"`), the kind real annotators and
models make and the kind random sentences do not test: SQuAD gets another answer-like span of the
same paragraph (another question's gold answer there, of the same kind and similar length);
GSM8K gets its own solution with one arithmetic step altered and the error carried through to a
wrong final number.

The source files ship with the repository (`data/sources/`, see its README): every builder runs
from a fresh clone.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clearcurate.core.confidence import normalize_answer, token_f1
from clearcurate.core.records import Record, read_jsonl
from clearcurate.core.verify import evaluate

SOURCES = Path(__file__).resolve().parents[3] / "data" / "sources"  # the repository's data/sources
SQUAD_SOURCE = SOURCES / "squad-v1.1-dev.jsonl.gz"
GSM8K_TRAIN_SOURCE = SOURCES / "gsm8k-train.jsonl.gz"
GSM8K_TEST_SOURCE = SOURCES / "gsm8k-test.jsonl.gz"
SQUAD_NOISE = ("sentence", "plausible")
GSM8K_NOISE = ("swap", "plausible")

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
    noise: str = "sentence"  # sentence (the paper's) | plausible (another answer-like span of the paragraph)

    def __post_init__(self) -> None:
        if self.noise not in SQUAD_NOISE:
            raise ValueError(f"SQuAD-N noise must be one of {SQUAD_NOISE}, got {self.noise!r}")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences (a regex is enough for Wikipedia prose)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _noise_sentence(context: str, answers: list[str], rng: random.Random) -> str | None:
    """A sentence of the context that contains none of the gold answers, or None."""
    candidates = [s for s in split_sentences(context) if not any(a in s for a in answers)]
    return rng.choice(candidates) if candidates else None


def _span_kind(text: str) -> str:
    """A coarse answer type: numbers, names (capitalised), or other text."""
    if any(ch.isdigit() for ch in text):
        return "number"
    return "name" if text[:1].isupper() else "text"


def plausible_span(answers: Sequence[str], paragraph_answers: Sequence[str], rng: random.Random) -> str | None:
    """A wrong but plausible answer: another question's gold answer in the same paragraph.

    It is a real answer-like span of the context (what a careless annotator or a reader model
    picks), of the same kind as the gold answer (number / name / text), and
    the closest in length; it never overlaps a gold answer (token F1 < 0.5, no containment).
    """
    gold = [normalize_answer(a) for a in answers]

    def wrong(span: str) -> bool:
        norm = normalize_answer(span)
        return bool(norm) and not any(norm in g or g in norm or token_f1(span, a) >= 0.5 for g, a in zip(gold, answers))

    spans = sorted({s for s in paragraph_answers if wrong(s)})
    if not spans:
        return None
    kind, length = _span_kind(answers[0]), len(answers[0].split())
    same_kind = [s for s in spans if _span_kind(s) == kind]
    if not same_kind:
        return None
    best = min(abs(len(s.split()) - length) for s in same_kind)
    return rng.choice([s for s in same_kind if abs(len(s.split()) - length) == best])


def build_squad_n(
    source: str | Path, cfg: SquadNConfig, only_titles: set[str] | None = None, exclude_ids: set[str] = frozenset()
) -> tuple[list[Record], list[Record], list[Record]]:
    """Return (train rows, test rows, noise labels) built from the flat SQuAD dev JSONL; with `only_titles` and
    `exclude_ids`, from those articles' questions other than those (a fresh set, on rows earlier sets never used)."""
    rng = random.Random(cfg.seed)
    rows = read_jsonl(source)
    eligible = [
        r
        for r in rows
        if len(r["context"].split()) <= cfg.max_context_words
        and len(split_sentences(r["context"])) >= cfg.min_sentences
        and (only_titles is None or r["title"] in only_titles) and r["id"] not in exclude_ids
    ]
    test_titles = squad_test_titles(eligible, cfg, rng)
    train_src = _pick_squad([r for r in eligible if r["title"] not in test_titles], cfg.n_train, cfg.max_questions_per_paragraph, rng)
    test_src = _pick_squad([r for r in eligible if r["title"] in test_titles], cfg.n_test, cfg.max_questions_per_paragraph, rng)
    train, labels = squad_noisy_rows(train_src, rows, cfg.noise_rate, cfg.noise, rng)
    return train, [_squad_record(r) for r in test_src], labels


def squad_test_titles(eligible: Sequence[Record], cfg: SquadNConfig, rng: random.Random) -> set[str]:
    """The articles held out for testing (a seeded share of the eligible articles)."""
    titles = sorted({r["title"] for r in eligible})
    rng.shuffle(titles)
    return set(titles[: max(1, round(len(titles) * cfg.test_article_share))])


def _pick_squad(pool: list[Record], n: int, per_paragraph_max: int, rng: random.Random) -> list[Record]:
    """n questions from the pool in a seeded order, at most `per_paragraph_max` per paragraph."""
    pool = pool[:]
    rng.shuffle(pool)
    per_paragraph: dict[str, int] = {}
    chosen: list[Record] = []
    for r in pool:
        if per_paragraph.get(r["context"], 0) >= per_paragraph_max:
            continue
        per_paragraph[r["context"]] = per_paragraph.get(r["context"], 0) + 1
        chosen.append(r)
        if len(chosen) == n:
            return chosen
    raise ValueError(f"only {len(chosen)} eligible questions, {n} requested")


def _squad_record(r: Record) -> Record:
    return {
        "id": r["id"],
        "prompt": SQUAD_PROMPT.format(context=r["context"], question=r["question"]),
        "response": r["answers"][0],
        "answers": sorted(set(r["answers"])),
        "title": r["title"],
    }


def squad_noisy_rows(
    train_src: Sequence[Record], all_rows: Sequence[Record], noise_rate: float, noise: str, rng: random.Random
) -> tuple[list[Record], list[Record]]:
    """Training records with `noise_rate` of the responses replaced, and the noise labels.

    `all_rows` is the whole source: a paragraph's other questions supply the plausible spans.
    """
    paragraph_answers: dict[str, list[str]] = defaultdict(list)
    for r in all_rows:
        paragraph_answers[r["context"]].extend(r["answers"])
    train = [_squad_record(r) for r in train_src]
    n_noisy = round(noise_rate * len(train))
    labels: list[Record] = []
    noisy_ids: set[str] = set()
    for idx in rng.sample(range(len(train)), len(train)):
        if len(noisy_ids) == n_noisy:
            break
        src = train_src[idx]
        if noise == "sentence":
            wrong = _noise_sentence(src["context"], src["answers"], rng)
        else:
            wrong = plausible_span(src["answers"], paragraph_answers[src["context"]], rng)
        if wrong is None:
            continue
        labels.append({"id": train[idx]["id"], "noisy": True, "clean_response": train[idx]["response"]})
        train[idx]["response"] = wrong
        noisy_ids.add(train[idx]["id"])
    if len(noisy_ids) < n_noisy:
        raise ValueError(f"only {len(noisy_ids)} rows can take {noise} noise, {n_noisy} requested")
    labels += [{"id": r["id"], "noisy": False, "clean_response": r["response"]} for r in train if r["id"] not in noisy_ids]
    order = {r["id"]: i for i, r in enumerate(train)}
    labels.sort(key=lambda x: order[x["id"]])
    # The training file carries only what a user's real data would: no answers list, no labels.
    return [{k: v for k, v in r.items() if k != "answers"} for r in train], labels


@dataclass(frozen=True)
class Gsm8kNConfig:
    """Size and noise of a GSM8K-N build; short solutions keep CPU training and decoding cheap."""

    n_train: int = 100
    n_test: int = 50
    noise_rate: float = 0.2
    seed: int = 0
    max_solution_words: int = 60
    noise: str = "swap"  # swap (another question's solution) | plausible (one step of its own solution altered)

    def __post_init__(self) -> None:
        if self.noise not in GSM8K_NOISE:
            raise ValueError(f"GSM8K-N noise must be one of {GSM8K_NOISE}, got {self.noise!r}")


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


_EQUATION = re.compile(r"(?P<expr>[\d$.,()+\-*/x× ]*\d[\d$.,()+\-*/x× ]*?)\s*=\s*\$?(?P<result>\d[\d,]*(?:\.\d+)?)")
_NUMBER = re.compile(r"(?<![\d.])\d[\d,]*(?:\.\d+)?(?![\d.])")


def _arith(expr: str) -> float | None:
    """The value of an expression as this builder finds them (x, spaced or not, for times)."""
    return evaluate(expr.replace("x", "*"))


def _fmt(x: float) -> str:
    return str(round(x)) if abs(x - round(x)) < 1e-9 else f"{x:.2f}".rstrip("0").rstrip(".")


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _slip(value: float, rng: random.Random) -> float:
    """A wrong value a careless solver could write: off by a little, or by a common factor."""
    if value == int(value):
        step = max(1, round(abs(value) * rng.choice((0.1, 0.2, 0.5))))
        wrong = value + rng.choice((-1, 1)) * step
        return wrong if wrong > 0 or value <= 0 else value + step
    return round(value * rng.choice((0.5, 1.5, 2.0)), 2)


def alter_step(solution: str, rng: random.Random) -> str | None:
    """The solution with one arithmetic step's result changed and the slip carried through.

    Later steps that use the changed value are recomputed from their own arithmetic, so the
    solution stays internally consistent (as a model's wrong solution is) and ends in a wrong
    final number. None when no step can be altered so that the final number changes.
    """
    if "####" not in solution:
        return None
    body, final = solution.rsplit("####", 1)
    lines = body.rstrip("\n").split("\n")
    steps = [(i, m) for i, line in enumerate(lines) for m in _EQUATION.finditer(line)]
    for i, first in rng.sample(steps, len(steps)):
        changed: dict[str, str] = {}  # old number text -> new number text
        out = lines[:]
        old = first.group("result")
        new = _fmt(_slip(_num(old), rng))
        out[i] = out[i][: first.start("result")] + new + out[i][first.end("result") :]
        changed[_fmt(_num(old))] = new
        for j in range(i + 1, len(out)):
            line = out[j]
            for m in reversed(list(_EQUATION.finditer(line))):
                expr = _NUMBER.sub(lambda n: changed.get(_fmt(_num(n.group())), n.group()), m.group("expr"))  # noqa: B023 - used at once
                if expr == m.group("expr"):
                    continue
                result = _arith(expr)
                new_result = _fmt(result) if result is not None else m.group("result")
                if result is not None and new_result != _fmt(_num(m.group("result"))):
                    changed[_fmt(_num(m.group("result")))] = new_result
                line = line[: m.start()] + expr + line[m.end("expr") : m.start("result")] + new_result + line[m.end("result") :]
            out[j] = line
        final_old = _fmt(_num(final.strip())) if _NUMBER.fullmatch(final.strip()) else None
        if final_old is not None and final_old in changed:
            return "\n".join(out) + "\n#### " + changed[final_old]
    return None


def build_gsm8k_n(
    train_source: str | Path, test_source: str | Path, cfg: Gsm8kNConfig
) -> tuple[list[Record], list[Record], list[Record]]:
    """Return (train rows, test rows, noise labels) from GSM8K's train and test JSONL files."""
    rng = random.Random(cfg.seed)
    train = _pick_gsm8k(train_source, "train", cfg.n_train, cfg.max_solution_words, rng)
    test = _pick_gsm8k(test_source, "test", cfg.n_test, cfg.max_solution_words, rng)
    train, labels = gsm8k_noisy_rows(train, cfg.noise_rate, cfg.noise, rng)
    return train, test, labels


def gsm8k_rows(source: str | Path, split: str) -> list[Record]:
    """Every row of a GSM8K split as a training record (id `gsm8k-SPLIT-INDEX`, calculator annotations removed)."""
    return [_gsm8k_record(r, i, split) for i, r in enumerate(read_jsonl(source))]


def _pick_gsm8k(
    source: str | Path, split: str, n: int, max_words: int, rng: random.Random, exclude: set[str] = frozenset()
) -> list[Record]:
    rows = [r for r in gsm8k_rows(source, split) if len(r["response"].split()) <= max_words and r["id"] not in exclude]
    if len(rows) < n:
        raise ValueError(f"{source}: only {len(rows)} short enough solutions, {n} requested")
    return rng.sample(rows, n)


def gsm8k_noisy_rows(train: list[Record], noise_rate: float, noise: str, rng: random.Random) -> tuple[list[Record], list[Record]]:
    """Training records with `noise_rate` of the solutions made wrong, and the noise labels."""
    n_noisy = round(noise_rate * len(train))
    clean = [r["response"] for r in train]
    wrong: dict[int, str] = {}
    if noise == "swap":
        for i in sorted(rng.sample(range(len(train)), n_noisy)):
            donors = [j for j in range(len(train)) if train[j]["answers"] != train[i]["answers"]]
            wrong[i] = clean[rng.choice(donors)]
    else:
        for i in rng.sample(range(len(train)), len(train)):
            if len(wrong) == n_noisy:
                break
            if (altered := alter_step(clean[i], rng)) is not None:
                wrong[i] = altered
        if len(wrong) < n_noisy:
            raise ValueError(f"only {len(wrong)} solutions have a step that can be altered, {n_noisy} requested")
    labels: list[Record] = []
    for i, row in enumerate(train):
        if i in wrong:
            row["response"] = wrong[i]
        labels.append({"id": row["id"], "noisy": i in wrong, "clean_response": clean[i]})
    return [{k: v for k, v in r.items() if k != "answers"} for r in train], labels


def build_squad_dev(
    source: str | Path, cfg: SquadNConfig, exclude_titles: set[str], exclude_ids: set[str]
) -> tuple[list[Record], list[Record]]:
    """Development rows (and noise labels) for choosing settings: never a benchmark's test article or training row.

    Drawn like `build_squad_n`'s training rows (cfg: size, noise, paragraph limits) from the
    articles and questions the caller excludes nothing of, so a setting chosen here is never
    chosen on the questions a benchmark reports.
    """
    rng = random.Random(f"dev-{cfg.seed}")
    rows = read_jsonl(source)
    pool = [
        r
        for r in rows
        if r["title"] not in exclude_titles
        and r["id"] not in exclude_ids
        and len(r["context"].split()) <= cfg.max_context_words
        and len(split_sentences(r["context"])) >= cfg.min_sentences
    ]
    dev_src = _pick_squad(pool, cfg.n_train, cfg.max_questions_per_paragraph, rng)
    return squad_noisy_rows(dev_src, rows, cfg.noise_rate, cfg.noise, rng)


def build_gsm8k_dev(train_source: str | Path, cfg: Gsm8kNConfig, exclude_ids: set[str]) -> tuple[list[Record], list[Record]]:
    """Development rows from GSM8K's train split, never a benchmark's training row (test questions are never used)."""
    rng = random.Random(f"dev-{cfg.seed}")
    dev = _pick_gsm8k(train_source, "train", cfg.n_train, cfg.max_solution_words, rng, exclude=exclude_ids)
    return gsm8k_noisy_rows(dev, cfg.noise_rate, cfg.noise, rng)


def squad_split(source: str | Path, cfg: SquadNConfig) -> tuple[set[str], set[str]]:
    """(test articles, training ids) of a SQuAD-N build: what development data must avoid."""
    train, _, _ = build_squad_n(source, cfg)
    return squad_test_titles_of(source, cfg), {r["id"] for r in train}


def squad_test_titles_of(source: str | Path, cfg: SquadNConfig) -> set[str]:
    """Every article a SQuAD-N build may test on (not only those its test questions came from)."""
    rows = read_jsonl(source)
    eligible = [
        r for r in rows if len(r["context"].split()) <= cfg.max_context_words and len(split_sentences(r["context"])) >= cfg.min_sentences
    ]
    return squad_test_titles(eligible, cfg, random.Random(cfg.seed))
