"""The Ray engine on a real local Ray cluster (`ray start --head` on 127.0.0.1, 2 CPUs, so 2 workers) and the tiny model:
a killed `score` stage resumes with only the missing rows, and gives the local engine's samples, scores and
decisions; a failing row fails alone, with its reason. Auto-Correct and evaluate's model work on the cluster
give the local engine's decisions, answers and metrics; a row Auto-Correct fails on is removed, with the error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path

import pytest
import torch
import yaml

from clearcurate.answers import BASE, answer_all, model_answers
from clearcurate.cache import ScoreCache, model_fingerprint
from clearcurate.config import parse
from clearcurate.core.curation import FilterConfig, split_by_threshold, threshold
from clearcurate.core.evaluation import model_scores
from clearcurate.correction import CorrectConfig, correct_on, correct_rows
from clearcurate.engines.ray import RayEngine, _in_order
from clearcurate.llm.base import RowsFailed
from clearcurate.llm.factory import prepare_scorer
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.lora import LoraTrainConfig, attach_lora
from clearcurate.llm.models import load
from clearcurate.scoring import ScoreConfig, score_rows
from clearcurate.scoring.similarity import get_similarity
from helpers import ROOT, assert_same_records, command_env

ROWS = 24
TRAIN = LoraTrainConfig(batch_size=4, max_length=128, lora_r=4, lora_alpha=8)
PARAMS = {"k": 2, "max_new_tokens": 4, "max_new_tokens_cap": 0, "weights": {"consistency": 1, "reflection": 1, "likelihood": 1}}


def _rows(n: int) -> list[dict]:
    return [{"id": f"r{i}", "prompt": f"Question {i}: name a colour.", "response": ["red", "blue", "The sky is blue."][i % 3]}
            for i in range(n)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Ray head on 127.0.0.1 with 2 CPUs, in its own process group (stopped by signalling that group, never `ray stop`,
    which would stop every Ray instance of the machine)."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=command_env(RAY_AUTH_MODE="disabled"), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while head.poll() is None and time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        assert head.poll() is None, "ray start --head failed"
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
            env.setenv("RAY_AUTH_MODE", "disabled")  # loopback only: no token to share with the driver
            yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every process it started: nothing of the cluster is kept
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_a_failing_row_fails_alone_with_its_reason(cluster, tiny_model_dir):
    lm = LocalLM(*load(tiny_model_dir), batch_size=2, show_progress=False)
    tasks = [{"index": i, "prompt": f"Name colour {i}.", "response": "red", "gen_prompt": lm.chat(f"Name colour {i}."),
              "budget": 0 if i == 2 else 4, "adapter": None, "with_likelihood": False, "sample": True, "reflect": True}
             for i in range(4)]  # a zero token budget: sampling raises for that row
    with RayEngine(tiny_model_dir, model_fingerprint(tiny_model_dir), batch_size=2) as engine:
        results = {r["index"]: r for r in engine.run(tasks, ScoreConfig(**PARAMS), {})}
    assert sorted(results) == [0, 1, 2, 3]
    assert "budget" in results[2]["error"] and "samples" not in results[2] and "reflection" in results[2]
    assert all("error" not in results[i] and len(results[i]["samples"]["texts"]) == 2 for i in (0, 1, 3))


@pytest.fixture()
def stage_repo(tmp_path, tiny_model_dir) -> Path:
    """What `score` reads, without running prepare: prepared rows, the tiny model as models/base (and as the scorer),
    params with engine: ray."""
    for name in ("dvc.yaml", "stages"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(ROWS)))
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "base")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    prepare_scorer(parse(params), tmp_path / "models" / "scorer")  # the scorer is the model being trained: a marker
    params["model"].update(name="tiny", batch_size=2)  # blocks of 2 rows: 12 chances to be killed
    params["engine"] = "ray"
    params["score"].update(PARAMS)
    params["train"].update(asdict(TRAIN))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(["dvc", "init", "-q", "--no-scm"], cwd=tmp_path, env=command_env(), check=True)
    return tmp_path


def test_a_killed_ray_run_resumes_with_only_the_rest_and_equals_the_local_engine(cluster, stage_repo, tiny_model_dir):
    """The real `score` stage on the cluster (fold adapters trained there, rows on 2 workers), killed mid-run and rerun;
    then the local engine, with the same fold adapters, gives the same samples, scores and filter decisions."""
    cmd = [sys.executable, *yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["score"]["cmd"].split()[1:]]
    cache = stage_repo / "cache"
    env = command_env(CLEARCURATE_CACHE=str(cache))  # and RAY_ADDRESS: the cluster
    first_log = stage_repo / "first-run.log"
    with first_log.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=stage_repo, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 180
    while sum(1 for _ in (cache / "samples").glob("*/*.json")) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, mid-run: the cluster drops its job
    proc.wait()
    done = sum(1 for kind in ("samples", "reflection") for _ in (cache / kind).glob("*/*.json"))
    assert 4 <= done < 2 * ROWS, f"the kill came too late to test resuming ({done} entries)"

    out = subprocess.run(cmd, cwd=stage_repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "training" in first_log.read_text()  # the log line that shows fold training ...
    assert "training" not in out.stderr  # ... is absent: the fold adapters trained on the cluster were cached before the kill
    metrics = json.loads((stage_repo / "metrics/score.json").read_text())
    assert metrics["engine"] == "ray" and metrics["workers"] == 2
    assert sum(metrics["cache_hits"].values()) == done and sum(metrics["cache_misses"].values()) == 2 * ROWS - done
    on_ray = [json.loads(line) for line in (stage_repo / "data/scored/train.jsonl").read_text().splitlines()]

    shutil.copytree(cache / "folds", stage_repo / "local" / "folds")  # the same fold models; every row computed again
    lm = LocalLM(*load(tiny_model_dir), batch_size=2, show_progress=False)
    local = score_rows(lm, _rows(ROWS), ScoreConfig(**PARAMS), get_similarity("token_f1"), TRAIN,
                       cache=(local_cache := ScoreCache(stage_repo / "local")), model_id=model_fingerprint(tiny_model_dir))
    assert local_cache.misses == {"samples": ROWS, "reflection": ROWS}
    assert [r["samples"] for r in on_ray] == [r["samples"] for r in local]
    # Equal up to float rounding: a row's batch (its padding) differs between the engines.
    assert [r["confidence"] for r in on_ray] == pytest.approx([r["confidence"] for r in local], abs=1e-6)
    decide = lambda scored: split_by_threshold(  # noqa: E731
        {r["id"]: r["confidence"] for r in scored}, threshold([r["confidence"] for r in scored], FilterConfig(quantile=0.25)).gamma)
    assert decide(on_ray) == decide(local)


def test_results_come_in_the_rows_order_as_soon_as_all_before_them_are_done():
    arrived: list[int] = []

    def arrivals() -> Iterator[dict]:
        for i in (2, 0, 1, 5, 3, 4):
            arrived.append(i)
            yield {"index": i}

    released = [(result["index"], len(arrived)) for result in _in_order(arrivals())]  # (row, results come by then)
    assert released == [(0, 2), (1, 3), (2, 3), (3, 5), (4, 6), (5, 6)]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The local engine's runs here on one thread, as each Ray worker's: two threads spin against each other when the
    workers (or other jobs) hold the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    """Two LoRA adapters as `train` saves them, with random weights (no training needed): each changes the model."""
    out = tmp_path_factory.mktemp("adapters")
    lm = LocalLM(*load(tiny_model_dir), batch_size=2, show_progress=False)
    for seed, name in enumerate(("baseline", "filtered")):
        adapted = attach_lora(lm.model, TRAIN)
        weights = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for key, param in adapted.named_parameters():
                if "lora_B" in key:
                    param.copy_(0.1 * torch.randn(param.shape, generator=weights))
        adapted.save_pretrained(out / name)
        lm.model = adapted.unload()
    return {name: out / name for name in ("baseline", "filtered")}


CORRECT = CorrectConfig(k=2, max_new_tokens=3)
BAD = {"id": "bad", "prompt": None, "response": "red"}  # no prompt: proposing for it raises


@pytest.fixture(scope="module")
def corrected_on_ray(cluster, tiny_model_dir, adapters) -> list[dict]:
    """Auto-Correct's decisions for 6 removed rows and a bad one among them, on 2 workers in blocks of 2 rows."""
    rows = _rows(6)
    with RayEngine(tiny_model_dir, model_fingerprint(tiny_model_dir), batch_size=2) as engine:
        return correct_on(engine, [*rows[:3], BAD, *rows[3:]], CORRECT, adapters["filtered"])


