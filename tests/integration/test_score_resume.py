"""A `dvc repro` killed in the middle of scoring resumes where it stopped (real process, real kill)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import ROOT

pytestmark = pytest.mark.pipeline
ROWS = 24


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "CLEARCURATE_PROGRESS": "0"}


def _entries(repo: Path, kind: str) -> int:
    return sum(1 for _ in (repo / ".clearcurate/cache" / kind).glob("*/*.json"))


@pytest.fixture()
def repo(tmp_path) -> Path:
    for name in ("dvc.yaml", "stages", "src"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    train = [json.loads(line) for line in (ROOT / "data/raw/train.jsonl").read_text().splitlines()][:ROWS]
    (raw / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    shutil.copy(ROOT / "data/raw/test.jsonl", raw / "test.jsonl")
    (tmp_path / "data" / "labels").mkdir()
    shutil.copy(ROOT / "data/labels/noise_labels.jsonl", tmp_path / "data" / "labels" / "noise_labels.jsonl")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update(name="tiny", batch_size=1)  # one row per chunk: many chances to be killed
    params["score"].update(k=2, max_new_tokens=8)
    params["train"].update(batch_size=4, max_length=256)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, env=_env(), check=True)
    subprocess.run(["dvc", "repro", "prepare"], cwd=tmp_path, env=_env(), check=True, capture_output=True)
    return tmp_path


def test_killed_scoring_resumes_with_only_the_rest(repo: Path):
    proc = subprocess.Popen(["dvc", "repro", "score"], cwd=repo, env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _entries(repo, "samples") < ROWS // 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # dvc and the stage's python, mid-run
    proc.wait()
    done = _entries(repo, "samples")
    assert _entries(repo, "reflection") == 0  # the default short preset weighs no base-model component
    assert ROWS // 2 <= done < ROWS, f"the kill came too late to test resuming ({done} entries)"
    assert not (repo / "data/scored/train.jsonl").exists()  # no partial output

    out = subprocess.run(["dvc", "repro", "score"], cwd=repo, env=_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    metrics = json.loads((repo / "metrics/score.json").read_text())
    hits, misses = metrics["cache_hits"], metrics["cache_misses"]
    assert sum(hits.values()) == done and sum(misses.values()) == ROWS - done  # only the rest was computed
    assert len((repo / "data/scored/train.jsonl").read_text().splitlines()) == ROWS
