"""One way to get the stage's model, whatever the backend (`model.backend`, `scorer.backend` in params.yaml).

The only place that branches on the backend: stages get a `ChatLM` and never ask which one. The
model that scores (`scorer`) is the model being trained unless params name another one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from clearcurate.config import Params
from clearcurate.core.records import atomic_dir, show_progress, write_json
from clearcurate.llm import models
from clearcurate.llm.base import ChatLM
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.openai_api import BudgetExceeded, OpenAIChatLM, read_model_ref, write_model_ref

NO_LIMIT = 10**9  # count every token of a row, however long


def prepare_base(p: Params, out_dir: Path) -> tuple[Callable[[str, str], int], int]:
    """Make the base model available in `out_dir` (converted weights, or the API model's id) and
    return how to count a row's tokens as the model will see it, with the model's context length."""
    if p.model.backend == "openai":  # the model lives on the server: record which one
        write_model_ref(out_dir, p.openai.model, base_url=p.openai.base_url)

        def estimate(prompt: str, response: str) -> int:  # no tokenizer here: about 4 characters a token
            return (len(prompt) + len(response)) // 4 + 1

        return estimate, p.openai.context_tokens
    models.convert_to_safetensors(p.model.name, out_dir, seed=p.model.seed)
    from transformers import AutoConfig, AutoTokenizer

    from clearcurate.llm.lora import encode_example

    tokenizer = AutoTokenizer.from_pretrained(out_dir)

    def count(prompt: str, response: str) -> int:  # as the model will see the pair, chat template included
        return len(encode_example(tokenizer, prompt, response, NO_LIMIT)["input_ids"])

    return count, int(AutoConfig.from_pretrained(out_dir).max_position_embeddings)


SAME_AS_BASE = "same_as_base.json"  # in the scorer's folder when the scorer is the model being trained


def prepare_scorer(p: Params, out_dir: Path) -> None:
    """Make the scoring model available in `out_dir`: a marker when it is the model being trained (so
    nothing is stored twice), the converted weights of another local model, or an endpoint model's id."""
    if not p.scorer.separate():
        with atomic_dir(out_dir) as tmp:
            write_json(tmp / SAME_AS_BASE, {"scorer": "the model being trained (models/base)"})
        return
    if p.scorer_backend() == "openai":
        write_model_ref(out_dir, p.scorer.name or p.openai.model, base_url=p.openai.base_url)
        return
    models.convert_to_safetensors(p.scorer.name or p.model.name, out_dir, seed=p.scorer.seed)


def scorer_dir(base_dir: str | Path, scorer: str | Path) -> Path:
    """The prepared folder of the model that scores: the base model's when the scorer is the model being trained."""
    return Path(base_dir) if (Path(scorer) / SAME_AS_BASE).exists() else Path(scorer)


def load_scorer(p: Params, base_dir: str | Path, scorer: str | Path, weights: bool = True) -> ChatLM:
    """The model that scores and judges (`scorer` in params.yaml), loaded once, as `load_lm` loads the base model."""
    where = scorer_dir(base_dir, scorer)
    if where == Path(base_dir):
        return load_lm(p, base_dir, weights=weights)
    show = show_progress()
    if p.scorer_backend() == "openai":
        return OpenAIChatLM(p.openai, base=read_model_ref(where), batch_size=p.model.batch_size, show_progress=show)
    if not weights:
        return LocalLM(None, models.load_tokenizer(where), batch_size=p.model.batch_size, show_progress=show)
    return LocalLM(*models.load(where), batch_size=p.model.batch_size, show_progress=show)


def load_lm(p: Params, model_dir: str | Path, adapter_dir: str | Path | None = None, weights: bool = True) -> ChatLM:
    """The stage's model, loaded once: the prepared base model, optionally with an adapter on top.

    With `model.backend: openai` the "model" is a client of the endpoint in `openai`, calling the
    model ids that `prepare` and `train` recorded in `model_dir` / `adapter_dir`. `weights=False`:
    the tokenizer only, for a driver whose model work runs on the Ray engine (it renders prompts
    and counts tokens; the weights of a large model would not even fit there).
    Progress bars are on unless CLEARCURATE_PROGRESS=0 (e.g. for log files).
    """
    show = show_progress()
    if p.model.backend == "openai":
        base = read_model_ref(model_dir)
        tuned = read_model_ref(adapter_dir) if adapter_dir is not None else None
        return OpenAIChatLM(p.openai, model=tuned, base=base, batch_size=p.model.batch_size, show_progress=show)
    if not weights:
        return LocalLM(None, models.load_tokenizer(model_dir), batch_size=p.model.batch_size, show_progress=show)
    model, tokenizer = models.load(model_dir, adapter_dir)
    return LocalLM(model, tokenizer, batch_size=p.model.batch_size, show_progress=show)


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