def test_auto_correct_on_ray_decides_as_the_local_engine(corrected_on_ray, tiny_model_dir, adapters):
    """The default (agreement) judge: the same samples, evidence and decisions; the pairwise judge's decisions do not
    depend on the rows decided with them either (tests/unit/test_correction.py)."""
    local = correct_rows(LocalLM(*load(tiny_model_dir, adapters["filtered"]), batch_size=2, show_progress=False), _rows(6), CORRECT)
    on_ray = [d for d in corrected_on_ray if d["id"] != "bad"]
    assert_same_records(json.loads(json.dumps(on_ray)), json.loads(json.dumps(local)))  # as the decisions file has them
    base = correct_rows(LocalLM(*load(tiny_model_dir), batch_size=2, show_progress=False), _rows(6), CORRECT)
    assert [d["samples"] for d in on_ray] != [d["samples"] for d in base]  # the workers proposed with the filtered model


def test_a_row_auto_correct_fails_on_stays_removed_with_its_reason(corrected_on_ray):
    assert [d["id"] for d in corrected_on_ray] == ["r0", "r1", "r2", "bad", "r3", "r4", "r5"]
    (bad,) = [d for d in corrected_on_ray if d["id"] == "bad"]
    assert bad["outcome"] == "removed" and bad["new"] == bad["old"] == "red"
    assert bad["reason"].startswith("Auto-Correct failed on this row: correct_rows: ") and "Error" in bad["reason"]
    assert all("error" not in d for d in corrected_on_ray if d["id"] != "bad")


