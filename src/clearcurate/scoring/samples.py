"""Sampled answers and the given response's likelihood, per row, through the scoring cache.

Every row's samples are seeded by `score.seed` and its own prompt, so they do not depend on which rows
are computed together: chunks, resumed runs and engines agree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from clearcurate.cache import ScoreCache, digest
from clearcurate.config import ScoreConfig
from clearcurate.core import confidence as cf
from clearcurate.core import presets, prompts
from clearcurate.core.budget import token_budgets
from clearcurate.core.records import Record
from clearcurate.llm.base import ChatLM, Sampled
from clearcurate.scoring.store import cached_rows, code_version


@contextmanager
def quiet(lm: ChatLM) -> Iterator[None]:
    """The model's own per-call progress bars off (the caller shows one per row)."""
    show = lm.show_progress
    lm.show_progress = False
    try:
        yield
    finally:
        lm.show_progress = show


def chunking(lm: ChatLM) -> tuple[int, bool]:
    """Chunk size and whether to show our per-row bar (the model's own per-call bars are then off)."""
    return lm.batch_size * 2, lm.show_progress


def sample_budgets(response_tokens: Sequence[int], cfg: ScoreConfig) -> list[int]:
    """Tokens each row's samples may have: enough to be compared with its response (clearcurate.core.budget)."""
    return token_budgets(response_tokens, cfg.max_new_tokens, cfg.max_new_tokens_cap)


def sample_cache_keys(
    scope: str, cfg: ScoreConfig, with_likelihood: bool, gen_prompts: Sequence[str], rows: Sequence[Record], budgets: Sequence[int]
) -> list[str]:
    """Cache keys of sampled answers: the sampling model, the scoring code, every sampling setting, the prompt and the response."""
    # "alone": crossfit raw results also hold log p(response) without the prompt (relevance).
    settings = [(cfg.k, cfg.temperature, b, cfg.seed, with_likelihood, "alone" if with_likelihood else "") for b in budgets]
    version = code_version()
    return [digest(scope, version, st, gp, r["response"]) for st, gp, r in zip(settings, gen_prompts, rows)]


def sample_records(
    lm: ChatLM, gen_prompts: Sequence[str], responses: Sequence[str], budgets: Sequence[int], cfg: ScoreConfig, with_likelihood: bool
) -> list[Record]:
    """The k sampled answers (and their log-probabilities, and that of the given response) of these rows, uncached.

    Every row's samples are seeded by `cfg.seed` and its own prompt (clearcurate.llm.hf), so they do not
    depend on which rows are computed together: chunks, resumed runs and engines agree. With k = 0 (no
    weighted component needs samples: `sampled_config`) only the given response is scored, one forward pass.
    """
    if cfg.k == 0:
        given = lm.continuation_logprobs(list(gen_prompts), list(responses)) if with_likelihood else [(None, None)] * len(responses)
        sampled = [Sampled([], lp) for lp, _ in given]
    else:
        sampled = lm.sample(
            list(gen_prompts),
            n=cfg.k,
            temperature=cfg.temperature,
            max_new_tokens=list(budgets),
            seed=cfg.seed,
            given=list(responses) if with_likelihood else None,
        )
    # Without the prompt: how much the prompt explains the response (relevance, as in IFD/PMI).
    no_prompt = [lm.chat("")] * len(responses)
    alone = lm.continuation_logprobs(no_prompt, list(responses)) if with_likelihood else [(None, None)] * len(responses)
    return [
        {
            "texts": [g.text for g in s.generations],
            "sample_logprobs": [round(g.logprob, 4) if math.isfinite(g.logprob) else None for g in s.generations],
            # tokens each log-probability covers: the text, plus the end of turn when it stopped by itself
            "sample_tokens": [g.n_tokens + (g.n_tokens < b) for g in s.generations],
            "response_logprob": s.given_logprob,
            **({"response_logprob_alone": lp, "response_tokens": n} if lp is not None else {}),
        }
        for b, s, (lp, n) in zip(budgets, sampled, alone)
    ]


def _sample_order(gen_prompts: Sequence[str], budgets: Sequence[int]) -> list[int]:
    """Largest budgets, then longest prompts first, so each chunk batches similar lengths, as one big call would."""
    return sorted(range(len(gen_prompts)), key=lambda i: (-budgets[i], -len(gen_prompts[i])))


def sample_raw(
    lm: ChatLM,
    rows: Sequence[Record],
    gen_prompts: Sequence[str],
    cfg: ScoreConfig,
    budgets: Sequence[int],
    with_likelihood: bool,
    keys: Sequence[str],
    cache: ScoreCache,
    desc: str,
) -> list[Record]:
    """`sample_records` of every row, through the cache (`keys`: `sample_cache_keys`)."""
    order = _sample_order(gen_prompts, budgets)
    chunk, show = chunking(lm)

    def compute(idx: list[int]) -> list[Record]:
        real = [order[i] for i in idx]
        with quiet(lm):
            return sample_records(lm, [gen_prompts[i] for i in real], [rows[i]["response"] for i in real],
                                  [budgets[i] for i in real], cfg, with_likelihood)

    ordered = cached_rows([keys[i] for i in order], "samples", cache, compute, chunk, desc, show)
    out: list[Record] = [{} for _ in rows]
    for pos, i in enumerate(order):
        out[i] = ordered[pos]
    return out


def fewshot_examples(rows: Sequence[Record], n: int, seed: int) -> list[list[tuple[str, str]]]:
    """For each row, n other rows of the same dataset as worked examples (never the row itself).

    Rows are put in a pseudo-random order fixed by a hash of (seed, id), and each row takes the n
    rows after it (cyclically). Adding rows changes the examples of at most n rows per added row,
    so cached scores of the others stay valid.
    """
    order = sorted(range(len(rows)), key=lambda i: hashlib.sha256(f"{seed}:{rows[i]['id']}".encode()).hexdigest())
    position = {i: p for p, i in enumerate(order)}
    picks = min(n, len(rows) - 1)
    out = []
    for i in range(len(rows)):
        shots = [order[(position[i] + j) % len(order)] for j in range(1, picks + 1)]
        out.append([(rows[j]["prompt"], rows[j]["response"]) for j in shots])
    return out


def paper_prompts(lm: ChatLM, rows: Sequence[Record], cfg: ScoreConfig) -> list[str]:
    """The paper recipe's generation prompts: chain of thought after `cfg.fewshot` worked examples from the data."""
    shots = fewshot_examples(rows, cfg.fewshot, cfg.seed)
    return [lm.chat(prompts.cot_prompt(r["prompt"], s)) for r, s in zip(rows, shots)]


def sampled_config(cfg: ScoreConfig) -> ScoreConfig:
    """`cfg` for the sampling work: k = 0 when no weighted component needs samples (the free_form preset
    weighs relevance and fluency only). The fold model then scores the given response alone, two forward
    passes a row instead of k sampled answers of up to `max_new_tokens_cap` tokens."""
    weights = presets.component_weights(cfg)
    return cfg if any(weights.get(c, 0) > 0 for c in cf.SAMPLED_COMPONENTS) else replace(cfg, k=0)
