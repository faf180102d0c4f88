"""Fixtures shared by tests/unit and tests/integration; plain helpers are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import build_pipeline_repo


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The `tiny` preset (random 2-layer model, real SmolLM2 tokenizer), converted once per session."""
    from clearcurate.llm.models import convert_to_safetensors

    return convert_to_safetensors("tiny", tmp_path_factory.mktemp("tiny-model"), seed=0)


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir):
    from clearcurate.llm.hf import LocalLM
    from clearcurate.llm.models import load

    model, tokenizer = load(tiny_model_dir)
    return LocalLM(model, tokenizer, batch_size=3, show_progress=False)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> Path:
    """One default-backend pipeline run per test session; modules that change it work on copies."""
    return build_pipeline_repo(tmp_path_factory.mktemp("pipeline-template") / "repo")
