"""Which of the package's modules a script runs: the transitive closure of its `clearcurate` imports.

Function-level imports count (they run when the function does), and so do the `__init__.py` of
every package on the way. Used by the test that keeps dvc.yaml's deps equal to what each stage runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "clearcurate"


def _module_file(name: str) -> Path | None:
    """The file of a `clearcurate...` module or package, or None if the name is not one (e.g. a function)."""
    base = SRC.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imports(path: Path) -> set[Path]:
    """The package modules `path` imports directly, plus the packages they live in."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]  # `from pkg import module`
        for name in names:
            if name != PACKAGE and not name.startswith(PACKAGE + "."):
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
                module = _module_file(".".join(parts[:i]))
                if module is not None:
                    found.add(module)
    return found


def closure(script: Path) -> set[Path]:
    """Every package module that running `script` may execute, as paths relative to the repository root."""
    seen: set[Path] = set()
    todo = list(_imports(script))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_imports(module) - seen)
    return {m.relative_to(ROOT) for m in seen}
