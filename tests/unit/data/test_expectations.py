"""Every expectation has a passing and a failing case; failures name the expectation, column and ids."""

from __future__ import annotations

import json
import logging

import pytest

from clearcurate.core.outcomes import Outcome
from clearcurate.data.expectations import (
    ExpectationError,
    InstructionColumns,
    ValidateConfig,
    instruction_suite,
    outcome_columns,
    outcome_suite,
    scored_suite,
    validate,
)

KEPT, CORRECTED, REMOVED, QUARANTINED = Outcome.KEPT, Outcome.CORRECTED, Outcome.REMOVED, Outcome.QUARANTINED

pd = pytest.importorskip("pandas")
CFG = ValidateConfig(min_chars=1, max_chars=40, max_removed_share=0.5)


def outcome_frame(outcomes, scores, gamma):
    return outcome_columns([o["id"] for o in outcomes], [str(o["outcome"]) for o in outcomes],
                           [scores.get(o["id"], float("nan")) for o in outcomes], gamma, input_ids=list(scores))


def _failures(frame, suite, tmp_path, name="t") -> str:
    with pytest.raises(ExpectationError) as err:
        validate(name, frame, suite, CFG, tmp_path)
    return str(err.value)


def test_instruction_rows_pass_and_each_fault_is_named(tmp_path):
    good = pd.DataFrame({"id": ["a", "b"], "prompt": ["Q1?", "Q2?"], "response": ["yes", "no"]})
    assert validate("good", good, instruction_suite(CFG), CFG, tmp_path)
    assert (tmp_path / "docs" / "good" / "index.html").exists()  # Data Docs for the run
    assert json.loads((tmp_path / "good.json").read_text())["success"] is True

    bad = pd.DataFrame({"id": ["a", "a", "c", "d"], "prompt": ["Q", "", "Q", "Q"], "response": ["r", "r", None, "x" * 41]})
    msg = _failures(bad, instruction_suite(CFG), tmp_path)
    assert "expect_column_values_to_be_unique(id): 2 rows, e.g. ids a, a" in msg
    assert "expect_column_value_lengths_to_be_between(prompt): 1 rows, e.g. ids a" in msg
    assert "expect_column_values_to_not_be_null(response): 1 rows, e.g. ids c" in msg
    assert "expect_column_value_lengths_to_be_between(response): 1 rows, e.g. ids d" in msg
    assert json.loads((tmp_path / "t.json").read_text())["success"] is False  # the full GE result

    no_response = pd.DataFrame({"id": ["a"], "prompt": ["Q"]})
    msg = _failures(no_response, instruction_suite(CFG), tmp_path)
    assert "expect_column_to_exist(response): the column is missing" in msg
    assert msg.count("(response)") == 1


def test_scored_rows_pass_and_each_fault_is_named(tmp_path):
    ids = ["a", "b", "c"]
    good = pd.DataFrame({"id": ids, "confidence": [0.1, 0.5, 1.0], "reflection": [0.0, 0.3, 0.9]})
    good["id_in_input"] = good["id"].isin(ids)
    assert validate("scored", good, scored_suite(len(ids), ["reflection"]), CFG, tmp_path)

    bad = pd.DataFrame({"id": ["a", "b", "zz", "zz"], "confidence": [1.2, 0.5, 0.4, 0.3], "reflection": [0.1, None, 0.2, 0.2]})
    bad["id_in_input"] = bad["id"].isin(ids)
    msg = _failures(bad, scored_suite(len(ids), ["reflection"]), tmp_path)
    assert "expect_table_row_count_to_equal(table): observed 4" in msg
    assert "expect_column_values_to_be_in_set(id_in_input): 2 rows, e.g. ids zz, zz" in msg
    assert "expect_column_values_to_be_unique(id)" in msg
    assert "expect_column_values_to_be_between(confidence): 1 rows, e.g. ids a" in msg
    assert "expect_column_values_to_not_be_null(reflection): 1 rows, e.g. ids b" in msg


