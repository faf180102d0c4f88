"""The comparison of two versions of a dataset, pure and keyed by id: rows added, dropped, rewritten or rescored
(`RowTable`, `diff_rows`) and decisions that flipped (`DecisionTable`, `diff_outcomes`, `describe_flipped`)."""

from __future__ import annotations

import difflib
import hashlib
import math
from array import array
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clearcurate.core.records import Record

CONFIDENCE_TOLERANCE = 1e-6  # float noise below this is not a change


def word_diff(old: str, new: str, context: int = 3) -> str:
    """A compact word-level diff, `[-removed-] {+added+}`, eliding unchanged runs beyond `context` words."""
    a, b = old.split(), new.split()
    parts: list[str] = []
    opcodes = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    if all(op == "equal" for op, *_ in opcodes):
        return "(whitespace only)"
    for k, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if op == "equal":
            words = a[i1:i2]
            head = words[:context] if k > 0 else []  # context after the previous change
            tail = words[-context:] if k < len(opcodes) - 1 else []  # context before the next change
            parts.append(" ".join(words) if len(words) <= len(head) + len(tail) else " ".join([*head, "…", *tail]))
            continue
        if op in ("delete", "replace"):
            parts.append("[-" + " ".join(a[i1:i2]) + "-]")
        if op in ("insert", "replace"):
            parts.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(p for p in parts if p)


@dataclass
class RowDiff:
    """What changed inside a dataset between two revisions, by row id."""

    rows_a: int
    rows_b: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    response_changed: dict[str, str] = field(default_factory=dict)  # id -> word diff
    confidence_changed: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Added and removed rows that are described (see `describe_rows`): id -> prompt, response, confidence_a /
    # confidence_b and, for the curated set, each run's outcome and reason from its ledger.
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {
            "rows_a": self.rows_a,
            "rows_b": self.rows_b,
            "added": len(self.added),
            "removed": len(self.removed),
            "response_changed": len(self.response_changed),
            "confidence_changed": len(self.confidence_changed),
        }


