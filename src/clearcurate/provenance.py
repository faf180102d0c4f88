"""Which code a result came from: the modules a script runs (the transitive closure of its imports) and a
fingerprint of their sources.

The closure is read from the source (found, not imported), so a process that only reports computes the
same closure as the one that ran the model. Function-level imports count (they run when the function
does), and so do the `__init__.py` of every package on the way; imports under `if TYPE_CHECKING:` do not
(they never run). dvc.yaml's deps are checked against it (tests/unit/test_dvc_deps.py), and the
benchmark stores a fingerprint of it with every result, so a result of other code is never taken for
one of today's.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Sequence
from pathlib import Path

PACKAGE = "clearcurate"
SRC = Path(__file__).resolve().parents[1]  # the folder that holds the package


def module_file(name: str, src: Path = SRC, local: Sequence[Path] = ()) -> Path | None:
    """The file of a `clearcurate...` module or package, or of a top-level module in one of the `local`
    folders (a script's siblings, imported by bare name), or None if the name is neither (e.g. a function)."""
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        base = src.joinpath(*name.split("."))
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None
    if "." not in name:
        return next((d / f"{name}.py" for d in local if (d / f"{name}.py").is_file()), None)
    return None


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of `tree` except those under `if TYPE_CHECKING:`, which never run (type hints only)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def imports(path: Path, src: Path = SRC, local: Sequence[Path] = ()) -> set[Path]:
    """The modules `path` imports directly (where the import runs), plus the packages they live in."""
    found: set[Path] = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]  # `from pkg import module`
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
                module = module_file(".".join(parts[:i]), src, local)
                if module is not None:
                    found.add(module)
    return found


def closure(script: Path, src: Path = SRC, local: Sequence[Path] = ()) -> set[Path]:
    """Every package module (and `local` sibling) that running `script` may execute, as absolute paths."""
    seen: set[Path] = set()
    todo = list(imports(script, src, local))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(imports(module, src, local) - seen)
    return seen


def code_fingerprint(scripts: Sequence[Path], local: Sequence[Path] = (), src: Path = SRC) -> tuple[str, dict[str, str]]:
    """A fingerprint of the code `scripts` run: the scripts and their closure, each file named relative to
    its root (`clearcurate/...` or the local folder's name) with the hash of its bytes. Returns the
    fingerprint and the per-file hashes it was made from, so a changed fingerprint can say which files moved."""
    files = {Path(s).resolve() for s in scripts}
    for script in scripts:
        files |= closure(Path(script), src, local)

    def name(path: Path) -> str:
        root = src if path.is_relative_to(src) else path.parent.parent
        return str(path.relative_to(root))

    hashes = {name(f): hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files}
    hashes = dict(sorted(hashes.items()))
    whole = hashlib.sha256("\n".join(f"{n} {h}" for n, h in hashes.items()).encode()).hexdigest()[:16]
    return whole, hashes