def test_evaluate_on_ray_gives_the_local_engines_answers_and_metrics(cluster, tiny_model_dir, adapters):
    """Base, baseline and filtered: the same greedy texts, NLLs and metrics; a row that fails comes back as its error
    alone (stages/evaluate.py then stops, listing it)."""
    lm = LocalLM(*load(tiny_model_dir), batch_size=2, show_progress=False)
    test = [{"id": f"t{i}", "prompt": f"Question {i}: name a colour.", "response": ["red", "a deep blue"][i % 2]} for i in range(5)]
    rows = [{"id": r["id"], "prompt": lm.chat(r["prompt"]), "reference": r["response"], "max_new_tokens": 3 + i % 3}
            for i, r in enumerate(test)]
    work = partial(model_answers, models=[BASE, "baseline", "filtered"], with_loss=True)
    bad = {"id": "bad", "prompt": None, "reference": "red", "max_new_tokens": 3}  # fails alone; the stage then stops
    # One worker (the Auto-Correct test runs two): on 2 cores one actor starts sooner than two.
    with RayEngine(tiny_model_dir, model_fingerprint(tiny_model_dir), batch_size=2, workers=1) as engine:
        out = list(engine.map_blocks([*rows[:3], bad, *rows[3:]], work, adapters))
        # what the evaluate stage calls: every other row is done, then the failed ones are named with their reason
        with pytest.raises(RowsFailed, match=r"1 rows failed: bad: model_answers: TypeError"):
            answer_all(lm, engine, [*rows[:2], bad], [BASE, "baseline", "filtered"], True, adapters)
    assert [sorted(o) for o in out] == [["index", "result"]] * 3 + [["error", "index"]] + [["index", "result"]] * 2
    assert out[3]["error"].startswith("model_answers: TypeError")
    on_ray = [o["result"] for o in out if "result" in o]
    lm.load_adapters(adapters)
    local = work(lm, rows)
    assert_same_records(on_ray, local)
    for name in (BASE, "baseline", "filtered"):
        metrics = {engine: model_scores([a[name]["text"] for a in answers], test, [a[name]["nll"] for a in answers])
                   for engine, answers in (("ray", on_ray), ("local", local))}
        assert metrics["ray"] == pytest.approx(metrics["local"], rel=1e-6, abs=1e-6)
    # the adapters are in use on the workers: each model has its own held-out loss
    losses = {name: [a[name]["nll"] for a in on_ray] for name in (BASE, "baseline", "filtered")}
    assert losses[BASE] != pytest.approx(losses["filtered"], abs=1e-3)
    assert losses["baseline"] != pytest.approx(losses["filtered"], abs=1e-3)
