"""Row-level diffs of DVC-tracked datasets across git revisions.

`dvc diff` says that a file's hash changed; a team reviewing a curation change wants to know
which rows were added, dropped or rewritten, whose confidence moved, and which decisions
flipped when a threshold changed. Both revisions are read through `dvc.api.open` (from the
local DVC cache, else the default remote), so nothing has to be checked out. Files are streamed:
a first pass keeps each row's decision, or a digest of its response and its confidence, and a
second pass fetches the full rows of only those that changed, so a million rows fit in a few
hundred MB. The comparison itself (`RowTable.diff`, `diff_rows`, `diff_outcomes`) is pure and
works on rows keyed by id.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from array import array
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from clearcurate.records import InputError, Record, parse_jsonl

CURATED = "data/curated/train.jsonl"
SCORED = "data/scored/train.jsonl"
PREPARED = "data/prepared/train.jsonl"  # prompts and responses of rows the ledger names by id only
# Where each stage's decisions live: (file, outcome) pairs, or the ledger with an `outcome` field.
STAGE_DECISIONS: dict[str, list[tuple[str, str | None]]] = {
    "filter": [("data/filtered/kept.jsonl", "kept"), ("data/filtered/removed.jsonl", "removed")],
    "correct": [("data/curated/outcomes.jsonl", None)],
}
CONFIDENCE_TOLERANCE = 1e-6  # float noise below this is not a change
TEXT_WIDTH = 80  # prompts and responses of flipped rows, one line each, in text and markdown


def iter_rows(path: str, rev: str | None, repo: str | None = None) -> Iterator[Record]:
    """Rows of a JSONL file at a git revision, one at a time (a bad line names file, rev and line)."""
    import dvc.api

    where = f"{path}@{rev or 'workspace'}"
    try:
        with dvc.api.open(path, repo=repo, rev=rev, mode="r", encoding="utf-8") as handle:
            for number, row in enumerate(parse_jsonl(handle, where), start=1):
                if "id" not in row:
                    raise InputError(f"{where}: row {number} has no 'id'")
                yield row
    except InputError:
        raise
    except Exception as err:  # dvc/scmrepo raise many types: unknown revision, path missing, no remote...
        raise InputError(f"{where}: {_read_hint(err, path, rev, repo)}") from None


def read_rows(path: str, rev: str | None, repo: str | None = None, ids: Collection[str] | None = None) -> dict[str, Record]:
    """Rows of a JSONL file at a git revision, by id (all, or only those in `ids`; a repeated id keeps its last row)."""
    rows: dict[str, Record] = {}
    for row in iter_rows(path, rev, repo):
        i = str(row["id"])
        if ids is None or i in ids:
            rows[i] = row
    return rows


def _tracked(path: str, rev: str | None, repo: str | None) -> bool:
    """Whether DVC (dvc.lock or a .dvc file) or git knows `path` at `rev`, whether or not its data is at hand."""
    from dvc.api import DVCFileSystem

    try:
        return bool(DVCFileSystem(repo, rev=rev).exists(path))
    except Exception:  # only chooses between two hints
        return False


def _read_hint(err: Exception, path: str, rev: str | None, repo: str | None = None) -> str:
    """What a failed read means, in the user's terms, and what to run."""
    error = type(err).__name__
    if error == "PathMissingError" and rev is None:
        return f"{path} is not in the workspace: run `dvc repro` to make it (or `dvc pull` if your team has a remote)"
    if error == "PathMissingError" and _tracked(path, rev, repo):  # in dvc.lock at rev, but no copy of the data here
        return (f"{path} is recorded at {rev} but its data is in neither the local DVC cache nor the remote: "
                f"`dvc push` it where it was made, or make it again (`git checkout {rev} && dvc repro`)")
    if error == "PathMissingError":
        return (f"{path} does not exist at {rev}: that revision did not run the pipeline "
                "(pick a later one, or run `dvc repro` and commit its dvc.lock)")
    if error == "RevError":
        return f"unknown revision {rev!r}: use a commit, branch or tag (`git log --oneline`), or `workspace`"
    if error in ("SCMError", "NotDvcRepoError"):
        return f"not a git + DVC project ({err}): run it in your project's folder, or pass --repo"
    return (f"cannot read it ({error}: {err}); if the data is tracked but not in the local DVC cache, "
            "run `dvc pull` (or `dvc repro` at that revision)")


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

    def summary(self) -> dict[str, int]:
        return {
            "rows_a": self.rows_a,
            "rows_b": self.rows_b,
            "added": len(self.added),
            "removed": len(self.removed),
            "response_changed": len(self.response_changed),
            "confidence_changed": len(self.confidence_changed),
        }


