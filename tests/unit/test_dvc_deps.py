"""dvc.yaml's code deps must equal what each stage runs, or `dvc repro` can leave stale outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from import_graph import ROOT, closure

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def script_of(stage: dict) -> Path:
    match = re.search(r"python (stages/\w+\.py)", stage["cmd"])
    assert match, f"cmd does not run a stages/ script: {stage['cmd']}"
    return Path(match.group(1))


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_are_exactly_the_modules_the_stage_imports(name: str) -> None:
    stage = STAGES[name]
    script = script_of(stage)
    declared = {str(d).split()[0] for d in stage["deps"]}
    assert str(script) in declared, f"{name}: its own script {script} is not a dep"
    code = {d for d in declared if d.startswith("src/")}
    runs = {str(p) for p in closure(ROOT / script)}
    assert code == runs, (
        f"dvc.yaml stage {name}: missing deps {sorted(runs - code)}; deps it does not run {sorted(code - runs)}.\n"
        f"The code deps should be:\n" + "\n".join(f"      - {p}" for p in sorted(runs))
    )


def test_closure_follows_function_level_and_package_imports(tmp_path: Path) -> None:
    script = tmp_path / "stage.py"
    script.write_text("def main():\n    from clearcurate.llm import factory\n", encoding="utf-8")
    found = {str(p) for p in closure(script)}
    # the package inits, the module, and what it imports in turn
    assert {"src/clearcurate/__init__.py", "src/clearcurate/llm/__init__.py", "src/clearcurate/llm/factory.py",
            "src/clearcurate/llm/hf.py", "src/clearcurate/config/__init__.py"} <= found
    assert "src/clearcurate/scoring/__init__.py" not in found  # not imported by the factory


def test_every_path_in_a_stage_script_comes_from_its_cmd() -> None:
    """Paths live in dvc.yaml only: no stage script names a pipeline folder itself."""
    pipeline_dirs = ("data/", "models/", "metrics/", "reports/", "plots/")
    for script in sorted((ROOT / "stages").glob("*.py")):
        literals = re.findall(r"[\"']([^\"'\n]+)[\"']", script.read_text(encoding="utf-8"))
        assert not [s for s in literals if s.startswith(pipeline_dirs)], f"{script.name} hard-codes a pipeline path"
