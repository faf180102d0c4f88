"""Noisy free-form instruction data with known labels: Dolly responses with realistic defects.

Most instruction data is free-form (explanations, lists, advice), and its errors are not wrong
spans: a response written for another instruction, a response cut off midway, a fluent response
with one number changed, an evasive non-answer. `build_dolly_n` injects these into human-written
Dolly responses (bundled in `data/sources/`, see its README), keeping the clean response in the
noise labels. Test rows are clean and carry no `answers`: they are scored as free-form text
(held-out loss, token F1 with the reference).

The rows are split once, by a hash of their id, into a benchmark pool and a development pool, so
settings chosen on development rows are never chosen on the rows a benchmark reports.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clearcurate.core.records import Record, read_jsonl

SOURCES = Path(__file__).resolve().parents[2] / "data" / "sources"
DOLLY_SOURCE = SOURCES / "dolly-15k-part.jsonl.gz"
DEFECTS = ("swap", "truncate", "number", "evasive")
DOLLY_NOISE = ("mixed", *DEFECTS)
POOLS = ("benchmark", "dev")
DEV_SHARE = 0.25  # of the source rows, by id hash: development only
SHORT_WORDS = 8  # core.curation's shortest length band
MIN_TRUNCATE_WORDS = 12  # shorter responses are not cut (half a short answer is another short answer)

# What an assistant says when it does not answer: fluent, polite and useless.
EVASIVE = (
    "That is a great question, and the answer depends on many factors. It is best to consult a reliable source.",
    "I am not sure about this one. There are different opinions, so you may want to look it up.",
    "There is no simple answer to that. It really depends on the situation and what you are looking for.",
    "This is a complex topic that people have discussed for a long time. I would recommend doing more research.",
    "I cannot say for certain. It would be best to ask an expert who knows more about this subject.",
    "Good question! There are many ways to think about it, and each has its own advantages and drawbacks.",
)
_ENDS_SENTENCE = re.compile(r"[.!?][\"')\]]*$")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w.]\d)")


@dataclass(frozen=True)
class DollyNConfig:
    """Size and noise of a Dolly-N build."""

    n_train: int = 100
    n_test: int = 60
    noise_rate: float = 0.2
    seed: int = 0
    noise: str = "mixed"  # mixed (each noisy row draws a defect that applies to it) | swap | truncate | number | evasive
    pool: str = "benchmark"  # benchmark | dev (disjoint row pools: settings are chosen on dev)
    min_words: int = 1
    max_words: int = 150  # long responses make a CPU benchmark slow
    # > 0: this many train rows are short answers (at most SHORT_WORDS words: a name, a number, a label),
    # which need not end a sentence; the rest as above with more than SHORT_WORDS words (issue 31: the
    # filter's removals by length band are measured on a set where short correct answers are common).
    short_rows: int = 0

    def __post_init__(self) -> None:
        if self.noise not in DOLLY_NOISE:
            raise ValueError(f"Dolly-N noise must be one of {DOLLY_NOISE}, got {self.noise!r}")
        if self.pool not in POOLS:
            raise ValueError(f"Dolly-N pool must be one of {POOLS}, got {self.pool!r}")
        if not 0.0 <= self.noise_rate <= 1.0:
            raise ValueError(f"noise_rate must be in [0, 1], got {self.noise_rate}")


def pool_of(row_id: str) -> str:
    """The pool a source row belongs to, fixed by its id (so every build agrees)."""
    fraction = int(hashlib.sha256(f"dolly-pool:{row_id}".encode()).hexdigest()[:8], 16) / 0x100000000
    return "dev" if fraction < DEV_SHARE else "benchmark"


def truncate(response: str, rng: random.Random) -> str | None:
    """The response cut off between 30% and 60% of its words, mid-sentence (None when too short)."""
    words = list(re.finditer(r"\S+", response))
    if len(words) < MIN_TRUNCATE_WORDS:
        return None
    cut = rng.randint(int(0.3 * len(words)), int(0.6 * len(words)))
    return response[: words[cut - 1].end()].rstrip(".,;:!?")  # the text as written, line breaks included


def _slip(value: int, rng: random.Random) -> int:
    """A plausible wrong number: off by a little, doubled or halved, or a digit changed."""
    choices = [value + d for d in (-2, -1, 1, 2, 10) if value + d >= 0] + [value * 2, max(1, value // 2)]
    if value >= 10:
        digits = str(value)
        i = rng.randrange(len(digits))
        new_digit = rng.choice([d for d in "0123456789" if d != digits[i] and not (i == 0 and d == "0")])
        choices.append(int(digits[:i] + new_digit + digits[i + 1 :]))
    wrong = [c for c in choices if c != value]
    return rng.choice(wrong)


def alter_number(response: str, rng: random.Random) -> str | None:
    """The response with one of its numbers changed to a plausible wrong one (None without a number)."""
    matches = [m for m in _NUMBER.finditer(response) if m.group(0).replace(",", "").isdigit()]
    if not matches:
        return None
    m = rng.choice(matches)
    text = m.group(0)
    new = _slip(int(text.replace(",", "")), rng)
    new_text = f"{new:,}" if "," in text else str(new)
    return response[: m.start()] + new_text + response[m.end() :]


def _defect(kind: str, i: int, rows: Sequence[Record], rng: random.Random) -> str | None:
    response = rows[i]["response"]
    if kind == "swap":  # a fluent response written for another instruction
        donors = [j for j in range(len(rows)) if j != i and rows[j]["response"] != response]
        return rows[rng.choice(donors)]["response"] if donors else None
    if kind == "truncate":
        return truncate(response, rng)
    if kind == "number":
        return alter_number(response, rng)
    return rng.choice([e for e in EVASIVE if e != response])


def dolly_noisy_rows(train: list[Record], cfg: DollyNConfig, rng: random.Random) -> tuple[list[Record], list[Record]]:
    """Training rows with `noise_rate` of the responses given a defect, and the noise labels.

    With `mixed`, each noisy row draws one of the defects that apply to it (a number needs a
    number in the response, truncation a response of at least 12 words).
    """
    n_noisy = round(cfg.noise_rate * len(train))
    wrong: dict[int, tuple[str, str]] = {}
    for i in rng.sample(range(len(train)), len(train)):
        if len(wrong) == n_noisy:
            break
        kinds = list(DEFECTS) if cfg.noise == "mixed" else [cfg.noise]
        rng.shuffle(kinds)
        for kind in kinds:
            if (new := _defect(kind, i, train, rng)) is not None:
                wrong[i] = (kind, new)
                break
    if len(wrong) < n_noisy:
        raise ValueError(f"only {len(wrong)} responses take a {cfg.noise} defect, {n_noisy} requested")
    out, labels = [], []
    for i, row in enumerate(train):
        kind, new = wrong.get(i, ("", row["response"]))
        out.append({**row, "response": new})
        labels.append({"id": row["id"], "noisy": i in wrong, "noise_type": kind or None, "clean_response": row["response"]})
    return out, labels


def build_dolly_n(
    source: str | Path, cfg: DollyNConfig, exclude_ids: set[str] = frozenset()
) -> tuple[list[Record], list[Record], list[Record]]:
    """Return (train rows, clean test rows, noise labels) from the bundled Dolly JSONL.

    Only responses that end a sentence are used (the source cut some long ones mid-sentence, and
    a clean row must not look truncated). Train and test are disjoint rows of the chosen pool, other
    than `exclude_ids` (a fresh set, on rows earlier sets never used).
    """
    rng = random.Random(f"dolly-{cfg.pool}-{cfg.seed}")
    rows = [
        {"id": f"dolly-{r['id']}", "prompt": r["instruction"].strip(), "response": r["response"].strip()}
        for r in read_jsonl(source)
    ]
    eligible = [
        r for r in rows
        if pool_of(r["id"]) == cfg.pool and r["id"] not in exclude_ids and _ENDS_SENTENCE.search(r["response"])
        and cfg.min_words <= len(r["response"].split()) <= cfg.max_words and r["prompt"]
    ]
    if cfg.short_rows:
        return _with_short_rows(rows, eligible, cfg, rng, exclude_ids)
    if len(eligible) < cfg.n_train + cfg.n_test:
        raise ValueError(f"{source}: only {len(eligible)} eligible rows in the {cfg.pool} pool, {cfg.n_train + cfg.n_test} requested")
    picked = rng.sample(eligible, cfg.n_train + cfg.n_test)
    train, labels = dolly_noisy_rows(picked[: cfg.n_train], cfg, rng)
    return train, picked[cfg.n_train :], labels


def _with_short_rows(
    rows: list[Record], eligible: list[Record], cfg: DollyNConfig, rng: random.Random, exclude_ids: set[str]
) -> tuple[list[Record], list[Record], list[Record]]:
    """`build_dolly_n` with `cfg.short_rows` short answers among the train rows, in random order."""
    short = [r for r in rows if pool_of(r["id"]) == cfg.pool and r["id"] not in exclude_ids and r["prompt"]
             and 1 <= len(r["response"].split()) <= SHORT_WORDS]
    longer = [r for r in eligible if len(r["response"].split()) > SHORT_WORDS]
    n_long = cfg.n_train - cfg.short_rows + cfg.n_test
    if len(short) < cfg.short_rows or len(longer) < n_long:
        raise ValueError(f"the {cfg.pool} pool has {len(short)} short and {len(longer)} longer rows: "
                         f"{cfg.short_rows} and {n_long} requested")
    picked_long = rng.sample(longer, n_long)
    train = rng.sample(short, cfg.short_rows) + picked_long[: cfg.n_train - cfg.short_rows]
    rng.shuffle(train)
    train, labels = dolly_noisy_rows(train, cfg, rng)
    return train, picked_long[cfg.n_train - cfg.short_rows :], labels
