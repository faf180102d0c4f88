"""Sets of natural errors: wrong answers that real models wrote and people labelled (issue 27).

Every other set of the benchmark gets its noise from this project's code (a random sentence, a
swapped response). These two get it from real writers:

- **TruthfulQA-judged** (`data/sources/truthfulqa-judged.jsonl.gz`): answers to TruthfulQA's 817
  questions, judged true/false and informative by people. A clean row is a truthful, informative
  answer (written by a GPT-3-family model or one of the dataset's own reference answers); a noisy
  row is an informative answer a model wrote that people judged false: the misconceptions a model
  learned from the web. Evasive answers ("I have no comment", even the 100 labelled informative) and the
  dataset's hand-written false references are left out. Answers are short (a sentence), so the `short` preset applies.
- **BIG-Bench-Mistake** (`data/sources/big-bench-mistake-*.jsonl.gz`): PaLM 2 chain-of-thought traces
  for five BIG-Bench tasks. A clean row is a trace in which people found no wrong step and whose
  answer is right; a noisy row has a wrong step (`mistake_index`) or a wrong answer. The traces are
  worked reasoning (the `free_form` preset), each row has its `task`. The prompt is the task's input
  after BIG-Bench's own instruction for the three tasks whose input is bare (`TASK_INSTRUCTIONS`).

Both are split once by a hash of the question (TruthfulQA's question, the task input): half the
questions are development rows, where settings may be chosen; the other half are test rows for the
benchmark (issue 29), which no development script reads. Sets are drawn per question in rounds
(every question gives a row before any gives a second), with noisy rows at the set's noise rate
within every task, so that neither the question mix nor the task mix tells noisy rows apart.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from collections.abc import Iterator, Set
from dataclasses import dataclass
from pathlib import Path

from clearcurate.core.records import Record, content_id

SOURCES = Path(__file__).resolve().parents[2] / "data" / "sources"
TRUTHFULQA_SOURCE = SOURCES / "truthfulqa-judged.jsonl.gz"
BBM_TASKS = ("dyck_languages", "logical_deduction", "multistep_arithmetic", "tracking_shuffled_objects", "word_sorting")
# BIG-Bench's instruction for the tasks whose input is only the sequence, list or expression.
TASK_INSTRUCTIONS = {
    "dyck_languages": "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: {input}",
    "word_sorting": "Sort the following words alphabetically: List: {input}",
    "multistep_arithmetic": "Calculate: {input}",
}
PARTS = ("dev", "test")
KINDS = ("truthfulqa", "bbm")


def bbm_source(task: str) -> Path:
    return SOURCES / f"big-bench-mistake-{task}.jsonl.gz"


def part_of(question: str) -> str:
    """The part a question belongs to, fixed by a hash of its text: half the questions are development rows."""
    fraction = int(hashlib.sha256(f"natural-split:{question}".encode()).hexdigest()[:8], 16) / 0x100000000
    return "dev" if fraction < 0.5 else "test"


@dataclass(frozen=True)
class NaturalSpec:
    """One set: which source, which part, how many rows and which share of them wrong."""

    name: str
    kind: str  # truthfulqa | bbm
    n_rows: int
    noise_rate: float = 0.2
    part: str = "dev"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.part not in PARTS or not 0 < self.noise_rate < 1 or self.n_rows < 10:
            raise ValueError(f"bad natural set spec: {self}")


def _lines(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _key(text: str) -> str:
    """Answers that differ only in case, spacing or punctuation are one answer."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def candidates(kind: str, part: str, exclude_ids: Set[str] = frozenset()) -> dict[str, list[Record]]:
    """Every usable row of a source's part, grouped by question (the group also names the task), each
    with its label: `noisy` and, for the record, who wrote it; less the rows whose id is in `exclude_ids`
    (a set drawn again, on rows an earlier set never used)."""
    groups: dict[str, list[Record]] = {}
    if kind == "truthfulqa":
        seen: set[tuple[str, str]] = set()
        for r in _lines(TRUTHFULQA_SOURCE):
            if part_of(r["question"]) != part or not r["informative"] or (not r["truthful"] and r["reference_answer"]):
                continue
            if _key(r["answer"]) == "i have no comment":  # evasive: 100 of these are labelled informative, as answers to questions
                continue  # about the model itself; a non-answer is neither a good training row nor a natural error
            if (r["question"], _key(r["answer"])) in seen:
                continue
            seen.add((r["question"], _key(r["answer"])))
            groups.setdefault(r["question"], []).append({
                "prompt": r["question"], "response": r["answer"], "category": r["category"], "task": "truthfulqa",
                "noisy": not r["truthful"], "writer": "reference" if r["reference_answer"] else "model"})
    else:
        for task in BBM_TASKS:
            for r in _lines(bbm_source(task)):
                if part_of(r["input"]) != part:
                    continue
                prompt = TASK_INSTRUCTIONS.get(task, "{input}").format(input=r["input"])
                wrong = r["mistake_index"] is not None or r["answer"] != r["target"]
                groups.setdefault(f"{task}:{r['input']}", []).append({
                    "prompt": prompt, "response": "\n".join(r["steps"]), "task": task, "noisy": wrong,
                    "writer": "model", "mistake_index": r["mistake_index"]})
    if not exclude_ids:
        return groups
    left = {q: [r for r in rows if content_id(r["prompt"], r["response"]) not in exclude_ids] for q, rows in groups.items()}
    return {q: rows for q, rows in left.items() if rows}


