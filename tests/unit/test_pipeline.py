"""The stage plumbing: paths come from the command line, params are validated before anything runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from clearcurate.pipeline import stage_args, stage_params


def test_stage_args_are_required_paths_and_named_options(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--data", "d.jsonl", "--out", "models/x", "--stage", "train"])
    args = stage_args("doc", "data", "out", optional=("reuse",), stage="the stage")
    assert args.data == Path("d.jsonl") and args.out == Path("models/x") and args.reuse is None and args.stage == "train"
    monkeypatch.setattr(sys, "argv", ["train.py", "--data", "d.jsonl", "--stage", "train"])
    with pytest.raises(SystemExit) as err:  # argparse: a missing path is a usage error, not a default
        stage_args("doc", "data", "out", stage="the stage")
    assert err.value.code == 2


def _repo(tmp_path: Path, params: dict, declared: list[str]) -> Path:
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"filter": {"cmd": "true", "params": declared}}}), encoding="utf-8")
    return tmp_path


def test_a_stage_sees_its_declared_params_typed_and_the_run_settings(tmp_path, monkeypatch) -> None:
    repo = _repo(tmp_path, {"engine": "ray", "filter": {"quantile": 0.3}, "score": {"k": 7}, "openai": {"max_concurrency": 3}},
                 ["engine", "filter"])
    monkeypatch.chdir(repo)
    p = stage_params("filter")
    assert p.filter.quantile == 0.3 and p.engine == "ray"  # a top-level key, declared by its name
    assert p.score.k == 5  # not declared by this stage: the code default, so DVC tracks everything it uses
    assert p.openai.max_concurrency == 3  # a run setting: read from the file, declared by no stage


def test_a_typo_anywhere_stops_the_stage_before_it_loads_anything(tmp_path, monkeypatch) -> None:
    repo = _repo(tmp_path, {"filter": {"quantile": 0.3}, "score": {"alpah": 0.5}}, ["filter"])
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit) as err:
        stage_params("filter")
    assert "filter: params.yaml: invalid params" in str(err.value)
    assert "score.alpah: unknown key; did you mean score.alpha?" in str(err.value)


def test_ctrl_c_in_a_stage_ends_with_one_line_and_sigint_status(tmp_path):
    """A user who presses Ctrl-C in `score` sees what is kept and how to resume, not a traceback (issue 31)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "stage.py"
    script.write_text("from clearcurate.pipeline import setup_logging\nsetup_logging()\nraise KeyboardInterrupt\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode in (-signal.SIGINT, 128 + signal.SIGINT)  # what DVC and shells know as an interrupt
    assert "Traceback" not in done.stderr
    assert "interrupted (Ctrl-C)" in done.stderr and "run `dvc repro` again to resume" in done.stderr
    failing = tmp_path / "fails.py"
    failing.write_text("from clearcurate.pipeline import setup_logging\nsetup_logging()\nraise ValueError('real bug')\n")
    done = subprocess.run([sys.executable, str(failing)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" in done.stderr and "ValueError: real bug" in done.stderr
