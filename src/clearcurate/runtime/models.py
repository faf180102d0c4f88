"""The model work of `prepare` and the training stages, whatever `model.backend` and `scorer` say: they
run on no engine, so this module imports none (editing an engine reruns no training stage)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from clearcurate.config import LoraTrainConfig, Params
from clearcurate.core.records import Record
from clearcurate.llm.factory import load_lm, prepare_base, prepare_scorer


def prepare(p: Params, base_out: Path, scorer_out: Path) -> tuple[Callable[[str, str], int], int]:
    """`prepare`'s model work: the model being trained made available in `base_out` (and the scorer in
    `scorer_out`); returns how to count a row's tokens as the model sees it, and its context length."""
    counted = prepare_base(p, base_out)
    prepare_scorer(p, scorer_out)
    return counted


def fine_tune(p: Params, base: str | Path, rows: Sequence[Record], cfg: LoraTrainConfig, out: Path, name: str) -> None:
    """A training stage's model work: LoRA on the local model, a fine-tuning job on an API server."""
    load_lm(p, base).fine_tune(rows, cfg, out, name)
