"""The layout's import graph for the tests: which package modules a script runs (the closure itself is
clearcurate.provenance's, which the benchmark also uses to fingerprint its code), and the rules the layout keeps.
Used by the test that keeps dvc.yaml's deps equal to what each stage runs, and by the layout's import rules.
"""

from __future__ import annotations

import ast
from pathlib import Path

from clearcurate.provenance import closure as package_closure
from clearcurate.provenance import imports, module_file
from clearcurate.provenance import runtime_nodes as _runtime_nodes

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _module_file(name: str) -> Path | None:
    """The file of a `clearcurate...` module or package, or None if the name is not one (e.g. a function)."""
    return module_file(name, SRC)


def _imports(path: Path) -> set[Path]:
    return imports(path, SRC)


def closure(script: Path) -> set[Path]:
    """Every package module that running `script` may execute, as paths relative to the repository root."""
    return {m.relative_to(ROOT) for m in package_closure(script, SRC)}


# ---- the rules the layout keeps (tests/unit/test_import_rules.py) ------------------------------------

# What only clearcurate.runtime may reach from a stage: the backends and the engines.
BACKEND_MODULES = ("clearcurate.llm.hf", "clearcurate.llm.openai_api", "clearcurate.llm.factory", "clearcurate.llm.models",
                   "clearcurate.llm.local_server", "clearcurate.engines.ray")
# Pure decision logic and maths: testable without a model, so they import none (module or function level).
PURE_MODULES = tuple(f"clearcurate.{package}.{m.stem}" for package in ("core", "config")
                     for m in sorted((SRC / "clearcurate" / package).glob("*.py")) if m.stem != "__init__")
MODEL_LIBRARIES = ("torch", "transformers", "peft", "ray", "sentence_transformers", "accelerate", "openai")
MODEL_MODULES = (*BACKEND_MODULES, "clearcurate.scoring", "clearcurate.llm.lora", "clearcurate.correction", "clearcurate.runtime",
                 "clearcurate.scoring.similarity", "clearcurate.answers")


def imported_names(path: Path) -> set[str]:
    """Every module name `path` imports, at module or function level (`from a import b`: a and a.b)."""
    names: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _reaches(names: set[str], targets: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == t or n.startswith(t + ".") for t in targets))


def stage_violations(script: Path) -> list[str]:
    """A stage that branches on the engine or the backend, or reaches a backend or engine module itself."""
    problems = [f"{script.name} imports {n} (ask clearcurate.runtime)" for n in _reaches(imported_names(script), BACKEND_MODULES)]
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"), str(script))):
        if isinstance(node, ast.Attribute) and node.attr in ("engine", "backend", "scorer_backend") and \
                not (isinstance(node.value, ast.Name) and node.value.id == "session"):
            problems.append(f"{script.name}:{node.lineno} reads .{node.attr} (the engine and backend are clearcurate.runtime's)")
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "RayEngine":
            problems.append(f"{script.name}:{node.lineno} builds a RayEngine (clearcurate.runtime builds engines)")
    return problems


def engine_builders(paths: list[Path]) -> list[str]:
    """The modules that construct a RayEngine (the rule: only clearcurate/runtime/sessions.py)."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "RayEngine":
                found.append(str(path.relative_to(ROOT)))
    return sorted(set(found))


def pure_violations(path: Path) -> list[str]:
    """What a pure module imports that runs or holds a model."""
    return [f"{path.relative_to(ROOT)} imports {n}" for n in _reaches(imported_names(path), (*MODEL_LIBRARIES, *MODEL_MODULES))]


def cycles() -> list[list[str]]:
    """Import circles among the package's modules (module or function level), each as the modules around it."""
    modules = sorted(SRC.rglob("*.py"))
    graph = {m: _imports(m) - {m} for m in modules}
    found, state = [], {}

    def visit(node: Path, stack: list[Path]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt.name == "__init__.py":
                continue  # a package's __init__ runs on any import from it: not a dependency between modules
            if state.get(nxt) == "open":
                found.append([str(p.relative_to(SRC)) for p in stack[stack.index(nxt):]] + [str(nxt.relative_to(SRC))])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for m in modules:
        if m not in state:
            visit(m, [m])
    return found
