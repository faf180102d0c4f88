"""Edit a library function and check `dvc status` marks exactly the stages that run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import placeholder_repo
from import_graph import ROOT, closure


def _dvc(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def committed_repo(tmp_path_factory) -> Path:
    return placeholder_repo(tmp_path_factory.mktemp("deps-repo"))


def _changed_stages(work: Path) -> set[str]:
    status = json.loads(_dvc("status", "--json", cwd=work) or "{}")
    changed = set()
    for key, entries in status.items():
        stage = key.split(":")[-1]
        if any(isinstance(e, dict) and "changed deps" in e for e in entries):
            changed.add(stage)
    return changed


@pytest.mark.parametrize("module, must_include", [("src/clearcurate/data/reports.py", {"report"}),
                                                  ("src/clearcurate/core/confidence.py", {"evaluate", "score"})])
def test_editing_a_module_marks_exactly_its_importers(committed_repo: Path, module: str, must_include: set[str]) -> None:
    work = committed_repo
    assert _changed_stages(work) == set(), "a freshly committed pipeline has nothing to rerun"
    path = work / module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + "\n\ndef _edited() -> None:  # a change DVC must notice\n    pass\n", encoding="utf-8")
        stages = yaml.safe_load((work / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
        importers = {name for name, st in stages.items()
                     if module in {str(p) for p in closure(ROOT / st["cmd"].split()[1])}}
        assert must_include <= importers
        assert _changed_stages(work) == importers
    finally:
        path.write_text(original, encoding="utf-8")
