"""Each model's answers on the test set: its greedy answer and the reference's held-out loss, per row.

Model I/O only (the metrics are clearcurate.evaluation). Both engines run this one function: the
local engine on every test row at once, the Ray engine on blocks of rows (`RayEngine.map_blocks`).
A row's answers do not depend on the rows computed with it, beyond float rounding (its batch sets
its left padding).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from clearcurate.evaluation import heldout_nll
from clearcurate.llm.base import ChatLM
from clearcurate.records import Record

BASE = "base"  # the base model: every adapter switched off


def model_answers(lm: ChatLM, rows: Sequence[Record], models: Sequence[str], with_loss: bool) -> list[Record]:
    """Per row, `{model: {"text": greedy answer, "nll": the reference's NLL per token, or None}}`.

    `rows`: `prompt` (chat-rendered), `reference` (the response) and `max_new_tokens`; `models`: `base` or the
    names of adapters loaded with `load_adapters`; `with_loss`: the model gives log-probabilities (local models).
    """
    prompts = [r["prompt"] for r in rows]
    out: list[Record] = [{} for _ in rows]
    for name in models:
        with _running(lm, name):
            texts = lm.greedy(prompts, [r["max_new_tokens"] for r in rows], desc=f"eval {name}")
            losses = lm.continuation_logprobs(prompts, [r["reference"] for r in rows], desc=f"loss {name}") if with_loss else None
        for answers, text, nll in zip(out, texts, heldout_nll(losses) if losses else [None] * len(rows)):
            answers[name] = {"text": text, "nll": nll}
    return out


@contextmanager
def _running(lm: ChatLM, name: str) -> Iterator[None]:
    """The enclosed calls on model `name`: the base model, or a loaded adapter."""
    if name == BASE:
        with lm.base_model():
            yield
    else:
        lm.use_adapter(name)
        yield