def test_outcomes_conserve_rows_and_bound_what_is_dropped(tmp_path):
    ids = ["a", "b", "c", "d"]
    scores = {"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.05}
    good = [{"id": "a", "outcome": KEPT}, {"id": "b", "outcome": KEPT},
            {"id": "c", "outcome": CORRECTED}, {"id": "d", "outcome": QUARANTINED}]
    assert validate("outcomes", outcome_frame(good, scores, 0.2), outcome_suite(len(ids), 0.2, CFG), CFG, tmp_path)

    lost_and_doubled = [{"id": "a", "outcome": KEPT}, {"id": "c", "outcome": REMOVED}, {"id": "c", "outcome": KEPT},
                        {"id": "x", "outcome": "misplaced"}]
    msg = _failures(outcome_frame(lost_and_doubled, scores, 0.2), outcome_suite(len(ids), 0.2, CFG), tmp_path)
    assert "expect_column_values_to_be_unique(id): 2 rows, e.g. ids c, c" in msg
    assert "expect_column_values_to_be_in_set(id_in_input): 1 rows, e.g. ids x" in msg
    assert "expect_column_values_to_be_in_set(outcome)" in msg and "ids x" in msg

    corrected_above_gamma = [{"id": "a", "outcome": CORRECTED}, {"id": "b", "outcome": KEPT},
                             {"id": "c", "outcome": KEPT}, {"id": "d", "outcome": KEPT}]
    msg = _failures(outcome_frame(corrected_above_gamma, scores, 0.2), outcome_suite(len(ids), 0.2, CFG), tmp_path)
    assert msg.count("\n") == 1 and "expect_column_values_to_be_in_set(corrected_below_gamma): 1 rows, e.g. ids a" in msg

    too_much_removed = [{"id": i, "outcome": REMOVED} for i in ("a", "b", "c")] + [{"id": "d", "outcome": KEPT}]
    msg = _failures(outcome_frame(too_much_removed, scores, 0.2), outcome_suite(len(ids), 0.2, CFG), tmp_path)
    assert "expect_column_values_to_be_in_set(outcome): 3 rows" in msg


def test_non_strict_mode_warns_and_continues(tmp_path, caplog):
    bad = pd.DataFrame({"id": ["a", "a"], "prompt": ["Q", "Q"], "response": ["r", "r"]})
    cfg = ValidateConfig(strict=False)
    with caplog.at_level(logging.WARNING):
        assert validate("loose", bad, instruction_suite(cfg), cfg, tmp_path) is False
    assert "expect_column_values_to_be_unique(id)" in caplog.text and "continuing" in caplog.text


def test_config_validation():
    with pytest.raises(ValueError):
        ValidateConfig(max_removed_share=1.5)
    with pytest.raises(ValueError):
        ValidateConfig(min_chars=10, max_chars=5)


def test_instruction_columns_give_the_full_texts_verdicts_and_reported_values(tmp_path):
    rows = [{"id": "a", "prompt": "What is the capital?", "response": "Paris"},
            {"id": "b", "prompt": "Q" * 41, "response": "too long a prompt"},  # CFG.max_chars is 40
            {"id": "c", "prompt": "Sky?", "response": ""},  # shorter than min_chars
            {"id": "d", "prompt": None, "response": "no prompt"},
            {"id": "e", "prompt": "Another question", "response": "fine"}]
    columns = InstructionColumns(CFG)
    for row in rows:
        columns.add(row)
    compact = columns.frame()
    assert compact["prompt"][0] is compact["prompt"][4]  # passing texts share one stand-in
    full = pd.DataFrame({c: [r[c] for r in rows] for c in ("id", "prompt", "response")})
    messages = [_failures(frame, instruction_suite(CFG), tmp_path / d) for frame, d in ((compact, "compact"), (full, "full"))]
    assert messages[0].split("\n", 1)[1] == messages[1].split("\n", 1)[1]  # the first line names the report's folder
    reported = [json.loads((tmp_path / d / "t.json").read_text())["results"] for d in ("compact", "full")]
    assert [r["result"] for r in reported[0]] == [r["result"] for r in reported[1]]
