"""The benchmark runs the shipped code: a benchmark cell trained on the pipeline's own rows with its params gives
the numbers the pipeline's evaluate stage wrote to metrics/evaluate.json, exactly (issue 29)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from clearcurate.core.records import read_jsonl
from clearcurate.llm.factory import load_lm
from helpers import ROOT

pytestmark = pytest.mark.pipeline

BENCH = ROOT / "benchmarks" / "curation"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        import cells
        import harness
        import specs
    finally:
        sys.path.remove(str(BENCH))
    return cells, harness, specs


def test_a_benchmark_cell_on_the_pipelines_rows_gives_its_metrics(pipeline_run: Path, bench_modules, tmp_path: Path) -> None:
    cells_mod, harness, specs = bench_modules
    params, typed = cells_mod.load_params(pipeline_run / "params.yaml")
    lm = load_lm(typed, pipeline_run / "models" / "base")
    bench = cells_mod.Bench(lm, params, harness.Cache(tmp_path / "cache"), params["model"]["name"], seeds=1)
    test = read_jsonl(pipeline_run / "data/prepared/test.jsonl")
    spec = specs.DatasetSpec("pipeline-rows", "squad", 0.0, 0, len(test), typed.evaluate.max_new_tokens, ("none",))
    metrics = json.loads((pipeline_run / "metrics/evaluate.json").read_text())
    seed = typed.train.seed

    cells = {
        "base": bench.base_scores(spec, test),
        "baseline": bench.cell(spec, read_jsonl(pipeline_run / "data/prepared/train.jsonl"), test, seed),
        "filtered": bench.cell(spec, read_jsonl(pipeline_run / "data/filtered/kept.jsonl"), test, seed),
    }
    for model, cell in cells.items():
        shown = {k: cell[k] for k in metrics[model]}
        assert shown == metrics[model], model  # every metric the stage wrote, to the last bit
        assert cell["stale"] is False
    assert cells["filtered"]["rows"] == len(read_jsonl(pipeline_run / "data/filtered/kept.jsonl"))
    # Not equal by accident (the tiny model answers nothing right): another seed's adapter gives another held-out loss.
    other = bench.cell(spec, read_jsonl(pipeline_run / "data/filtered/kept.jsonl"), test, seed + 1)
    assert other["heldout_nll_per_token"] != metrics["filtered"]["heldout_nll_per_token"]


def test_the_full_size_check_refuses_a_checkout_whose_rows_are_not_the_benchmarks(pipeline_run: Path, bench_modules) -> None:
    """same_as_demo.py compares only like with like: the test pipeline's 12 rows are not squad-n-20's."""
    sys.path.insert(0, str(BENCH))
    try:
        import same_as_demo
    finally:
        sys.path.remove(str(BENCH))
    with pytest.raises(SystemExit, match="not squad-n-20's"):
        same_as_demo.main(["--demo", str(pipeline_run)])


def test_the_docs_quote_the_stored_full_size_check() -> None:
    """docs/benchmark.md's account of same_as_demo.py (which models are identical, how close the base model is, at
    which code) is the stored result's, so a rerun that moves it fails here until the prose follows."""
    stored = json.loads((BENCH / "same_as_demo_results.json").read_text(encoding="utf-8"))
    text = " ".join((ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8").split())
    identical = [m for m, v in stored["models"].items() if v["identical"]]
    assert f"the {', '.join(identical[:-1])} and {identical[-1]} models' metrics" in text
    close = [v["max_relative_difference"] for v in stored["models"].values() if not v["identical"]]
    assert close and f"within {max(close):.1e} relative" in text and f"`{stored['code']}`" in text
