"""A code fingerprint moves with every file a script runs, and with no other."""

from __future__ import annotations

from pathlib import Path

from clearcurate.provenance import closure, code_fingerprint


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    src, bench = tmp_path / "src", tmp_path / "bench"
    (src / "clearcurate" / "core").mkdir(parents=True)
    bench.mkdir()
    (src / "clearcurate" / "__init__.py").write_text("")
    (src / "clearcurate" / "core" / "__init__.py").write_text("")
    (src / "clearcurate" / "core" / "maths.py").write_text("X = 1\n")
    (src / "clearcurate" / "unused.py").write_text("Y = 2\n")
    (bench / "specs.py").write_text("def f():\n    from clearcurate.core import maths\n")
    (bench / "harness.py").write_text("import json\nimport specs\n")
    (bench / "report.py").write_text("import harness\n")
    return src, bench


def test_closure_follows_siblings_and_function_level_imports(tmp_path: Path) -> None:
    src, bench = _tree(tmp_path)
    found = {str(p.relative_to(tmp_path)) for p in closure(bench / "harness.py", src, [bench])}
    assert found == {"bench/specs.py", "src/clearcurate/__init__.py", "src/clearcurate/core/__init__.py",
                     "src/clearcurate/core/maths.py"}


def test_fingerprint_moves_with_the_code_it_runs_only(tmp_path: Path) -> None:
    src, bench = _tree(tmp_path)
    first, files = code_fingerprint([bench / "harness.py"], [bench], src)
    assert set(files) == {"bench/harness.py", "bench/specs.py", "clearcurate/__init__.py", "clearcurate/core/__init__.py",
                          "clearcurate/core/maths.py"}
    (src / "clearcurate" / "unused.py").write_text("Y = 3\n")
    (bench / "report.py").write_text("import harness\nZ = 1\n")
    assert code_fingerprint([bench / "harness.py"], [bench], src)[0] == first  # neither file runs in a cell
    (src / "clearcurate" / "core" / "maths.py").write_text("X = 2\n")
    changed, changed_files = code_fingerprint([bench / "harness.py"], [bench], src)
    assert changed != first and {k for k in files if files[k] != changed_files[k]} == {"clearcurate/core/maths.py"}