def build(spec: NaturalSpec, exclude_ids: Set[str] = frozenset()) -> tuple[list[Record], dict[str, Record]]:
    """The set's rows (`id`, `prompt`, `response`, `task`, TruthfulQA's `category`) and their labels by id.

    Per task, `noise_rate` of the rows are noisy. Questions are taken in a seeded order, in rounds:
    each round gives every question at most one more row, so a set uses as many questions as it can.
    Raises when the part has too few rows of either label.
    """
    groups = candidates(spec.kind, spec.part, exclude_ids)
    rng = random.Random(f"{spec.name}:{spec.seed}")
    by_task: dict[str, list[str]] = {}
    for question in sorted(groups):
        by_task.setdefault(groups[question][0]["task"], []).append(question)
    room = {task: _room([r for q in questions for r in groups[q]], spec.noise_rate) for task, questions in by_task.items()}
    if spec.n_rows > sum(room.values()):
        raise ValueError(f"{spec.name}: {spec.n_rows} rows wanted; the {spec.part} part holds {sum(room.values())} at "
                         f"noise rate {spec.noise_rate}")
    # Each task's share of the rows is its share of the room (largest remainders, so the shares sum to n_rows).
    exact = {task: spec.n_rows * room[task] / sum(room.values()) for task in sorted(room)}
    n_task = {task: int(x) for task, x in exact.items()}
    for task in sorted(exact, key=lambda t: int(exact[t]) - exact[t])[: spec.n_rows - sum(n_task.values())]:
        n_task[task] += 1
    chosen: list[Record] = []
    for task, questions in sorted(by_task.items()):
        chosen += _draw(groups, questions, n_task[task], spec.noise_rate, rng, f"{spec.name}/{task}")
    rows, labels = [], {}
    for c in chosen:
        row_id = content_id(c["prompt"], c["response"])
        rows.append({"id": row_id, "prompt": c["prompt"], "response": c["response"], "task": c["task"],
                     **({"category": c["category"]} if "category" in c else {})})
        labels[row_id] = {"id": row_id, "noisy": c["noisy"], "writer": c["writer"], "task": c["task"]}
    rng.shuffle(rows)
    return rows, labels


def _draw(groups: dict[str, list[Record]], questions: list[str], n: int, noise_rate: float, rng: random.Random,
          where: str) -> list[Record]:
    """`n` rows of these questions, round(n * noise_rate) of them noisy, one per question per round."""
    n_noisy = round(n * noise_rate)
    quota = {True: n_noisy, False: n - n_noisy}
    pools = {q: {flag: rng.sample(ls, len(ls)) for flag in (True, False) for ls in [[r for r in groups[q] if r["noisy"] is flag]]}
             for q in questions}
    for flag in (True, False):
        have = sum(len(p[flag]) for p in pools.values())
        if have < quota[flag]:
            raise ValueError(f"{where}: {quota[flag]} {'noisy' if flag else 'clean'} rows wanted, the part has {have}")
    order = rng.sample(questions, len(questions))
    out: list[Record] = []
    while quota[True] or quota[False]:
        for q in order:
            # the label that is furthest behind its share goes first, so both spread over the questions
            want = [f for f in (True, False) if quota[f] and pools[q][f]]
            if not want:
                continue
            flag = max(want, key=lambda f: quota[f] / (n_noisy if f else n - n_noisy))
            row = pools[q][flag].pop()
            if not any(ch.isalnum() for ch in row["response"]):
                continue  # one TruthfulQA answer is empty, yet labelled truthful and informative: never a row
            out.append(row)
            quota[flag] -= 1
            if not (quota[True] or quota[False]):
                break
    return out


def _room(rows: list[Record], noise_rate: float) -> int:
    """The most rows these candidates give at this noise rate."""
    noisy = sum(r["noisy"] for r in rows)
    return min(int((len(rows) - noisy) / (1 - noise_rate)), int(noisy / noise_rate))


def largest(kind: str, part: str = "dev", noise_rate: float = 0.2) -> int:
    """The most rows a set of this source's part can have at this noise rate (every task at that rate)."""
    by_task: dict[str, list[Record]] = {}
    for group in candidates(kind, part).values():
        by_task.setdefault(group[0]["task"], []).extend(group)
    return sum(_room(rows, noise_rate) for rows in by_task.values())
