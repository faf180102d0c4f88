"""The ledger: every row once, with its outcome and the reason the filter and Auto-Correct gave."""

from __future__ import annotations

import json

import pytest

from clearcurate.core.outcomes import Outcome, ledger, outcome_counts, quarantine_ledger_id


def test_an_outcome_is_its_string_in_sets_json_and_formatting() -> None:
    assert Outcome.KEPT == "kept" and str(Outcome.REMOVED) == "removed" and f"{Outcome.CORRECTED}" == "corrected"
    assert "quarantined" in {Outcome.QUARANTINED} and Outcome.KEPT in {"kept"}
    assert json.dumps({"outcome": Outcome.KEPT}) == '{"outcome": "kept"}'


def test_the_ledger_has_one_entry_per_row_with_the_filters_reason_before_auto_corrects() -> None:
    kept = [{"id": "a", "prompt": "p", "response": "r"}]
    decisions = [
        {"id": "b", "outcome": "corrected", "reason": "candidate judged better", "confidence": 0.1,
         "filter_reason": "confidence 0.10 < gamma 0.30"},
        {"id": "c", "outcome": "removed", "reason": "prompt at fault: not corrected", "confidence": 0.0,
         "filter_reason": "defect: needs_input"},
        {"id": "d", "outcome": "removed", "reason": "no better candidate", "confidence": 0.2},
    ]
    quarantined = [{"id": "a", "source": "data/raw/train.jsonl", "line": 7, "code": "duplicate_id", "reason": "id 'a' repeats line 1"}]
    entries = list(ledger(kept, decisions, quarantined))
    assert [e["id"] for e in entries] == ["a", "b", "c", "d", "data/raw/train.jsonl:7"]
    assert entries[0] == {"id": "a", "outcome": Outcome.KEPT, "reason": "confidence >= gamma"}
    assert entries[1]["reason"] == "confidence 0.10 < gamma 0.30; Auto-Correct: candidate judged better"
    assert entries[2]["reason"] == "defect: needs_input; Auto-Correct: prompt at fault: not corrected"
    assert entries[3]["reason"] == "no better candidate"  # no filter reason recorded: Auto-Correct's alone
    assert entries[4] == {"id": "data/raw/train.jsonl:7", "outcome": Outcome.QUARANTINED, "code": "duplicate_id",
                          "reason": "id 'a' repeats line 1", "row_id": "a"}
    assert quarantine_ledger_id(quarantined[0]) == "data/raw/train.jsonl:7"
    assert outcome_counts(entries) == {"kept": 1, "corrected": 1, "removed": 2, "quarantined": 1}


def test_an_unknown_decision_outcome_is_an_error_not_a_new_kind() -> None:
    with pytest.raises(ValueError):
        list(ledger([], [{"id": "x", "outcome": "dropped", "reason": "?", "confidence": 0.0}], []))
    with pytest.raises(ValueError, match="unknown outcome 'dropped' for row 'x'"):
        outcome_counts([{"id": "x", "outcome": "dropped"}])


def test_counts_list_every_outcome_in_a_fixed_order() -> None:
    assert list(outcome_counts([])) == ["kept", "corrected", "removed", "quarantined"]
