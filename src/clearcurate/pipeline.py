"""Shared plumbing for the DVC stage entry points in `stages/`: params, logging, model loading."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clearcurate.llm import models
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.openai_api import BudgetExceeded, OpenAIChatLM, OpenAIConfig, read_model_ref

BASE_MODEL_DIR = Path("models/base")
VALIDATION_DIR = Path("reports/validation")


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("CLEARCURATE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # transformers' own progress bars and notices would drown ours.
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def stage_params(stage: str) -> dict[str, Any]:
    """The params this stage declares in dvc.yaml, read through dvc.api.

    Reading through DVC (not the YAML file directly) means a stage only ever sees params it
    declares, so DVC's change detection and what the code uses cannot drift apart.
    """
    import dvc.api

    return dvc.api.params_show(stages=stage)


OPENAI_RUN_SETTINGS = (  # how a run talks to the server, not what it computes: not DVC params
    "api_key_env", "max_concurrency", "max_retries", "timeout_s", "backoff_s", "backoff_max_s",
    "max_requests", "max_tokens", "price_input_per_mtok", "price_output_per_mtok", "poll_s",
)


def openai_params(stage_view: dict[str, Any]) -> dict[str, Any]:
    """The `openai` block for a stage: its declared keys (DVC params: changing them reruns it), plus
    the run settings above, read from params.yaml directly, so raising a budget or the concurrency
    never invalidates results."""
    import dvc.api

    every = dvc.api.params_show().get("openai", {}) or {}
    return {**{k: v for k, v in every.items() if k in OPENAI_RUN_SETTINGS}, **(stage_view.get("openai") or {})}


def backend(model_params: dict[str, Any]) -> str:
    """`model.backend`: hf (a local transformers model) or openai (any OpenAI-compatible endpoint)."""
    name = str(model_params.get("backend", "hf"))
    if name not in ("hf", "openai"):
        raise ValueError(f"model.backend must be hf or openai, got {name!r}")
    return name


def load_lm(
    model_params: dict[str, Any],
    adapter_dir: str | Path | None = None,
    model_dir: str | Path = BASE_MODEL_DIR,
    openai_params: dict[str, Any] | None = None,
) -> LocalLM | OpenAIChatLM:
    """The stage's model, loaded once: the prepared base model, optionally with an adapter on top.

    With `model.backend: openai` the "model" is a client of the endpoint in `openai_params`,
    calling the model ids that `prepare` and `train` recorded in `model_dir` / `adapter_dir`.
    Progress bars are on unless CLEARCURATE_PROGRESS=0 (e.g. for log files).
    """
    show = os.environ.get("CLEARCURATE_PROGRESS", "1") != "0"
    batch_size = int(model_params.get("batch_size", 8))
    if backend(model_params) == "openai":
        base = read_model_ref(model_dir)
        tuned = read_model_ref(adapter_dir) if adapter_dir is not None else None
        return OpenAIChatLM(OpenAIConfig.from_params(openai_params), model=tuned, base=base, batch_size=batch_size, show_progress=show)
    model, tokenizer = models.load(model_dir, adapter_dir)
    return LocalLM(model, tokenizer, batch_size=batch_size, show_progress=show)


@contextmanager
def api_budget(stage: str) -> Iterator[None]:
    """Turn a spent API budget into a clean stage failure that says how to resume."""
    try:
        yield
    except BudgetExceeded as err:
        raise SystemExit(
            f"{stage}: {err}. Stopped cleanly; scoring results finished so far are cached (clearcurate.cache). "
            "Raise openai.max_requests / openai.max_tokens (0 = no limit) and rerun `dvc repro` to resume."
        ) from None


def gate(stage: str, name: str, frame, expectations: list, params: dict[str, Any]) -> None:
    """Run a Great Expectations suite on a stage's output before it is written (see clearcurate.expectations)."""
    from clearcurate.expectations import ValidateConfig, validate

    cfg = ValidateConfig.from_params(params.get("validate", {}))
    validate(name, frame, expectations, cfg, VALIDATION_DIR / stage)