class RowTable:
    """Two versions of a dataset as the row diff needs them, in compact arrays: one slot per id (a
    dict shared by both versions), each version's slots in the order its rows came, and per slot an
    8-byte digest of the response and the confidence (the row's own, and the scored set's; NaN where
    none). About 180 bytes a row for both versions, the id included, whatever the rows hold."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._slot: dict[str, int] = {}
        self._order = (array("q"), array("q"))
        self._present = (bytearray(), bytearray())
        self._digest = (array("Q"), array("Q"))
        self._own = (array("d"), array("d"))
        self._scored = (array("d"), array("d"))
        self.scored_rows = [0, 0]  # rows with a confidence in each version's scored set

    def _new_slot(self, i: str) -> int:
        s = self._slot[i] = len(self.ids)
        self.ids.append(i)
        for k in (0, 1):
            self._present[k].append(0)
            self._digest[k].append(0)
            self._own[k].append(math.nan)
            self._scored[k].append(math.nan)
        return s

    def add(self, version: int, i: str, row: Record) -> None:
        """A row of version 0 (a) or 1 (b); a repeated id keeps its first place and its last row's values."""
        s = self._slot.get(i)
        if s is None:
            s = self._new_slot(i)
        if not self._present[version][s]:
            self._present[version][s] = 1
            self._order[version].append(s)
        text = _response(row).encode("utf-8", "surrogatepass")
        self._digest[version][s] = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
        self._own[version][s] = float(row["confidence"]) if "confidence" in row else math.nan

    def has_own(self, version: int) -> bool:
        """Whether any row of the version carries its own confidence."""
        own, present = self._own[version], self._present[version]
        return any(not math.isnan(own[s]) for s in self._order[version] if present[s])

    def add_scored(self, version: int, i: str, confidence: float) -> None:
        """A confidence from the version's scored set (rows of neither version are skipped)."""
        self.scored_rows[version] += 1
        if (s := self._slot.get(i)) is not None:
            self._scored[version][s] = float(confidence)

    def diff(self, scored: tuple[bool, bool]) -> RowDiff:
        """Added / removed ids, changed responses and moved confidences (ids in both versions only), with
        each version's confidences from its scored set where `scored` says so, else the rows' own.
        `response_changed` maps each such id to "" until `fill_word_diffs` gives it its diff."""
        order, present, digest, ids = self._order, self._present, self._digest, self.ids
        conf_a, conf_b = (self._scored[k] if scored[k] else self._own[k] for k in (0, 1))
        out = RowDiff(rows_a=len(order[0]), rows_b=len(order[1]))
        out.added = [ids[s] for s in order[1] if not present[0][s]]
        out.removed = [ids[s] for s in order[0] if not present[1][s]]
        for s in order[1]:
            if not present[0][s]:
                continue
            if digest[0][s] != digest[1][s]:
                out.response_changed[ids[s]] = ""
            x, y = conf_a[s], conf_b[s]
            if not (math.isnan(x) or math.isnan(y)) and abs(x - y) > CONFIDENCE_TOLERANCE:
                out.confidence_changed[ids[s]] = (x, y)
        return out


def fill_word_diffs(diff: RowDiff, old: Mapping[str, str], new: Mapping[str, str]) -> RowDiff:
    """Each changed response's word diff, from the two texts of those rows."""
    for i in diff.response_changed:
        diff.response_changed[i] = word_diff(old[i], new[i])
    return diff


def _response(row: Record) -> str:
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
    for version, rows, conf in ((0, a, conf_a), (1, b, conf_b)):
        for i, row in rows.items():
            table.add(version, i, row)
        for i, c in (conf or {}).items():
            table.add_scored(version, i, c)
    diff = table.diff((bool(conf_a), bool(conf_b)))
    return fill_word_diffs(diff, {i: _response(r) for i, r in a.items()}, {i: _response(r) for i, r in b.items()})


