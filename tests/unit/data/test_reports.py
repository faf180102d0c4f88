"""Plot data: every scored row lands in exactly one histogram bin of its outcome."""

from __future__ import annotations

import pytest

from clearcurate.data.reports import confidence_histogram, outcome_counts


def test_histogram_bins_rows_by_outcome_including_the_edges():
    scored = [{"id": "a", "confidence": 0.0}, {"id": "b", "confidence": 1.0}, {"id": "c", "confidence": 0.52},
              {"id": "d", "confidence": 0.55}, {"id": "q", "confidence": 0.3}]
    outcome = {"a": "removed", "b": "kept", "c": "corrected", "d": "kept"}  # q: quarantined rows are never scored
    hist = confidence_histogram(scored, outcome, bins=10)
    assert len(hist) == 10 and hist[0]["confidence"] == 0.05 and hist[-1]["confidence"] == 0.95
    assert hist[0] == {"confidence": 0.05, "kept": 0, "corrected": 0, "removed": 1}
    assert hist[9]["kept"] == 1  # confidence 1.0 goes to the last bin, not past it
    assert hist[5] == {"confidence": 0.55, "kept": 1, "corrected": 1, "removed": 0}
    assert sum(h["kept"] + h["corrected"] + h["removed"] for h in hist) == 4


def test_outcome_counts_list_every_outcome_and_reject_unknown_ones():
    rows = [{"outcome": "kept"}] * 3 + [{"outcome": "quarantined"}]
    assert outcome_counts(rows) == [
        {"outcome": "kept", "rows": 3}, {"outcome": "corrected", "rows": 0},
        {"outcome": "removed", "rows": 0}, {"outcome": "quarantined", "rows": 1},
    ]
    with pytest.raises(ValueError, match="unknown outcome 'maybe'"):
        outcome_counts([{"outcome": "maybe"}])


def test_the_ledger_accounts_for_every_row_once_with_its_reason():
    from clearcurate.core.outcomes import Outcome, ledger

    kept = [{"id": "a", "prompt": "p", "response": "r"}]
    decisions = [{"id": "b", "outcome": "corrected", "reason": "candidate preferred", "confidence": 0.9},
                 {"id": "c", "outcome": "removed", "reason": "candidate confidence 0.1 <= eta 0.8", "confidence": 0.1}]
    quarantined = [{"source": "raw.jsonl", "line": 7, "id": "a", "code": "duplicate_id", "reason": "duplicate id 'a'"}]
    entries = list(ledger(kept, decisions, quarantined))
    assert [(e["id"], e["outcome"]) for e in entries] == [
        ("a", Outcome.KEPT), ("b", Outcome.CORRECTED), ("c", Outcome.REMOVED), ("raw.jsonl:7", Outcome.QUARANTINED)]
    assert all(e["reason"] for e in entries)
    assert entries[-1]["code"] == "duplicate_id" and entries[-1]["row_id"] == "a"
    with pytest.raises(ValueError, match="'maybe' is not a valid Outcome"):
        list(ledger([], [{"id": "x", "outcome": "maybe", "reason": "?", "confidence": 0.0}], []))
