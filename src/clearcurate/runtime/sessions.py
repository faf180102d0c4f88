"""Sessions: the model work of `score`, `correct` and `evaluate`, on the engine `engine` names and the
model `model.backend` and `scorer` name (through `clearcurate.llm.factory`). Stages open a session here
and never branch on either.

A session holds the driver's model (`lm`: a local model, an API client, or only the tokenizer when
the Ray engine's actors hold the weights), the engine (None: the work runs in this process; `engine:
ray`: a `RayEngine`, built here and nowhere else), the fingerprint that keys the model's cached
results, the pairwise judge when a scorer apart from the trained model judges, and what to report
of it in the stage's metrics. The API budget of the stage is enforced for the session's lifetime.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearcurate.cache import digest, model_fingerprint
from clearcurate.config import Params
from clearcurate.llm.base import ChatLM, Engine
from clearcurate.llm.factory import api_budget, load_lm, load_scorer, scorer_dir
from clearcurate.llm.openai_api import api_metrics


@dataclass
class Session:
    """The model work of one stage: its model, its engine and what produced the results."""

    lm: ChatLM
    engine: Engine | None  # None: this process
    placement: dict[str, Any]  # where the work runs, for the stage's metrics: `engine` and, on a cluster, its `workers`
    model_dir: Path  # the prepared model the work runs on
    model_id: str  # its weights' fingerprint: the key of its cached results
    judge: ChatLM | None = None  # correct's pairwise judge, when a scorer apart from the trained model judges

    def usage(self) -> dict[str, Any]:
        """A remote API's calls, tokens and cost in this session (the judge's apart), for the stage's metrics; {} for a local model."""
        judge = {f"judge_{k}": v for k, v in api_metrics(self.judge).items()} if self.judge is not None else {}
        return {**api_metrics(self.lm), **judge}


def _placement(p: Params, engine: Engine | None) -> dict[str, Any]:
    """Read while the engine is connected: a cluster's workers are asked of the cluster."""
    return {"engine": p.engine, **({"workers": engine.workers} if engine is not None else {})}


def _engine(p: Params, model_dir: Path, model_id: str) -> AbstractContextManager[Engine | None]:
    """The engine of `engine` in params.yaml: None for this process, or a Ray cluster holding `model_dir`."""
    if p.engine == "ray":
        from clearcurate.engines.ray import RayEngine

        return RayEngine(model_dir, model_id, p.model.batch_size)
    return nullcontext(None)


@contextmanager
def scoring(p: Params, base: str | Path, scorer: str | Path) -> Iterator[Session]:
    """`score`'s session: the scorer (the trained model unless params name another), on the engine."""
    model_dir = scorer_dir(base, scorer)
    model_id = model_fingerprint(model_dir)
    with ExitStack() as stack:
        engine = stack.enter_context(_engine(p, model_dir, model_id))
        lm = load_scorer(p, base, scorer, weights=engine is None)  # on Ray the actors hold the model; here prompts and tokens only
        stack.enter_context(api_budget("score"))
        yield Session(lm, engine, _placement(p, engine), model_dir, model_id)


@contextmanager
def trained_model(p: Params, stage: str, base: str | Path, adapter: str | Path | None = None,
                  judge_from: str | Path | None = None) -> Iterator[Session]:
    """The model being trained (`adapter` on the base model, when given) for `correct` and `evaluate`,
    on the engine; with `judge_from` (the scorer's folder), the pairwise judge when the scorer is another model."""
    model_id = model_fingerprint(base)
    with ExitStack() as stack:
        engine = stack.enter_context(_engine(p, Path(base), model_id))
        lm = load_lm(p, base, adapter_dir=adapter if engine is None else None, weights=engine is None)
        judge = load_scorer(p, base, judge_from) if judge_from is not None and separate_judge(base, judge_from) else None
        stack.enter_context(api_budget(stage))
        yield Session(lm, engine, _placement(p, engine), Path(base), model_id, judge)


def tokenizer_only(p: Params, base: str | Path) -> ChatLM:
    """The base model without its weights: it counts tokens (for a budget decided before any model work)."""
    return load_lm(p, base, weights=False)


def separate_judge(base: str | Path, scorer: str | Path) -> bool:
    """Whether the scorer, when it judges, is another model than the base model."""
    return scorer_dir(base, scorer) != Path(base)


def correction_models_id(base: str | Path, adapter: str | Path, judge_from: str | Path | None) -> str:
    """What Auto-Correct's cached evidence depends on: the base model, the filtered adapter, and the
    pairwise judge when the scorer is another model (the same key as before the scorer existed otherwise)."""
    parts = [model_fingerprint(base), model_fingerprint(adapter)]
    if judge_from is not None and separate_judge(base, judge_from):
        parts.append(model_fingerprint(scorer_dir(base, judge_from)))
    return digest(*parts)