@dataclass
class OutcomeDiff:
    """Rows whose curation decision differs between two runs of a stage."""

    stage: str
    counts_a: dict[str, int]
    counts_b: dict[str, int]
    flipped: dict[str, tuple[str, str]]  # id -> (outcome in a, outcome in b); "absent" if missing
    # Flipped rows only: id -> prompt, response (full text) and confidence_a / confidence_b (None where unknown).
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def transitions(self) -> dict[str, int]:
        return dict(Counter(f"{x} -> {y}" for x, y in self.flipped.values()).most_common())


class DecisionTable:
    """Each row's decision in two runs, compactly: one slot per id (a dict shared by both runs), each
    run's slots in the order its rows came, and a byte per slot naming the outcome (0: absent).
    About 130 bytes a row for both runs, the id included."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._slot: dict[str, int] = {}
        self._labels: list[str] = []
        self._order = (array("q"), array("q"))
        self._outcome = (bytearray(), bytearray())

    def add(self, run: int, i: str, label: str) -> None:
        """Run 0's (a) or run 1's (b) decision on row `i`; a repeated id keeps its first place and its last decision."""
        s = self._slot.get(i)
        if s is None:
            s = self._slot[i] = len(self.ids)
            self.ids.append(i)
            self._outcome[0].append(0)
            self._outcome[1].append(0)
        if label not in self._labels:
            self._labels.append(label)
        if not self._outcome[run][s]:
            self._order[run].append(s)
        self._outcome[run][s] = self._labels.index(label) + 1

    def _label(self, run: int, s: int) -> str:
        code = self._outcome[run][s]
        return self._labels[code - 1] if code else "absent"

    def diff(self, stage: str) -> OutcomeDiff:
        """Counts per outcome in each run, and the rows whose decision differs (run a's order, then b's new rows)."""
        (order_a, order_b), (out_a, out_b) = self._order, self._outcome
        counts = [dict(Counter(self._label(run, s) for s in self._order[run])) for run in (0, 1)]
        slots = [*order_a, *(s for s in order_b if not out_a[s])]
        flipped = {self.ids[s]: (self._label(0, s), self._label(1, s)) for s in slots if out_a[s] != out_b[s]}
        return OutcomeDiff(stage, counts[0], counts[1], flipped)


def diff_outcomes(stage: str, a: Mapping[str, str], b: Mapping[str, str]) -> OutcomeDiff:
    """The rows whose decision differs between two runs, from each run's decision by id."""
    table = DecisionTable()
    for run, decisions in enumerate((a, b)):
        for i, label in decisions.items():
            table.add(run, i, str(label))
    return table.diff(stage)


def read_decisions(stage: str, revs: tuple[str | None, str | None], repo: str | None = None) -> DecisionTable:
    """Each row's decision in two runs of `stage` (filter: kept/removed; correct: the outcome ledger), streamed."""
    if stage not in STAGE_DECISIONS:
        raise ValueError(f"unknown stage {stage!r}: use one of {sorted(STAGE_DECISIONS)}")
    table = DecisionTable()
    for run, rev in enumerate(revs):
        for path, label in STAGE_DECISIONS[stage]:
            for row in iter_rows(path, rev, repo):
                table.add(run, str(row["id"]), label if label is not None else str(row["outcome"]))
    return table


def _decision_rows(stage: str, rev: str | None, repo: str | None, ids: Collection[str]) -> dict[str, Record]:
    """The decision rows of `ids` in one run of `stage` (a second pass, for the rows that flipped)."""
    rows: dict[str, Record] = {}
    for path, _ in STAGE_DECISIONS[stage]:
        rows.update(read_rows(path, rev, repo, ids))
    return rows