class IdColumn:
    """Ids in the order they came, compactly: their UTF-8 bytes end to end, where each ends, and a
    64-bit digest each (about 30 bytes a row where a list and a dict of str would take about 170).

    Rows are matched by digest. Two different ids of one version that share a digest are an error;
    across versions a collision is not checked: its chance is about n^2 / 2^65 (3e-8 at a million rows).
    """

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("Q")
        self.digests = array("Q")

    def append(self, i: str) -> None:
        raw = i.encode("utf-8", "surrogatepass")
        self._blob += raw
        self._ends.append(len(self._blob))
        self.digests.append(_digest(raw))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, pos: int) -> str:
        start = self._ends[pos - 1] if pos else 0
        return self._blob[start:self._ends[pos]].decode("utf-8", "surrogatepass")

    def unique(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each distinct id once: its digest (sorted), where it came first, and where it came last."""
        digests = np.frombuffer(self.digests, dtype=np.uint64) if len(self) else np.zeros(0, np.uint64)
        order = np.argsort(digests, kind="stable").astype(np.int32 if len(self) < 2**31 else np.int64)
        ordered = digests[order]
        del digests
        new = np.ones(len(order), dtype=bool)
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
        if new.all():  # no repeated id: the sort is the answer (no copies, which a million rows would feel)
            return ordered, order, order
        starts = np.flatnonzero(new)
        ends = np.r_[starts[1:], len(order)] - 1
        for group in np.flatnonzero(ends > starts):  # a repeated id (rare): the same text, or a digest collision
            texts = {self[int(p)] for p in order[starts[group]:ends[group] + 1]}
            if len(texts) > 1:
                raise ValueError(f"ids {sorted(texts)} share a 64-bit digest; rename one of them")
        return ordered[starts], order[starts], order[ends]


def _digest(raw: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


def _lookup(keys: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Where each of `keys` is in the sorted `table`, or -1."""
    if not len(table):
        return np.full(len(keys), -1, np.int64)
    at = np.searchsorted(table, keys)
    np.minimum(at, len(table) - 1, out=at)
    at[table[at] != keys] = -1
    return at


class _Version:
    """One version's distinct ids: digests (sorted), where each came first and where its last row is."""

    def __init__(self, ids: IdColumn) -> None:
        self.digests, self.first, self.last = ids.unique()
        self.ids = ids

    def ids_of(self, chosen: np.ndarray) -> list[str]:
        """The ids of the `chosen` distinct ids (a mask or indices), in the order they first came."""
        picked = np.flatnonzero(chosen) if chosen.dtype == bool else chosen
        return [self.ids[int(p)] for p in np.sort(self.first[picked])]

    def match(self, other: _Version) -> np.ndarray:
        """Where each of this version's distinct ids is among `other`'s, or -1."""
        return _lookup(self.digests, other.digests)


class RowTable:
    """Two versions of a dataset as the row diff needs them, in compact arrays: per row its id
    (`IdColumn`), an 8-byte digest of its response and its own confidence (NaN where none); then
    per distinct id the confidence from each version's scored set. About 100 bytes a row for both
    versions. Add every row (`add`) before the scored sets' confidences (`add_scored`)."""

    SCORED_CHUNK = 65_536  # scored rows matched to the versions' ids at a time

    def __init__(self) -> None:
        self._ids = (IdColumn(), IdColumn())
        self._digest = (array("Q"), array("Q"))
        self._own = (array("d"), array("d"))
        self._versions: tuple[_Version, _Version] | None = None
        self._scored: list[np.ndarray] = []
        self._pending: tuple[list[tuple[int, float]], list[tuple[int, float]]] = ([], [])
        self.scored_rows = [0, 0]  # rows with a confidence in each version's scored set

    def add(self, version: int, i: str, row: Record) -> None:
        """A row of version 0 (a) or 1 (b); a repeated id keeps its first place and its last row's values."""
        if self._versions is not None:
            raise RuntimeError("RowTable: every row must be added before the scored confidences")
        self._ids[version].append(i)
        self._digest[version].append(_digest(response_text(row).encode("utf-8", "surrogatepass")))
        self._own[version].append(float(row["confidence"]) if "confidence" in row else math.nan)

    def has_own(self, version: int) -> bool:
        """Whether any row of the version carries its own confidence."""
        return any(not math.isnan(c) for c in self._own[version])

    def versions(self) -> tuple[_Version, _Version]:
        """Both versions' distinct ids (computed once, when the rows are all in)."""
        if self._versions is None:
            self._versions = _Version(self._ids[0]), _Version(self._ids[1])
            self._scored = [np.full(len(v.digests), math.nan) for v in self._versions]
        return self._versions

    def add_scored(self, version: int, i: str, confidence: float) -> None:
        """A confidence from the version's scored set (ids of neither version are skipped; a repeated id keeps its last)."""
        self.versions()
        self.scored_rows[version] += 1
        pending = self._pending[version]
        pending.append((_digest(i.encode("utf-8", "surrogatepass")), float(confidence)))
        if len(pending) >= self.SCORED_CHUNK:
            self._flush(version)

    def _flush(self, version: int) -> None:
        pending = self._pending[version]
        if not pending:
            return
        digests = np.fromiter((d for d, _ in pending), np.uint64, len(pending))
        values = np.fromiter((c for _, c in pending), np.float64, len(pending))
        pending.clear()
        at = _lookup(digests, self.versions()[version].digests)
        hit = at >= 0
        self._scored[version][at[hit]] = values[hit]

    def _values(self, version: int, column: array, chosen: np.ndarray) -> np.ndarray:
        """A per-row column's value for the `chosen` distinct ids (their last row's)."""
        rows = self.versions()[version].last[chosen]
        return np.frombuffer(column, dtype=np.uint64 if column.typecode == "Q" else np.float64)[rows] if len(rows) else np.zeros(0)

    def diff(self, scored: tuple[bool, bool]) -> RowDiff:
        """Added / removed ids, changed responses and moved confidences (ids in both versions only), with
        each version's confidences from its scored set where `scored` says so, else the rows' own.
        `response_changed` maps each such id to "" until `fill_word_diffs` gives it its diff."""
        a, b = self.versions()
        for version in (0, 1):
            self._flush(version)
        in_a = b.match(a)
        out = RowDiff(rows_a=len(a.digests), rows_b=len(b.digests))
        out.added = b.ids_of(in_a < 0)
        out.removed = a.ids_of(a.match(b) < 0)
        both = np.flatnonzero(in_a >= 0)
        at = in_a[both]
        del in_a
        rewritten = self._values(0, self._digest[0], at) != self._values(1, self._digest[1], both)
        out.response_changed = dict.fromkeys(b.ids_of(both[rewritten]), "")
        del rewritten
        x = self._scored[0][at] if scored[0] else self._values(0, self._own[0], at)
        y = self._scored[1][both] if scored[1] else self._values(1, self._own[1], both)
        with np.errstate(invalid="ignore"):
            moved = np.flatnonzero(np.abs(x - y) > CONFIDENCE_TOLERANCE)  # NaN on either side compares False: not moved
        for k in moved[np.argsort(b.first[both[moved]], kind="stable")]:
            out.confidence_changed[self._ids[1][int(b.first[both[k]])]] = (float(x[k]), float(y[k]))
        return out


def fill_word_diffs(diff: RowDiff, old: Mapping[str, str], new: Mapping[str, str]) -> RowDiff:
    """Each changed response's word diff, from the two texts of those rows."""
    for i in diff.response_changed:
        diff.response_changed[i] = word_diff(old[i], new[i])
    return diff


def response_text(row: Record) -> str:
    return str(row.get("response", ""))


def diff_rows(
    a: Mapping[str, Record],
    b: Mapping[str, Record],
    conf_a: Mapping[str, float] | None = None,
    conf_b: Mapping[str, float] | None = None,
) -> RowDiff:
    """Added / removed ids, rewritten responses and moved confidences (ids in both versions only);
    confidences from `conf_a` / `conf_b` where given and not empty, else the rows' own."""
    table = RowTable()
    for version, rows in enumerate((a, b)):
        for i, row in rows.items():
            table.add(version, i, row)
    for version, conf in enumerate((conf_a, conf_b)):
        for i, c in (conf or {}).items():
            table.add_scored(version, i, c)
    diff = table.diff((bool(conf_a), bool(conf_b)))
    return fill_word_diffs(diff, {i: response_text(r) for i, r in a.items()}, {i: response_text(r) for i, r in b.items()})


@dataclass
class OutcomeDiff:
    """Rows whose curation decision differs between two runs of a stage."""

    stage: str
    counts_a: dict[str, int]
    counts_b: dict[str, int]
    flipped: dict[str, tuple[str, str]]  # id -> (outcome in a, outcome in b); "absent" if missing
    # Flipped rows only: id -> prompt, response (full text) and confidence_a / confidence_b (None where unknown).
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What each run decided with (the stage's threshold and settings from its metrics file), where recorded.
    settings_a: dict[str, Any] = field(default_factory=dict)
    settings_b: dict[str, Any] = field(default_factory=dict)

    def transitions(self) -> dict[str, int]:
        return dict(Counter(f"{x} -> {y}" for x, y in self.flipped.values()).most_common())


class DecisionTable:
    """Each row's decision in two runs, compactly: per row its id (`IdColumn`) and a byte naming
    its outcome. About 70 bytes a row for both runs, the id included."""

    def __init__(self) -> None:
        self._ids = (IdColumn(), IdColumn())
        self._codes = (bytearray(), bytearray())
        self._labels: list[str] = []

    def add(self, run: int, i: str, label: str) -> None:
        """Run 0's (a) or run 1's (b) decision on row `i`; a repeated id keeps its first place and its last decision."""
        if label not in self._labels:
            if len(self._labels) == 255:
                raise ValueError("more than 255 distinct outcomes")
            self._labels.append(label)
        self._ids[run].append(i)
        self._codes[run].append(self._labels.index(label) + 1)

    def diff(self, stage: str) -> OutcomeDiff:
        """Counts per outcome in each run, and the rows whose decision differs (run a's order, then b's new rows)."""
        a, b = _Version(self._ids[0]), _Version(self._ids[1])
        codes = [np.frombuffer(bytes(self._codes[k]), dtype=np.uint8)[v.last] for k, v in ((0, a), (1, b))]
        counts = [self._counts(code, v) for code, v in zip(codes, (a, b))]
        in_b, in_a = a.match(b), b.match(a)
        other = np.where(in_b >= 0, codes[1][np.maximum(in_b, 0)] if len(codes[1]) else 0, 0)
        changed = np.flatnonzero(codes[0] != other)
        flipped = {}
        for u in changed[np.argsort(a.first[changed])]:
            flipped[self._ids[0][int(a.first[u])]] = (self._label(codes[0][u]), self._label(other[u]))
        new = np.flatnonzero(in_a < 0)
        for u in new[np.argsort(b.first[new])]:
            flipped[self._ids[1][int(b.first[u])]] = ("absent", self._label(codes[1][u]))
        return OutcomeDiff(stage, counts[0], counts[1], flipped)

    def _counts(self, codes: np.ndarray, run: _Version) -> dict[str, int]:
        """Rows per outcome, outcomes in the order the run first gave them."""
        present = np.unique(codes)
        firsts = [int(run.first[codes == c].min()) for c in present]
        return {self._label(int(c)): int((codes == c).sum()) for _, c in sorted(zip(firsts, present))}

    def _label(self, code: int) -> str:
        return self._labels[code - 1] if code else "absent"


def diff_outcomes(stage: str, a: Mapping[str, str], b: Mapping[str, str]) -> OutcomeDiff:
    """The rows whose decision differs between two runs, from each run's decision by id."""
    table = DecisionTable()
    for run, decisions in enumerate((a, b)):
        for i, label in decisions.items():
            table.add(run, i, str(label))
    return table.diff(stage)


def sort_flipped(diff: OutcomeDiff, conf_a: Mapping[str, float] | None, conf_b: Mapping[str, float] | None) -> OutcomeDiff:
    """Order the flipped rows for reading: by transition (kept -> removed together), then by confidence
    (run b's, else a's; rows without one last), so the rows a threshold moved past sit side by side."""
    def key(item: tuple[str, tuple[str, str]]) -> tuple[str, bool, float]:
        i, (x, y) = item
        c = next((m[i] for m in (conf_b, conf_a) if m and i in m), None)
        return f"{x} -> {y}", c is None, c if c is not None else 0.0

    diff.flipped = dict(sorted(diff.flipped.items(), key=key))
    return diff


def describe_rows(diff: RowDiff, rows_a: Mapping[str, Record], rows_b: Mapping[str, Record],
                  conf_a: Mapping[str, float] | None = None, conf_b: Mapping[str, float] | None = None,
                  ledger_a: Mapping[str, Record] | None = None, ledger_b: Mapping[str, Record] | None = None) -> RowDiff:
    """Fill `diff.rows` for the added rows in `rows_b` and the removed rows in `rows_a`: prompt, response,
    each run's confidence and, with the curated set's ledgers, what each run decided for the row and why."""
    for i in [*diff.added, *diff.removed]:
        row = rows_b.get(i) or rows_a.get(i)
        if row is None:
            continue
        described = {"prompt": row.get("prompt"), "response": row.get("response"),
                     "confidence_a": _confidence_of(i, conf_a, rows_a), "confidence_b": _confidence_of(i, conf_b, rows_b)}
        for run, ledger in (("a", ledger_a), ("b", ledger_b)):
            entry = (ledger or {}).get(i, {})
            described |= {f"{k}_{run}": entry[k] for k in ("outcome", "reason") if entry.get(k)}
        diff.rows[i] = described
    return diff


def describe_flipped(
    diff: OutcomeDiff,
    rows_a: Mapping[str, Record],
    rows_b: Mapping[str, Record],
    conf_a: Mapping[str, float] | None = None,
    conf_b: Mapping[str, float] | None = None,
    texts: Mapping[str, Record] | None = None,
    only: Collection[str] | None = None,
) -> OutcomeDiff:
    """Fill `diff.rows`: each flipped row's prompt and response (revision b's, else a's, else `texts`), both
    confidences, and the reason each run gave (a defect check's, or a score below gamma), where it gave one.

    Confidences come from the scored sets (`conf_a`, `conf_b`), else from the decision rows themselves.
    With `only`, just those flipped rows are described.
    """
    for i in diff.flipped if only is None else (i for i in diff.flipped if i in only):
        source = next((r for r in (rows_b.get(i), rows_a.get(i), (texts or {}).get(i)) if r and "prompt" in r), {})
        diff.rows[i] = {
            "prompt": source.get("prompt"),
            "response": source.get("response"),
            "confidence_a": _confidence_of(i, conf_a, rows_a),
            "confidence_b": _confidence_of(i, conf_b, rows_b),
            **{f"reason_{run}": rows[i]["reason"] for run, rows in (("a", rows_a), ("b", rows_b)) if rows.get(i, {}).get("reason")},
        }
    return diff


def _confidence_of(i: str, scored: Mapping[str, float] | None, rows: Mapping[str, Record]) -> float | None:
    if scored is not None and i in scored:
        return float(scored[i])
    value = rows.get(i, {}).get("confidence")
    return float(value) if isinstance(value, (int, float)) else None
