"""The pipeline on free-form Alpaca-format data without noise labels: the README's "your own data" path.

Free-form test rows (no `answers`) get free-form metrics by name, never exact match; without noise
labels there are no detection metrics at all; `noise_labels: null` and a missing key both work
with every DVC command.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from noisy_freeform import DOLLY_SOURCE, DollyNConfig, build_dolly_n  # benchmarks/curation (pyproject: pythonpath)

from helpers import build_pipeline_repo, run_cmd


def _alpaca(work: Path) -> None:
    train, test, _ = build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=12, n_test=4, noise_rate=0.25, max_words=40))
    raw = work / "data" / "raw"
    raw.mkdir(parents=True)
    for name, rows in (("train.json", train), ("test.json", test)):
        alpaca = [{"instruction": r["prompt"], "input": "", "output": r["response"]} for r in rows]
        (raw / name).write_text(json.dumps(alpaca, indent=1), encoding="utf-8")


def _params(params: dict) -> None:
    params["data"].update(train="data/raw/train.json", test="data/raw/test.json", format="alpaca")
    params["evaluate"]["noise_labels"] = None


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return build_pipeline_repo(tmp_path_factory.mktemp("freeform"), _params, _alpaca)


def test_free_form_test_rows_get_named_free_form_metrics_and_no_detection(repo: Path):
    metrics = json.loads((repo / "metrics/evaluate.json").read_text())
    for model in ("base", "baseline", "filtered", "corrected"):
        named = {"token_f1_vs_reference", "heldout_nll_per_token"}
        named_ci = {*named, "heldout_perplexity"}
        assert set(metrics[model]) == {"n", *named_ci, *(f"{m}_ci_{e}" for m in named_ci for e in ("low", "high"))}
        assert 0.0 <= metrics[model]["token_f1_vs_reference"] <= 100.0 and metrics[model]["heldout_nll_per_token"] > 0
        assert metrics[model]["token_f1_vs_reference_ci_low"] <= metrics[model]["token_f1_vs_reference"]  # every number has its CI
    # paired differences, free-form too (perplexity is the loss's exp: no difference of its own)
    assert set(metrics["filtered_vs_baseline"]) == {k for k in metrics["base"] if not k.startswith("heldout_perplexity")}
    assert metrics["baseline"]["heldout_nll_per_token"] != metrics["base"]["heldout_nll_per_token"]  # the adapter is used
    assert "detection" not in metrics and "correction" not in metrics  # absent, not zero
    scores = json.loads((repo / "metrics/test_scores.json").read_text())
    assert {s["metric"] for s in scores} == {"token_f1_vs_reference"}
    assert "no noise labels" in (repo / "repro.log").read_text()


def test_null_and_missing_noise_labels_work_with_every_dvc_command(repo: Path):
    assert "Data and pipelines are up to date" in run_cmd(["dvc", "repro"], repo)
    run_cmd(["dvc", "status"], repo)
    run_cmd(["dvc", "metrics", "show"], repo)
    run_cmd(["dvc", "dag"], repo)
    params = (repo / "params.yaml").read_text(encoding="utf-8")
    assert "noise_labels: null" in params
    (repo / "params.yaml").write_text(params.replace("  noise_labels: null\n", ""), encoding="utf-8")
    run_cmd(["dvc", "repro"], repo)
    assert "detection" not in json.loads((repo / "metrics/evaluate.json").read_text())
