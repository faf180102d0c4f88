"""Fixtures shared by tests/unit and tests/integration; plain helpers are in helpers.py.

`make test` runs the suite in two pytest-xdist workers (the CI machine's two cores). Most of its time is
single-threaded (Python imports, the tiny model, subprocesses), so each worker and what it starts use
one torch thread, and the expensive session fixtures are built once for both workers (`_shared`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from helpers import build_pipeline_repo, stopping_tiny_model

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the worker's subprocesses (dvc stages, servers) inherit it
    import torch

    torch.set_num_threads(1)


def _shared(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """`build(folder)` once per test session: under xdist the first worker builds it in the run's common
    temporary folder while holding a lock, and the others wait and reuse it."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent  # common to the workers of this run
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            built = build(folder)
            done.write_text(str(built), encoding="utf-8")
    return Path(done.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The `tiny` preset (random 2-layer model, real SmolLM2 tokenizer), converted once per session."""
    from clearcurate.llm.models import convert_to_safetensors

    return _shared(tmp_path_factory, "tiny-model", lambda folder: convert_to_safetensors("tiny", folder, seed=0))


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir):
    from clearcurate.llm.hf import LocalLM
    from clearcurate.llm.models import load

    model, tokenizer = load(tiny_model_dir)
    return LocalLM(model, tokenizer, batch_size=3, show_progress=False)


@pytest.fixture(scope="session")
def stopping_lm(tmp_path_factory):
    """A tiny model that ends its answers after a few tokens (helpers.stopping_tiny_model), where `tiny_lm` never does."""
    from clearcurate.llm.hf import LocalLM
    from clearcurate.llm.models import load

    model_dir = _shared(tmp_path_factory, "stopping-model", lambda folder: stopping_tiny_model(folder / "model"))
    return LocalLM(*load(model_dir), batch_size=3, show_progress=False)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> Path:
    """One default-backend pipeline run per test session; modules that change it work on copies."""
    return _shared(tmp_path_factory, "pipeline-template", lambda folder: build_pipeline_repo(folder / "repo"))
