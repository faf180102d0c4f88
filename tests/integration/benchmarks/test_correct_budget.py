"""benchmarks/scale/correct_budget.py samples the correct stage's removed rows again, seed for seed (no timings asserted)."""

from __future__ import annotations

import json
import sys

from helpers import ROOT, read_lines, run_cmd, with_removed_rows


def test_it_redraws_the_stages_samples_and_counts_the_cut_ones_per_budget(pipeline_run, tmp_path):
    repo = with_removed_rows(pipeline_run, tmp_path / "repo")
    decisions = read_lines(repo / "data" / "curated" / "decisions.jsonl")
    assert decisions and all(d["samples"] for d in decisions)
    out = run_cmd([sys.executable, str(ROOT / "benchmarks" / "scale" / "correct_budget.py"), str(repo),
                   "--budgets", "2", "64"], cwd=ROOT, stdout_only=True)
    report = json.loads(out)
    assert report["rows"] == len(decisions) and report["samples"] == report["rows"] * report["k"]
    # the same seeds give the samples the stage drew: the claim the budget comparison rests on
    assert report["first samples that begin as the stage's did"] == f"{len(decisions)} of {len(decisions)}"
    small, large = report["by budget"]["2"], report["by budget"]["64"]
    assert large["samples cut"] <= small["samples cut"] <= report["samples"]
    assert large["rows with a sample cut"] <= small["rows with a sample cut"] <= report["rows"]
