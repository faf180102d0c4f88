"""The whole pipeline, unchanged but for params.yaml, with `model.backend: openai` against a real
OpenAI-compatible HTTP server on 127.0.0.1 (the local server over the tiny model)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import SECRETS, build_pipeline_repo, command_env, local_openai_server, run_cmd

pytestmark = pytest.mark.pipeline
KEY = SECRETS["OPENAI_API_KEY"]  # the server accepts only the planted key, which must never reach an output


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    yield from local_openai_server(tiny_model_dir, "tiny-chat", KEY, timeout_sleep_s=10.0)


@pytest.fixture(scope="module")
def repo(server, tmp_path_factory) -> Path:
    state, url = server

    def openai(params: dict) -> None:
        params["model"]["backend"] = "openai"
        params["openai"].update(base_url=url, model="tiny-chat", timeout_s=5.0, poll_s=0.2, max_concurrency=4,
                                price_input_per_mtok=1.0, price_output_per_mtok=2.0)
        params["score"].update(recipe="paper", fewshot=1, weights={})
        params["correct"]["judge"] = "pairwise"  # the agreement judge needs log p(original), which chat APIs do not return

    # Every kind of failure, served to the first requests (score's): the run must recover from all.
    state.faults.extend(["429", "500", "timeout", "malformed"])
    work = tmp_path_factory.mktemp("openai") / "repo"
    return build_pipeline_repo(work, openai, CLEARCURATE_CACHE=str(work.parent / "cache"))


def test_every_stage_ran_through_the_server(repo: Path, server):
    state, _ = server
    score = json.loads((repo / "metrics/score.json").read_text())
    errors = score["api"]["errors"]  # a busy test machine can time out a few more requests: each is retried
    assert errors["RateLimitError"] == errors["InternalServerError"] == errors["JSONDecodeError"] == 1
    assert errors["APITimeoutError"] >= 1 and score["api"]["retries"] == sum(errors.values())
    assert score["api"]["requests"] > 12 and score["api"]["estimated_cost_usd"] > 0
    assert score["reflection_unparsed"] == 24  # the random tiny model never answers with a letter: counted, not 0.5
    assert state.stats["n_max"] == 2  # k = 2 samples in one request
    for name in ("baseline", "filtered"):
        ref = json.loads((repo / "models" / name / "openai_model.json").read_text())
        assert ref["model"].startswith("ft:tiny-chat:") and ref["model"] in state.models
    assert json.loads((repo / "models/base/openai_model.json").read_text())["model"] == "tiny-chat"
    evaluate = json.loads((repo / "metrics/evaluate.json").read_text())
    assert {"base", "baseline", "filtered", "corrected", "api"} <= set(evaluate)
    outcomes = [json.loads(line) for line in (repo / "data/curated/outcomes.jsonl").read_text().splitlines()]
    assert len(outcomes) == 14 and all(o["reason"] for o in outcomes)


def test_the_key_never_reaches_an_output(repo: Path):
    leaks = [str(p) for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts and KEY.encode() in p.read_bytes()]
    assert not leaks
    assert KEY not in (repo / "repro.log").read_text() and KEY not in (repo / "params.yaml").read_text()


def test_a_spent_budget_stops_score_and_a_rerun_resumes_from_the_cache(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["score"]["k"] = 3  # new cache keys: every row must be sampled again
    params["model"]["batch_size"] = 1
    params["openai"].update(max_requests=5, max_concurrency=1)  # chunks of 2 rows, one request per row
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = command_env(CLEARCURATE_CACHE=str(repo.parent / "cache"))
    proc = subprocess.run(["dvc", "repro", "score"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "request budget spent (5 of openai.max_requests 5)" in proc.stderr and "rerun `dvc repro` to resume" in proc.stderr
    params["openai"]["max_requests"] = 0
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    run_cmd(["dvc", "repro", "score"], repo, CLEARCURATE_CACHE=str(repo.parent / "cache"))
    metrics = json.loads((repo / "metrics/score.json").read_text())
    # 4 rows were sampled (2 chunks of 2) before the budget stop and are not requested again. The
    # tiny model's reflections were unparsed, which are never cached: all 12 are asked again.
    assert metrics["cache_hits"] == {"samples": 4}
    assert metrics["cache_misses"] == {"samples": 8, "reflection": 12}


def test_no_crossfit_through_an_api(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["score"]["recipe"] = "crossfit"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(["dvc", "repro", "score"], cwd=repo, env=command_env(), capture_output=True, text=True)
    assert proc.returncode != 0 and "use score.recipe: paper" in proc.stderr
