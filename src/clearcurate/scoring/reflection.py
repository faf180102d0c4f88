"""The base model's work on each row: self-reflection (two A/B/C questions) and fluency (one forward pass),
asked only when the weights give them a share (`base_parts`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clearcurate.cache import ScoreCache, digest
from clearcurate.core import prompts
from clearcurate.core.records import Record
from clearcurate.llm.base import ChatLM
from clearcurate.scoring.samples import chunking, quiet
from clearcurate.scoring.store import cached_rows, code_version


def reflect(lm: ChatLM, rows: Sequence[Record], responses: Sequence[str] | None = None) -> list[list[list[float]]]:
    """A/B/C probabilities for the two self-reflection questions, per row.

    The second question follows the first in one conversation, with the model's own most
    likely first answer in the history, as the paper asks it; it reuses the first one's KV cache.
    """
    responses = responses if responses is not None else [r["response"] for r in rows]
    firsts = [prompts.reflection_question(0, r["prompt"], resp) for r, resp in zip(rows, responses)]
    rendered = [lm.chat(q, prompts.CHOICE_PREFIX) for q in firsts]
    second_q = prompts.reflection_question(1, "", "")

    def followup(i: int, letter: str) -> str:
        full = lm.chat(second_q, prompts.CHOICE_PREFIX, history=[(firsts[i], f"{prompts.CHOICE_PREFIX}{letter})")])
        if not full.startswith(rendered[i]):
            raise ValueError("the chat template does not extend a conversation by appending to it")
        return full[len(rendered[i]) :]

    p1, p2 = lm.choice_probs(rendered, prompts.REFLECTION_CHOICES, "reflect", followup=followup)
    # An API model's answer with no readable letter is None (unparsed), never a made-up 0.5.
    return [[list(map(float, p)) if np.all(np.isfinite(p)) else None for p in (a, b)] for a, b in zip(p1, p2)]


def base_parts(weights: Mapping[str, float]) -> tuple[str, ...]:
    """The base model's work these weights need: `reflection` (two questions per row) and `fluency`
    (one forward pass). A part without weight is not computed: in the `short` preset neither is, which
    saves a third of the demo's scoring time."""
    return tuple(part for part in ("reflection", "fluency") if weights.get(part, 0) > 0)


def reflection_records(lm: ChatLM, rows: Sequence[Record], parts: Sequence[str]) -> list[Record]:
    """The base model's work on these rows, uncached, as the cache stores it: for `reflection`,
    `reflect`'s A/B/C probabilities; for `fluency`, where the model gives log-probabilities,
    log p(response | prompt) and its token count (the fluency component's input)."""
    records: list[Record] = [{} for _ in rows]
    if "reflection" in parts:
        for record, probs in zip(records, reflect(lm, rows)):
            record["reflection_probs"] = probs
    if "fluency" in parts and lm.supports_logprobs:
        pairs = lm.continuation_logprobs([lm.chat(r["prompt"]) for r in rows], [r["response"] for r in rows], desc="fluency")
        for record, (logprob, tokens) in zip(records, pairs):
            record.update(response_logprob_base=logprob, response_tokens_base=tokens)
    return records


def reflection_keys(rows: Sequence[Record], model_id: str, parts: Sequence[str]) -> list[str]:
    """Cache keys of the base model's work: the base model, the scoring code, the parts and the row's first question."""
    template = (prompts.reflection_question(1, "", ""), prompts.CHOICE_PREFIX, prompts.REFLECTION_CHOICES)
    version = code_version()
    return [digest(model_id, version, "reflect", tuple(parts), template, prompts.reflection_question(0, r["prompt"], r["response"]))
            for r in rows]


def reflect_cached(lm: ChatLM, rows: Sequence[Record], model_id: str, cache: ScoreCache, parts: Sequence[str]) -> list[Record]:
    """`reflection_records` per row, through the cache (nothing to compute when no part is weighted)."""
    if not parts:
        return [{} for _ in rows]
    chunk, show = chunking(lm)

    def compute(idx: list[int]) -> list[Record]:
        with quiet(lm):
            return reflection_records(lm, [rows[i] for i in idx], parts)

    return cached_rows(reflection_keys(rows, model_id, parts), "reflection", cache, compute, chunk, "base model", show)
