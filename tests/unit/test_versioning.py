"""Row-level dataset diffs: the pure comparison, and rendering (the real two-commit diffs are in
tests/integration/test_versioning_pipeline.py)."""

from __future__ import annotations

import json

from clearcurate.versioning import describe_flipped, diff_outcomes, diff_rows, one_line, render_outcomes, render_rows, word_diff


def test_word_diff_marks_changes_and_elides_long_unchanged_runs():
    assert word_diff("the cat sat on the mat today in the sun", "the cat sat on a mat today in the sun") == (
        "… cat sat on [-the-] {+a+} mat today in …"
    )
    assert word_diff("Paris", "Paris, France") == "[-Paris-] {+Paris, France+}"
    assert word_diff("a b c d e f", "a b c d e f g") == "… d e f {+g+}"
    assert word_diff("a  b", "a b") == "(whitespace only)"


def test_diff_rows_finds_added_removed_rewritten_and_rescored_rows():
    a = {"1": {"id": "1", "response": "x"}, "2": {"id": "2", "response": "y"}, "3": {"id": "3", "response": "z"}}
    b = {"2": {"id": "2", "response": "y y"}, "3": {"id": "3", "response": "z"}, "4": {"id": "4", "response": "w"}}
    diff = diff_rows(a, b, {"2": 0.5, "3": 0.4, "1": 0.1}, {"2": 0.5, "3": 0.45, "4": 0.9})
    assert diff.added == ["4"] and diff.removed == ["1"]
    assert diff.response_changed == {"2": "y {+y+}"}
    assert diff.confidence_changed == {"3": (0.4, 0.45)}
    assert diff.summary() == {"rows_a": 3, "rows_b": 3, "added": 1, "removed": 1, "response_changed": 1, "confidence_changed": 1}


def test_confidence_inside_the_rows_is_used_and_float_noise_ignored():
    a = {"1": {"id": "1", "response": "x", "confidence": 0.3}}
    b = {"1": {"id": "1", "response": "x", "confidence": 0.3 + 1e-9}}
    assert diff_rows(a, b).confidence_changed == {}


def test_renderings_put_the_summary_first_and_respect_the_limit():
    a = {str(i): {"id": str(i), "response": "r"} for i in range(5)}
    diff = diff_rows(a, {})
    text = render_rows(diff, "t", "text", limit=2)
    assert text.splitlines()[2].startswith("rows 5 -> 0: 0 added, 5 removed")
    assert "… and 3 more" in text
    md = render_rows(diff, "t", "markdown", limit=None)
    assert md.startswith("## t") and "| 5 | 0 | 0 | 5 | 0 | 0 |" in md and md.count("- `") == 5
    assert json.loads(render_rows(diff, "t", "json"))["removed"] == ["0", "1", "2", "3", "4"]


def test_outcome_diff_counts_transitions():
    diff = diff_outcomes("filter", {"1": "kept", "2": "kept", "3": "removed"}, {"1": "removed", "2": "kept", "4": "kept"})
    assert diff.flipped == {"1": ("kept", "removed"), "3": ("removed", "absent"), "4": ("absent", "kept")}
    assert diff.counts_a == {"kept": 2, "removed": 1} and diff.counts_b == {"removed": 1, "kept": 2}
    text = render_outcomes(diff, "t", "text")
    assert "kept -> removed: 1" in text and "3 rows changed decision:" in text
    assert json.loads(render_outcomes(diff, "t", "json"))["transitions"]["kept -> removed"] == 1


def test_flipped_rows_show_their_text_on_one_line_and_both_confidences():
    assert one_line("a\n  b\tc") == "a b c" and one_line("x" * 100, 10) == "x" * 9 + "…"
    ledger_a = {"1": {"id": "1", "outcome": "removed", "confidence": 0.1}, "2": {"id": "2", "outcome": "kept"}}
    ledger_b = {"1": {"id": "1", "outcome": "corrected"}, "2": {"id": "2", "outcome": "kept"}}
    texts = {"1": {"id": "1", "prompt": "Capital of\nFrance?", "response": "Lyon"}}  # the ledger has ids only
    diff = diff_outcomes("correct", {i: r["outcome"] for i, r in ledger_a.items()}, {i: r["outcome"] for i, r in ledger_b.items()})
    describe_flipped(diff, ledger_a, ledger_b, None, {"2": 0.9}, texts)
    assert diff.rows == {"1": {"prompt": "Capital of\nFrance?", "response": "Lyon", "confidence_a": 0.1, "confidence_b": None}}
    text = render_outcomes(diff, "t", "text")
    assert "  1: removed -> corrected (confidence 0.1000 -> n/a)" in text and "      prompt:   Capital of France?" in text
    assert json.loads(render_outcomes(diff, "t", "json"))["rows"]["1"]["prompt"] == "Capital of\nFrance?"  # JSON: in full