def describe_flipped(
    diff: OutcomeDiff,
    rows_a: Mapping[str, Record],
    rows_b: Mapping[str, Record],
    conf_a: Mapping[str, float] | None = None,
    conf_b: Mapping[str, float] | None = None,
    texts: Mapping[str, Record] | None = None,
    only: Collection[str] | None = None,
) -> OutcomeDiff:
    """Fill `diff.rows`: each flipped row's prompt and response (revision b's, else a's, else `texts`) and both confidences.

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
        }
    return diff


def _confidence_of(i: str, scored: Mapping[str, float] | None, rows: Mapping[str, Record]) -> float | None:
    if scored is not None and i in scored:
        return float(scored[i])
    value = rows.get(i, {}).get("confidence")
    return float(value) if isinstance(value, (int, float)) else None


def diff_stage(stage: str, rev_a: str | None, rev_b: str | None, repo: str | None = None, describe: int | None = None) -> OutcomeDiff:
    """The decisions of two runs of `stage`, with each flipped row's prompt, response and confidences
    (only the first `describe` flipped rows', what a text report shows; None: every one's)."""
    diff = read_decisions(stage, (rev_a, rev_b), repo).diff(stage)
    if not diff.flipped:
        return diff
    flipped = set(diff.flipped) if describe is None else set(list(diff.flipped)[: max(describe, 0)])
    rows_a, rows_b = _decision_rows(stage, rev_a, repo, flipped), _decision_rows(stage, rev_b, repo, flipped)
    texts = None
    if any("prompt" not in (rows_b.get(i) or rows_a.get(i) or {}) for i in flipped):  # the ledger has ids only
        texts = _rows_or_none(PREPARED, rev_b, repo, flipped) or _rows_or_none(PREPARED, rev_a, repo, flipped)
    confidences = _confidences(rev_a, repo, flipped), _confidences(rev_b, repo, flipped)
    return describe_flipped(diff, rows_a, rows_b, *confidences, texts, only=None if describe is None else flipped)


def _rows_or_none(path: str, rev: str | None, repo: str | None, ids: Collection[str]) -> dict[str, Record] | None:
    try:
        return read_rows(path, rev, repo, ids)
    except InputError:
        return None


def _confidences(rev: str | None, repo: str | None, ids: Collection[str]) -> dict[str, float] | None:
    """The confidence of each row of `ids` at `rev`, or None when that revision has no scores (then only
    response changes are reported); streamed, so only these floats are kept."""
    try:
        return {i: float(r["confidence"]) for r in iter_rows(SCORED, rev, repo) if "confidence" in r and (i := str(r["id"])) in ids}
    except InputError:
        return None


def diff_revisions(rev_a: str, rev_b: str, path: str = CURATED, repo: str | None = None) -> RowDiff:
    """Diff one dataset between two revisions; confidences come from the rows or else the scored set.

    Streamed: a first pass fills a `RowTable` (digests of the responses, confidences), a second
    fetches the texts of the changed responses for their word diffs.
    """
    table = RowTable()
    for version, rev in enumerate((rev_a, rev_b)):
        for row in iter_rows(path, rev, repo):
            table.add(version, str(row["id"]), row)
    use_scored = [False, False]
    if not (table.has_own(0) and table.has_own(1)):
        for version, rev in enumerate((rev_a, rev_b)):
            try:
                for row in iter_rows(SCORED, rev, repo):
                    if "confidence" in row:
                        table.add_scored(version, str(row["id"]), row["confidence"])
            except InputError:  # no scores at that revision: only response changes are reported
                continue
            use_scored[version] = table.scored_rows[version] > 0
    diff = table.diff((use_scored[0], use_scored[1]))
    if diff.response_changed:
        changed = set(diff.response_changed)
        old = {i: _response(r) for i, r in read_rows(path, rev_a, repo, changed).items()}
        new = {i: _response(r) for i, r in read_rows(path, rev_b, repo, changed).items()}
        fill_word_diffs(diff, old, new)
    return diff


# ---- rendering ------------------------------------------------------------------------------


def _clip(items: list[Any], limit: int | None) -> tuple[list[Any], int]:
    if limit is None or len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


def render_rows(diff: RowDiff, title: str, fmt: str, limit: int | None = 50) -> str:
    """Summary counts first, then the rows (at most `limit` per section in text and markdown)."""
    if fmt == "json":
        body = {
            "title": title,
            "summary": diff.summary(),
            "added": diff.added,
            "removed": diff.removed,
            "response_changed": [{"id": i, "diff": d} for i, d in diff.response_changed.items()],
            "confidence_changed": [{"id": i, "a": x, "b": y} for i, (x, y) in diff.confidence_changed.items()],
        }
        return json.dumps(body, indent=2, ensure_ascii=False)
    s = diff.summary()
    md = fmt == "markdown"
    lines = [f"## {title}" if md else title, ""]
    if md:
        lines += ["| rows before | rows after | added | removed | response changed | confidence changed |",
                  "|---|---|---|---|---|---|",
                  f"| {s['rows_a']} | {s['rows_b']} | {s['added']} | {s['removed']} "
                  f"| {s['response_changed']} | {s['confidence_changed']} |"]
    else:
        lines.append(f"rows {s['rows_a']} -> {s['rows_b']}: {s['added']} added, {s['removed']} removed, "
                     f"{s['response_changed']} response changed, {s['confidence_changed']} confidence changed")
    sections: list[tuple[str, list[str]]] = [
        ("added", [f"+ {i}" for i in diff.added]),
        ("removed", [f"- {i}" for i in diff.removed]),
        ("response changed", [f"~ {i}: {d}" for i, d in diff.response_changed.items()]),
        ("confidence changed", [f"{i}: {x:.4f} -> {y:.4f} ({y - x:+.4f})" for i, (x, y) in diff.confidence_changed.items()]),
    ]
    for name, items in sections:
        if not items:
            continue
        shown, more = _clip(items, limit)
        lines += ["", f"### {name}" if md else f"{name}:"]
        lines += [f"- `{item[2:]}`" if md and item[:2] in ("+ ", "- ", "~ ") else (f"- {item}" if md else f"  {item}") for item in shown]
        if more:
            lines.append(f"{'- ' if md else '  '}… and {more} more (--limit to show more)")
    return "\n".join(lines)


def one_line(text: str, width: int = TEXT_WIDTH) -> str:
    """Text on one line (whitespace runs collapsed), cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def _confidence_pair(a: float | None, b: float | None) -> str:
    if a is None and b is None:
        return ""
    change = f" ({b - a:+.4f})" if a is not None and b is not None else ""
    return f"{_number(a)} -> {_number(b)}{change}"


