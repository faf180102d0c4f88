"""One way to get the stage's model, whatever the backend (`model.backend` in params.yaml).

The only place that branches on the backend: stages get a `ChatLM` and never ask which one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from clearcurate.llm import models
from clearcurate.llm.base import ChatLM
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.openai_api import BudgetExceeded, OpenAIChatLM, read_model_ref, write_model_ref
from clearcurate.params import Params
from clearcurate.records import show_progress

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

    from clearcurate.training import encode_example

    tokenizer = AutoTokenizer.from_pretrained(out_dir)

    def count(prompt: str, response: str) -> int:  # as the model will see the pair, chat template included
        return len(encode_example(tokenizer, prompt, response, NO_LIMIT)["input_ids"])

    return count, int(AutoConfig.from_pretrained(out_dir).max_position_embeddings)


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
