"""Where every training row ends: kept, corrected, removed or quarantined, with a reason.

One enum and one function build the ledger (data/curated/outcomes.jsonl), so the stages, the
validation gates and the plots agree on what the outcomes are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import Enum

from clearcurate.core.records import Record


class Outcome(str, Enum):
    """A row's fate. A str, so it compares equal to and serialises as its value ("kept", ...)."""

    KEPT = "kept"
    CORRECTED = "corrected"
    REMOVED = "removed"
    QUARANTINED = "quarantined"

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:  # as its value's, so sets and pandas' isin mix members and plain strings
        return str.__hash__(self.value)


def quarantine_ledger_id(q: Record) -> str:
    """A quarantined row's ledger id is file:line: a quarantined duplicate shares its row id with a prepared row."""
    return f"{q['source']}:{q['line']}"


def ledger(kept: Iterable[Record], decisions: Iterable[Record], quarantined: Iterable[Record]) -> Iterator[Record]:
    """One entry per source row of the training split: kept rows, Auto-Correct's decisions on the
    removed ones (corrected or removed, with their reason and confidence), and the rows prepare
    quarantined (with their `code` and `reason`). A decision's reason follows why the filter removed
    the row (`filter_reason`: its defect, or its score below gamma). Entries are made one at a time (a kept row needs
    only its id), so a million-row ledger can be validated and written without being held."""
    for r in kept:
        yield {"id": r["id"], "outcome": Outcome.KEPT, "reason": "confidence >= gamma"}
    for d in decisions:
        reason = f"{d['filter_reason']}; Auto-Correct: {d['reason']}" if d.get("filter_reason") else d["reason"]
        yield {"id": d["id"], "outcome": Outcome(d["outcome"]), "reason": reason, "confidence": d["confidence"]}
    for q in quarantined:
        yield {"id": quarantine_ledger_id(q), "outcome": Outcome.QUARANTINED, "code": q["code"], "reason": q["reason"], "row_id": q["id"]}


def outcome_counts(entries: Iterable[Record]) -> dict[str, int]:
    """Rows per outcome, every outcome listed (0 when none), in a fixed order."""
    seen = {o.value: 0 for o in Outcome}
    for e in entries:
        if e["outcome"] not in seen:
            raise ValueError(f"unknown outcome {e['outcome']!r} for row {e.get('id')!r}: expected one of {list(seen)}")
        seen[str(e["outcome"])] += 1
    return seen
