"""changes.py lists every reported number that moved between two results.json files, with what explains it."""

from __future__ import annotations

import json
import subprocess
import sys

import changes
import pytest

from helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "curation" / "changes.py"


def _set(auroc: float, stale: bool, em: list[float], fingerprint: str) -> dict:
    cell = lambda e: {"seed": 0, "exact_match": e, "f1": e + 10, "stale": stale}  # noqa: E731
    return {"code": {"fingerprint": fingerprint, "results": len(em) + 1, "stale": (len(em) + 1) * stale}, "machine": "CPU",
            "detection": [{"scorer": "clear", "auroc": auroc, "precision": 0.5, "recall": 0.5, "stale": stale}],
            "downstream": {"none": [cell(e) for e in em], "oracle": []},
            "primary": {"clear_filter vs none": {
                "seeds": len(em), "stale": stale,
                "exact_match": {"diff": 1.0, "low": -1.0, "high": 3.0, "verdict": "no detectable change"}}}}


def test_moved_added_and_recomputed_numbers_are_listed_and_unchanged_ones_are_not():
    before = {"datasets": {"kept": _set(0.8, False, [40.0], "a"), "rerun": _set(0.7, True, [30.0, 32.0], "old"),
                           "gone": _set(0.6, True, [1.0], "old")}}
    after = {"datasets": {"kept": _set(0.8 + 1e-15, False, [40.0], "a"), "rerun": _set(0.75, False, [30.0, 32.0], "a"),
                          "new": _set(0.9, False, [50.0], "a")}}
    found = changes.changes(before, after)
    assert set(found["sets"]) == {"rerun", "new", "gone"}  # rounding is not a change
    assert [found["sets"][n]["status"] for n in ("new", "rerun", "gone")] == ["added", "changed", "removed"]
    rerun = {n["number"]: n for n in found["sets"]["rerun"]["numbers"]}
    assert rerun["detection clear auroc"] == {"number": "detection clear auroc", "before": 0.7, "after": 0.75,
                                              "stale_before": True, "stale_after": False}
    # the same EM from a fresh cell is listed too: a stale number became a current one
    assert rerun["none exact_match mean"]["before"] == rerun["none exact_match mean"]["after"] == 31.0
    assert found["sets"]["rerun"]["before"]["fingerprint"] == "old" and found["sets"]["rerun"]["after"]["fingerprint"] == "a"
    assert "oracle seeds" not in rerun  # a method with no cells has no numbers
    assert found["numbers_changed"] == sum(len(s["numbers"]) for s in found["sets"].values())
    table = changes.markdown(found)
    assert "| detection clear auroc | 0.7 † | 0.75 |" in table
    assert "| primary clear_filter vs none exact_match | - | +1 [-1, +3] no detectable change |" in table


def test_a_committed_revision_is_read_from_git():
    """The first fresh cells (f69e92b) against the commit before them: one set added, CLEAR's stored AUROC."""
    if subprocess.run(["git", "cat-file", "-e", "f69e92b~1"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("a shallow clone: the revisions compared are not in its history")
    done = subprocess.run([sys.executable, str(SCRIPT), "--before", "f69e92b~1", "--after", "f69e92b"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert list(found["sets"]) == ["squad-n-20-1k-fresh"] and found["sets"]["squad-n-20-1k-fresh"]["status"] == "added"
    numbers = {n["number"]: n["after"] for n in found["sets"]["squad-n-20-1k-fresh"]["numbers"]}
    assert numbers["detection clear auroc"] == 0.85546875 and numbers["none seeds"] == 1
    unknown = subprocess.run([sys.executable, str(SCRIPT), "--before", "no-such-revision"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
    assert unknown.returncode != 0 and "neither a file nor a git revision" in unknown.stderr