def _number(c: float | None) -> str:
    return "n/a" if c is None else f"{c:.4f}"


def render_outcomes(diff: OutcomeDiff, title: str, fmt: str, limit: int | None = 50) -> str:
    if fmt == "json":
        return json.dumps({"title": title, **asdict(diff), "transitions": diff.transitions()}, indent=2, ensure_ascii=False)
    md = fmt == "markdown"
    names = sorted(set(diff.counts_a) | set(diff.counts_b))
    lines = [f"## {title}" if md else title, ""]
    if md:
        lines += ["| outcome | before | after |", "|---|---|---|"]
        lines += [f"| {n} | {diff.counts_a.get(n, 0)} | {diff.counts_b.get(n, 0)} |" for n in names]
    else:
        lines += [f"{n}: {diff.counts_a.get(n, 0)} -> {diff.counts_b.get(n, 0)}" for n in names]
    lines += ["", f"{len(diff.flipped)} rows changed decision" + (":" if diff.flipped else ".")]
    lines += [f"{'- ' if md else '  '}{t}: {n}" for t, n in diff.transitions().items()]
    shown, more = _clip(list(diff.flipped.items()), limit)
    if shown:
        lines += ["", "### rows" if md else "rows:"]
        for i, (x, y) in shown:
            detail = diff.rows.get(i, {})
            conf = _confidence_pair(detail.get("confidence_a"), detail.get("confidence_b"))
            lines.append(f"{'- ' if md else '  '}{i}: {x} -> {y}" + (f" (confidence {conf})" if conf else ""))
            for name in ("prompt", "response"):
                if detail.get(name) is not None:
                    text = one_line(str(detail[name]))
                    lines.append(f"  - {name}: {text}" if md else f"      {name + ':':<9} {text}")
        if more:
            lines.append(f"{'- ' if md else '  '}… and {more} more (--limit to show more)")
    return "\n".join(lines)
