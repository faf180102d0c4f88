"""Row-level dataset diffs: the pure comparison, and rendering (the real two-commit diffs are in
tests/integration/test_versioning_pipeline.py)."""

from __future__ import annotations

import json
import random
from dataclasses import asdict

import pytest

from clearcurate.data import versioning
from clearcurate.data.versioning import (
    PREPARED,
    SCORED,
    STAGE_DECISIONS,
    DecisionTable,
    IdColumn,
    RowTable,
    describe_flipped,
    diff_outcomes,
    diff_revisions,
    diff_rows,
    diff_stage,
    one_line,
    read_rows,
    render_outcomes,
    render_rows,
    sort_flipped,
    word_diff,
)
from helpers import run_cmd


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


def test_decision_table_keeps_first_place_and_last_decision_of_a_repeated_id():
    table = DecisionTable()
    for i, label in [("b", "kept"), ("é-1", "kept"), ("a", "removed"), ("b", "removed"), ("c", "kept")]:
        table.add(0, i, label)
    for i, label in [("d", "kept"), ("c", "kept"), ("b", "removed"), ("é-1", "removed"), ("a", "removed"), ("e", "kept")]:
        table.add(1, i, label)
    diff = table.diff("filter")
    assert diff.counts_a == {"removed": 2, "kept": 2} and diff.counts_b == {"kept": 3, "removed": 3}
    # run a's order (by first place), then b's new rows in b's order
    assert list(diff.flipped.items()) == [("é-1", ("kept", "removed")), ("d", ("absent", "kept")), ("e", ("absent", "kept"))]


def test_row_table_orders_rows_and_takes_the_scored_sets_last_confidence():
    table = RowTable()
    for i, response in [("x", "one"), ("y", "two"), ("z", "three"), ("x", "ONE")]:
        table.add(0, i, {"response": response})
    for i, response in [("w", "new"), ("y", "two"), ("x", "ONE")]:
        table.add(1, i, {"response": response})
    for version, scores in ((0, [("y", 0.1), ("x", 0.5)]), (1, [("y", 0.9), ("y", 0.2), ("q", 1.0)])):
        for i, c in scores:
            table.add_scored(version, i, c)
    assert table.scored_rows == [2, 3]
    diff = table.diff((True, True))
    assert (diff.rows_a, diff.rows_b, diff.added, diff.removed) == (3, 3, ["w"], ["z"])
    assert diff.response_changed == {} and diff.confidence_changed == {"y": (0.1, 0.2)}
    assert not RowTable().diff((False, False)).summary()["rows_a"]
    with pytest.raises(RuntimeError, match="every row must be added before"):
        table.add(0, "late", {"response": "too late"})


def test_two_ids_with_one_digest_are_an_error_not_one_row(monkeypatch):
    ids = IdColumn()
    for i in ("a", "b", "a"):
        ids.append(i)
    assert [ids[k] for k in range(3)] == ["a", "b", "a"] and len(ids.unique()[0]) == 2
    monkeypatch.setattr(versioning.diff, "_digest", lambda raw: 7)
    clash = IdColumn()
    clash.append("a")
    clash.append("b")
    with pytest.raises(ValueError, match="share a 64-bit digest"):
        clash.unique()


def test_flipped_rows_show_their_text_on_one_line_and_both_confidences():
    assert one_line("a\n  b\tc") == "a b c" and one_line("x" * 100, 10) == "x" * 9 + "…"
    ledger_a = {"1": {"id": "1", "outcome": "removed", "confidence": 0.1, "reason": "defect refusal: the response declines"},
                "2": {"id": "2", "outcome": "kept"}}
    ledger_b = {"1": {"id": "1", "outcome": "corrected"}, "2": {"id": "2", "outcome": "kept"}}
    texts = {"1": {"id": "1", "prompt": "Capital of\nFrance?", "response": "Lyon"}}  # the ledger has ids only
    diff = diff_outcomes("correct", {i: r["outcome"] for i, r in ledger_a.items()}, {i: r["outcome"] for i, r in ledger_b.items()})
    describe_flipped(diff, ledger_a, ledger_b, None, {"2": 0.9}, texts)
    assert diff.rows == {"1": {"prompt": "Capital of\nFrance?", "response": "Lyon", "confidence_a": 0.1, "confidence_b": None,
                               "reason_a": "defect refusal: the response declines"}}
    text = render_outcomes(diff, "t", "text")
    assert "  1: removed -> corrected (confidence 0.1000 -> n/a)" in text and "      prompt:     Capital of France?" in text
    assert "      why before: defect refusal: the response declines" in text and "why after" not in text
    assert json.loads(render_outcomes(diff, "t", "json"))["rows"]["1"]["prompt"] == "Capital of\nFrance?"  # JSON: in full


