"""benchmarks/scale/correct_budget.py samples the correct stage's removed rows again, seed for seed (no timings asserted)."""

from __future__ import annotations

import json
import sys

import yaml

from helpers import ROOT, copy_repo, read_lines, run_cmd


def test_it_redraws_the_stages_samples_and_counts_the_cut_ones_per_budget(pipeline_run, tmp_path):
    repo = copy_repo(pipeline_run, tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # a threshold above all but the highest scores (the tiny model's tie at the bottom), so rows go to Auto-Correct
    gamma = sorted(r["confidence"] for r in read_lines(repo / "data/scored/train.jsonl"))[-2]
    params["filter"].update(gamma=gamma, quantile=None)
    params["validate"]["max_removed_share"] = 0.95
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    run_cmd(["dvc", "repro", "correct"], repo)
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
