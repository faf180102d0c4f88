"""A bad params.yaml stops the real `dvc repro` within seconds, naming the key, and every previous output stays."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import command_env, placeholder_repo, run_cmd

DVC = [sys.executable, "-m", "dvc"]

BAD = {  # an edit of params.yaml, and what the error must say (key, value, what is allowed)
    "quantile_text": (lambda p: p["filter"].update(quantile="abc"),
                      "filter.quantile must be a number in [0, 1], 'auto' or null, got 'abc'"),
    "k_text": (lambda p: p["score"].update(k="five"),
               "score.k: Input should be a valid integer, unable to parse string as an integer, got 'five'"),
    "typo_key": (lambda p: p["score"].update(alpah=p["score"].pop("alpha")), "score.alpah: unknown key; did you mean score.alpha?"),
    "out_of_range": (lambda p: p["train"].update(lora_dropout=1.5), "train.lora_dropout must be in [0, 1), got 1.5"),
}


def _digests(work: Path) -> dict[str, str]:
    """Every file the pipeline reads or wrote (all but the params, the code and DVC's own), by content hash."""
    skip = {"params.yaml", "dvc.yaml", "dvc.lock"}
    return {str(p.relative_to(work)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(work.rglob("*"))
            if p.is_file() and p.relative_to(work).parts[0] not in {".dvc", "src", "stages"} and p.name not in skip}


@pytest.fixture(scope="module")
def checked_repo(tmp_path_factory) -> Path:
    """Placeholder outputs of every stage, committed, with a real check-params run in dvc.lock."""
    work = placeholder_repo(tmp_path_factory.mktemp("params-check"))
    run_cmd([*DVC, "repro", "--force", "check-params"], work)  # its real marker replaces the placeholder
    run_cmd([*DVC, "commit", "--force"], work)
    assert "up to date" in run_cmd([*DVC, "status"], work)
    return work


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_value_stops_dvc_repro_in_seconds_and_keeps_every_output(checked_repo: Path, case: str) -> None:
    work, params_file = checked_repo, checked_repo / "params.yaml"
    good = params_file.read_text(encoding="utf-8")
    before = _digests(work)
    edit, expected = BAD[case]
    params = yaml.safe_load(good)
    edit(params)
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    try:
        start = time.perf_counter()
        proc = subprocess.run([*DVC, "repro"], cwd=work, env=command_env(), capture_output=True, text=True)
        seconds = time.perf_counter() - start
    finally:
        params_file.write_text(good, encoding="utf-8")
    assert proc.returncode != 0
    assert expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Running stage 'prepare'" not in proc.stdout  # no other stage started
    assert seconds < 10, f"the check took {seconds:.1f} s"
    assert _digests(work) == before  # every previous output, the check's marker too, byte for byte


def test_a_valid_change_reruns_only_the_check_and_the_stages_that_use_the_key(checked_repo: Path) -> None:
    work, params_file = checked_repo, checked_repo / "params.yaml"
    good = params_file.read_text(encoding="utf-8")
    params = yaml.safe_load(good)
    params["openai"]["poll_s"] = 99  # a run setting: declared by no stage but the check
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    try:
        log = run_cmd([*DVC, "repro"], work)  # the placeholders would fail any other stage that ran
        assert "Running stage 'check-params'" in log and "Stage 'prepare' didn't change" in log
        params["filter"]["quantile"] = 0.3
        params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
        run_cmd([*DVC, "repro", "check-params"], work)
        status = run_cmd([*DVC, "status", "--json"], work, stdout_only=True)
        assert set(yaml.safe_load(status)) == {"filter"}  # the marker did not change: nothing else reruns
    finally:
        params_file.write_text(good, encoding="utf-8")
        run_cmd([*DVC, "repro", "check-params"], work)