def test_flipped_rows_sort_by_transition_then_confidence_under_the_settings_that_moved():
    """What a reviewer of a threshold change needs: the threshold before and after, and the rows it moved past
    side by side in confidence order, each confidence once when the score itself did not move."""
    assert one_line("x " * 200, 0) == ("x " * 200).strip()  # width 0: the whole text
    diff = diff_outcomes("filter", {"a": "kept", "b": "kept", "c": "removed", "d": "kept"},
                         {"a": "removed", "b": "removed", "c": "kept", "d": "removed"})
    scores = {"a": 0.30, "b": 0.27, "c": 0.5}
    sort_flipped(diff, scores, scores)
    assert list(diff.flipped) == ["b", "a", "d", "c"]  # kept -> removed by confidence, d (no score) last; then removed -> kept
    describe_flipped(diff, {}, {}, scores, scores)
    diff.settings_a, diff.settings_b = {"gamma": 0.263, "threshold": "quantile 0.2"}, {"gamma": 0.327, "threshold": "quantile 0.25"}
    text = render_outcomes(diff, "t", "text")
    assert "settings: gamma 0.2630 -> 0.3270, threshold quantile 0.2 -> quantile 0.25" in text
    assert "  b: kept -> removed (confidence 0.2700)\n" in text and "0.2700 -> 0.2700" not in text
    assert text.index("  b:") < text.index("  a:") < text.index("  d:") < text.index("  c:")


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A git + DVC repo with 300 rows: a committed run and another in the workspace (added, dropped,
    rewritten and rescored rows, decisions that flip in filter and in the correct ledger)."""
    from dvc.repo import Repo

    repo = tmp_path_factory.mktemp("two_runs")
    run_cmd(["git", "init", "-q"], repo)
    Repo.init(str(repo)).close()
    rng = random.Random(0)
    words = "the cat sat on a mat in sun today".split()
    rows = {f"r{i}": {"id": f"r{i}", "prompt": f"Q{i} " + " ".join(rng.choices(words, k=8)), "response": " ".join(rng.choices(words, k=5))}
            for i in range(300)}
    for run in (1, 2):
        if run == 2:
            run_cmd(["git", "add", "-A"], repo)
            run_cmd(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "run 1"], repo)
            for i in rng.sample(sorted(rows), 20):
                rows[i] = {**rows[i], "response": rows[i]["response"] + " and the mat"}
            for i in rng.sample(sorted(rows), 10):
                del rows[i]
            rows.update({f"n{i}": {"id": f"n{i}", "prompt": f"new {i}", "response": "sun"} for i in range(7)})
        conf = {i: rng.random() for i in rows}
        gamma = 0.3 if run == 1 else 0.4
        _write(repo / PREPARED, rows.values())
        _write(repo / SCORED, [{"id": i, "confidence": c, "samples": ["x"]} for i, c in conf.items()])
        _write(repo / "data/filtered/kept.jsonl", [r for i, r in rows.items() if conf[i] >= gamma])
        _write(repo / "data/filtered/removed.jsonl", [{**r, "confidence": conf[i]} for i, r in rows.items() if conf[i] < gamma])
        _write(repo / "data/curated/train.jsonl", [r for i, r in rows.items() if conf[i] >= gamma])
        ledger = [{"id": i, "outcome": "kept" if conf[i] >= gamma else rng.choice(["removed", "corrected"]), "reason": "r"} for i in rows]
        _write(repo / "data/curated/outcomes.jsonl", [*ledger, {"id": "raw.jsonl:3", "outcome": "quarantined", "reason": "q"}])
    return str(repo)


def _in_memory_stage_diff(stage, repo):
    """`diff_stage` as it was computed with every row of both runs in memory: the reference."""
    def decisions(rev):
        outcomes, rows = {}, {}
        for path, label in STAGE_DECISIONS[stage]:
            for i, row in read_rows(path, rev, repo).items():
                outcomes[i], rows[i] = label if label is not None else str(row["outcome"]), row
        return outcomes, rows

    def confidences(rev):
        return {i: float(r["confidence"]) for i, r in read_rows(SCORED, rev, repo).items()}

    (outcomes_a, rows_a), (outcomes_b, rows_b) = decisions("HEAD"), decisions(None)
    diff = diff_outcomes(stage, outcomes_a, outcomes_b)
    return describe_flipped(diff, rows_a, rows_b, confidences("HEAD"), confidences(None), read_rows(PREPARED, None, repo))


@pytest.mark.parametrize("stage", ["filter", "correct"])
def test_streamed_stage_diff_equals_the_in_memory_diff(two_runs, stage):
    streamed = diff_stage(stage, "HEAD", None, two_runs)
    assert len(streamed.flipped) > 20 and sum(bool(r["prompt"]) for r in streamed.rows.values()) > 20
    assert asdict(streamed) == asdict(_in_memory_stage_diff(stage, two_runs))


def test_streamed_row_diff_equals_the_in_memory_diff(two_runs):
    path = "data/curated/train.jsonl"
    streamed = diff_revisions("HEAD", None, path, two_runs)
    conf = [{i: float(r["confidence"]) for i, r in read_rows(SCORED, rev, two_runs).items()} for rev in ("HEAD", None)]
    expected = diff_rows(read_rows(path, "HEAD", two_runs), read_rows(path, None, two_runs), *conf)
    assert streamed.response_changed and streamed.confidence_changed and streamed.added and streamed.removed
    assert asdict(streamed) == asdict(expected)
    own = diff_revisions("HEAD", None, "data/filtered/removed.jsonl", two_runs)  # rows with their own confidence
    assert asdict(own) == asdict(diff_rows(read_rows("data/filtered/removed.jsonl", "HEAD", two_runs),
                                           read_rows("data/filtered/removed.jsonl", None, two_runs)))


def test_a_text_report_describes_only_the_rows_it_shows(two_runs):
    full = diff_stage("filter", "HEAD", None, two_runs)
    shown = diff_stage("filter", "HEAD", None, two_runs, describe=5)
    assert shown.flipped == full.flipped and list(shown.rows) == list(full.flipped)[:5]
    for fmt in ("text", "markdown"):
        assert render_outcomes(shown, "t", fmt, limit=5) == render_outcomes(full, "t", fmt, limit=5)
