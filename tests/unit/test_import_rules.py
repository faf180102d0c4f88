"""The layout's rules, kept by a test: stages branch on no engine or backend, one module builds engines,
pure modules import no model, and no two modules import each other (issue 28). Each rule is shown to fail
on a planted violation, so the test cannot pass by checking nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from import_graph import PURE_MODULES, ROOT, SRC, _module_file, cycles, engine_builders, pure_violations, stage_violations

STAGES = sorted((ROOT / "stages").glob("*.py"))


@pytest.mark.parametrize("script", STAGES, ids=lambda p: p.name)
def test_stages_ask_the_runtime_and_never_branch_on_the_engine_or_backend(script: Path) -> None:
    assert stage_violations(script) == []


def test_only_the_runtime_builds_an_engine() -> None:
    assert engine_builders([*SRC.rglob("*.py"), *STAGES]) == ["src/clearcurate/runtime/sessions.py"]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_no_model(module: str) -> None:
    assert pure_violations(_module_file(module)) == []


def test_no_module_imports_itself_through_others() -> None:
    assert cycles() == []


def test_each_rule_catches_a_planted_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = tmp_path / "stage.py"
    stage.write_text("from clearcurate.llm.hf import LocalLM\n\ndef main(p):\n    if p.engine == 'ray':\n"
                     "        from clearcurate.engines.ray import RayEngine\n        RayEngine('m', 'id', 8)\n", encoding="utf-8")
    problems = stage_violations(stage)
    assert any("imports clearcurate.llm.hf" in x for x in problems) and any("reads .engine" in x for x in problems)
    assert any("builds a RayEngine" in x for x in problems) and any("imports clearcurate.engines.ray" in x for x in problems)

    pure = ROOT / "src" / "clearcurate" / "core" / "budget.py"
    planted = tmp_path / "budget.py"
    planted.write_text(pure.read_text(encoding="utf-8") + "\n\ndef f():\n    import torch\n", encoding="utf-8")
    monkeypatch.setattr("import_graph.ROOT", tmp_path)
    assert pure_violations(planted) == ["budget.py imports torch"]

    package = tmp_path / "src" / "clearcurate"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "a.py").write_text("from clearcurate import b\n", encoding="utf-8")
    (package / "b.py").write_text("def f():\n    from clearcurate.a import x\n", encoding="utf-8")
    monkeypatch.setattr("import_graph.SRC", tmp_path / "src")
    assert cycles() == [["clearcurate/a.py", "clearcurate/b.py", "clearcurate/a.py"]]
