"""BSDetector confidence for (prompt, response) rows, with a local model.

Two recipes share the same components and math (`confidence`), differing in which model
produces the samples:
- `paper`: the base model samples k chain-of-thought answers from a few-shot prompt; this is
  the published recipe, kept for fidelity and for strong models.
- `crossfit`: the rows are split into K folds; a LoRA adapter trained on the other folds samples
  answers for each held-out fold (as in confident learning, no row is scored by a model that saw
  it). The samples then follow the dataset's own answer format, which a 135M base model does not
  pick up from a few examples. It also adds a likelihood component (how much less likely the
  given response is than the adapted model's best own answer) and a relevance component (how
  much the prompt raises the response's likelihood: a response written for another prompt
  gains nothing).
Self-reflection is always asked of the base model, the same judge for every row.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, replace

import numpy as np
from tqdm.auto import tqdm

from clearcurate import confidence as cf
from clearcurate import prompts, verify
from clearcurate.budget import token_budgets
from clearcurate.cache import ScoreCache, digest, source_fingerprint
from clearcurate.llm.base import ChatLM
from clearcurate.llm.hf import LocalLM
from clearcurate.params import LoraTrainConfig, ScoreConfig
from clearcurate.presets import ARITHMETIC_PENALTY
from clearcurate.records import Record
from clearcurate.similarity import Similarity

log = logging.getLogger(__name__)
# A cached fold adapter keeps scoring new rows while its training rows and the current other-fold
# rows differ by at most this share; beyond it the fold model is retrained (and its rows rescored).
FOLD_REUSE_TOLERANCE = 0.1
# Part of every scoring-cache key (samples, reflections, fold adapter slots), with a hash of the
# source of the modules that compute what is cached: a cache written by other scoring code (an
# older or newer commit) is never reused. Bump it by hand when a change outside these modules
# (a library upgrade, say) changes cached results.
SCORING_VERSION = 1
# What produces the cached samples, reflection probabilities and fold adapters. confidence.py and
# similarity.py are not here: they only combine cached values into components (after the cache),
# so changing them re-runs from the cache instead of sampling every row again.
SCORING_MODULES = (
    "clearcurate.scoring",
    "clearcurate.prompts",
    "clearcurate.budget",
    "clearcurate.training",
    "clearcurate.llm.base",
    "clearcurate.llm.hf",
    "clearcurate.llm.models",
    "clearcurate.llm.openai_api",
)


@functools.cache
def _scoring_source() -> str:
    return source_fingerprint(SCORING_MODULES)


def code_version() -> str:
    """The scoring code's version in cache keys: SCORING_VERSION and the source hash of SCORING_MODULES."""
    return f"{SCORING_VERSION}-{_scoring_source()[:16]}"


def fold_of(row_id: str, folds: int) -> int:
    """Stable fold assignment from the id, so adding rows never reshuffles existing ones."""
    return int(hashlib.sha256(row_id.encode("utf-8")).hexdigest(), 16) % folds


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


def _cached(
    keys: Sequence[str],
    kind: str,
    cache: ScoreCache | None,
    compute: Callable[[list[int]], list[Record]],
    chunk: int,
    desc: str,
    show_progress: bool,
) -> list[Record]:
    """Per-row results: cached ones are read, the rest computed a chunk at a time and stored as each finishes.

    Storing per chunk is what makes a killed run resumable: at most one chunk of work is lost.
    """
    out: list[Record | None] = [cache.get(kind, k) if cache is not None else None for k in keys]
    todo = [i for i, v in enumerate(out) if v is None]
    if cache is not None and len(todo) < len(keys):
        log.info("%s: %d of %d rows from the cache, %d to compute", desc, len(keys) - len(todo), len(keys), len(todo))
    with tqdm(total=len(todo), desc=desc, unit="row", disable=not show_progress or not todo, leave=False) as bar:
        for start in range(0, len(todo), chunk):
            idx = todo[start : start + chunk]
            for i, value in zip(idx, compute(idx), strict=True):
                out[i] = value
                if cache is not None and None not in value.get("reflection_probs", ()):
                    cache.put(kind, keys[i], value)  # an unparsed API answer is asked again next run
            bar.update(len(idx))
    return out  # type: ignore[return-value]


def _chunked(lm: ChatLM) -> tuple[int, bool]:
    """Chunk size and whether to show our per-row bar (the model's own per-call bars are then off)."""
    return lm.batch_size * 2, lm.show_progress


def sample_budgets(response_tokens: Sequence[int], cfg: ScoreConfig) -> list[int]:
    """Tokens each row's samples may have: enough to be compared with its response (clearcurate.budget)."""
    return token_budgets(response_tokens, cfg.max_new_tokens, cfg.max_new_tokens_cap)


def _sample_keys(
    scope: str, cfg: ScoreConfig, with_likelihood: bool, gen_prompts: Sequence[str], rows: Sequence[Record], budgets: Sequence[int]
) -> list[str]:
    """Cache keys of sampled answers: the sampling model, the scoring code, every sampling setting, the prompt and the response."""
    # "alone": crossfit raw results also hold log p(response) without the prompt (relevance).
    settings = [(cfg.k, cfg.temperature, b, cfg.seed, with_likelihood, "alone" if with_likelihood else "") for b in budgets]
    version = code_version()
    return [digest(scope, version, st, gp, r["response"]) for st, gp, r in zip(settings, gen_prompts, rows)]


def _sample_raw(
    lm: ChatLM,
    rows: Sequence[Record],
    gen_prompts: Sequence[str],
    cfg: ScoreConfig,
    budgets: Sequence[int],
    with_likelihood: bool,
    scope: str,
    cache: ScoreCache | None,
    desc: str,
) -> list[Record]:
    """The k sampled answers (and their log-probabilities, and that of the given response) per row.

    `budgets`: each row's token budget (`sample_budgets`). `scope` names the model that samples
    (base weights, or a fold adapter) and enters every key.
    """
    keys = _sample_keys(scope, cfg, with_likelihood, gen_prompts, rows, budgets)
    # Largest budgets, then longest prompts first, so each chunk batches similar lengths, as one big call would.
    order = sorted(range(len(rows)), key=lambda i: (-budgets[i], -len(gen_prompts[i])))
    chunk, show = _chunked(lm)

    def compute(idx: list[int]) -> list[Record]:
        real = [order[i] for i in idx]
        lm.show_progress = False
        try:
            sampled = lm.sample(
                [gen_prompts[i] for i in real],
                n=cfg.k,
                temperature=cfg.temperature,
                max_new_tokens=[budgets[i] for i in real],
                seed=int(keys[real[0]][:8], 16),  # fixed by the chunk's first row, not by what was cached
                given=[rows[i]["response"] for i in real] if with_likelihood else None,
            )
            # Without the prompt: how much the prompt explains the response (relevance, as in IFD/PMI).
            alone = (lm.continuation_logprobs([lm.chat("")] * len(real), [rows[i]["response"] for i in real])
                     if with_likelihood else [(None, None)] * len(real))
        finally:
            lm.show_progress = show
        return [
            {
                "texts": [g.text for g in s.generations],
                "sample_logprobs": [round(g.logprob, 4) if math.isfinite(g.logprob) else None for g in s.generations],
                # tokens each log-probability covers: the text, plus the end of turn when it stopped by itself
                "sample_tokens": [g.n_tokens + (g.n_tokens < budgets[i]) for g in s.generations],
                "response_logprob": s.given_logprob,
                **({"response_logprob_alone": lp, "response_tokens": n} if lp is not None else {}),
            }
            for i, s, (lp, n) in zip(real, sampled, alone)
        ]

    ordered = _cached([keys[i] for i in order], "samples", cache, compute, chunk, desc, show)
    out: list[Record] = [{} for _ in rows]
    for pos, i in enumerate(order):
        out[i] = ordered[pos]
    return out


def likelihood(
    response_logprob: float, response_tokens: int, sample_logprobs: Sequence[float | None], sample_tokens: Sequence[int], cfg: ScoreConfig
) -> float:
    """The likelihood component: the response against the best sample, in totals or per token (`cfg.likelihood_per`)."""
    pairs = [(lp, n) for lp, n in zip(sample_logprobs, sample_tokens) if lp is not None]
    if cfg.likelihood_per == "token":
        best = max(cf.token_rate(lp, n) for lp, n in pairs)
        return cf.likelihood_ratio(cf.token_rate(response_logprob, response_tokens), best, cfg.likelihood_scale)
    return cf.likelihood_ratio(response_logprob, max(lp for lp, _ in pairs), cfg.likelihood_scale)


def _components(
    rows: Sequence[Record], raw: Sequence[Record], cfg: ScoreConfig, similarity: Similarity, count: Callable[[Sequence[str]], list[int]]
) -> list[Record]:
    """Consistency (and likelihood and length, where the given response was scored) from the raw samples.

    `count` gives token counts for raw results stored before they carried them (text + end of turn).
    """
    if cfg.k == 0:
        return [{} for _ in rows]
    answers = [[cf.extract_answer(t) for t in r["texts"]] for r in raw]
    flat_a = [a for ans in answers for a in ans]
    flat_r = [row["response"] for row, ans in zip(rows, answers) for _ in ans]
    sims = similarity(flat_a, flat_r).reshape(len(rows), cfg.k)
    results = []
    for i, (row, r) in enumerate(zip(rows, raw)):
        ems = [cf.exact_match(a, row["response"]) for a in answers[i]]
        part = {
            "consistency": cf.observed_consistency(list(sims[i]), ems, cfg.alpha),
            "samples": answers[i],
            "sample_similarity": [round(float(s), 4) for s in sims[i]],
            "sample_logprobs": r["sample_logprobs"],
        }
        if r["response_logprob"] is not None:
            # Per token (free form), a long response is compared with the samples' rate, not their (shorter) total.
            sample_tokens = r.get("sample_tokens") or [n + 1 for n in count(r["texts"])]
            response_tokens = r.get("response_tokens") or count([row["response"]])[0] + 1
            part["likelihood"] = likelihood(r["response_logprob"], response_tokens, r["sample_logprobs"], sample_tokens, cfg)
            part["length"] = cf.length_agreement(response_tokens, sample_tokens, cfg.length_scale)
            part["response_logprob"] = r["response_logprob"]
            part["best_sample_logprob"] = max(lp for lp in r["sample_logprobs"] if lp is not None)
            part["sample_tokens"] = sample_tokens
        if r.get("response_logprob_alone") is not None:
            part["relevance"] = cf.relevance(r["response_logprob"], r["response_logprob_alone"], r["response_tokens"], cfg.relevance_scale)
            part["response_logprob_alone"] = r["response_logprob_alone"]
            part["response_tokens"] = r["response_tokens"]
        results.append(part)
    return results


def _reflect_cached(lm: ChatLM, rows: Sequence[Record], model_id: str, cache: ScoreCache | None) -> list[list[list[float]]]:
    """`reflect` per row, through the cache (keyed by the base model, the scoring code and the row's first question)."""
    template = (prompts.reflection_question(1, "", ""), prompts.CHOICE_PREFIX, prompts.REFLECTION_CHOICES)
    version = code_version()
    keys = [digest(model_id, version, "reflect", template, prompts.reflection_question(0, r["prompt"], r["response"])) for r in rows]
    chunk, show = _chunked(lm)

    def compute(idx: list[int]) -> list[Record]:
        lm.show_progress = False
        try:
            return [{"reflection_probs": p} for p in reflect(lm, [rows[i] for i in idx])]
        finally:
            lm.show_progress = show

    return [r["reflection_probs"] for r in _cached(keys, "reflection", cache, compute, chunk, "reflect", show)]


def score_rows(
    lm: ChatLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    similarity: Similarity,
    train_cfg: LoraTrainConfig | None = None,
    cache: ScoreCache | None = None,
    model_id: str = "",
) -> list[Record]:
    """Score every row; returns one record per row: id, confidence and every component.

    With a `cache` (and `model_id`, the base model's fingerprint), finished rows are stored as
    they complete and reused on the next call: see clearcurate.cache.
    """
    if not rows:
        return []
    if cache is not None and not model_id:
        raise ValueError("a scoring cache needs model_id (the base model's fingerprint), or results of other models would match")
    response_tokens = lm.token_counts([r["response"] for r in rows])  # counted once: the preset and every budget
    preset = cfg.preset_for(response_tokens)
    budgets = sample_budgets(response_tokens, cfg)
    cfg = cfg.with_preset(preset)
    log.info("confidence weights: %s %s (likelihood per %s)", preset, cfg.component_weights(), cfg.likelihood_per)
    if cfg.recipe == "paper":
        shots = fewshot_examples(rows, cfg.fewshot, cfg.seed)
        gen_prompts = [lm.chat(prompts.cot_prompt(r["prompt"], s)) for r, s in zip(rows, shots)]
        raw = _sample_raw(lm, rows, gen_prompts, cfg, budgets, False, digest(model_id, "base"), cache, "sample") if cfg.k else []
        folds: list[int | None] = [None] * len(rows)
    else:
        if train_cfg is None:
            raise ValueError("the crossfit recipe needs the LoRA training config")
        raw, folds = _crossfit(lm, rows, cfg, budgets, train_cfg, cache, model_id)
    parts = _components(rows, raw, cfg, similarity, lm.token_counts)
    reflections = _reflect_cached(lm, rows, model_id, cache)
    weights = cfg.component_weights()
    out = []
    for row, part, fold, refl in zip(rows, parts, folds, reflections):
        parsed = [cf.reflection_certainty(p) for p in refl if p is not None]
        arithmetic = verify.arithmetic(row["response"])
        comps = {**({"reflection": float(np.mean(parsed))} if parsed else {}), **part,
                 **({"arithmetic": arithmetic} if arithmetic is not None else {})}
        numeric = {k: v for k, v in comps.items() if isinstance(v, float)}
        active = {k: w for k, w in weights.items() if k != "reflection" or parsed}  # an unparsed reflection drops out
        if not any(active.values()):
            raise ValueError(f"row {row['id']}: no component to score it with (reflection unparsed, k = 0)")
        confidence = cf.checked(cf.combine(numeric, active), arithmetic, ARITHMETIC_PENALTY)
        record = {"id": row["id"], "confidence": confidence, "weights_preset": preset, **comps, "reflection_probs": refl}
        if len(parsed) < len(refl):
            record["reflection_unparsed"] = len(refl) - len(parsed)
        if fold is not None:
            record["fold"] = fold
        out.append(record)
    return out


def _crossfit(
    lm: LocalLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    budgets: Sequence[int],
    train_cfg: LoraTrainConfig,
    cache: ScoreCache | None,
    model_id: str,
) -> tuple[list[Record], list[int | None]]:
    folds = [fold_of(r["id"], cfg.folds) for r in rows]
    # Fold models train for a fixed number of epochs: fitting longer lets them learn the noisy
    # rows too, and detection drops (measured AUROC 0.85 after one epoch, 0.73 after two).
    fold_cfg = replace(train_cfg, epochs=cfg.fold_epochs, max_steps=0)
    raw: list[Record] = [{} for _ in rows]
    for f in range(cfg.folds):
        held = [i for i, x in enumerate(folds) if x == f]
        train = [rows[i] for i, x in enumerate(folds) if x != f]
        if not held or cfg.k == 0:
            continue
        held_rows = [rows[i] for i in held]
        gen_prompts = [lm.chat(r["prompt"]) for r in held_rows]
        slot = f"fold{f + 1}of{cfg.folds}-{digest(model_id, code_version(), asdict(fold_cfg))[:16]}"
        train_rows = [digest(r["id"], r["prompt"], r["response"]) for r in train]
        saved = cache.fold_adapter(slot, train_rows, FOLD_REUSE_TOLERANCE) if cache is not None else None
        held_budgets = [budgets[i] for i in held]
        held_keys = _sample_keys(digest(model_id, saved.name), cfg, True, gen_prompts, held_rows, held_budgets) if saved else []
        if saved is not None and cache.has_all("samples", held_keys):
            adapted, scope = None, saved.name  # every held row is cached: this fold needs no model
        elif saved is not None:
            log.info("cross-fit fold %d/%d: reusing the cached adapter %s", f + 1, cfg.folds, saved.name)
            adapted, scope = lm.open_adapter(saved), saved.name
        else:
            log.info("cross-fit fold %d/%d: train on %d rows, score %d", f + 1, cfg.folds, len(train), len(held))
            adapted, _ = lm.new_adapter(train, fold_cfg, desc=f"fold {f + 1}/{cfg.folds}")
            scope = cache.save_fold_adapter(slot, train_rows, adapted).name if cache is not None else "uncached"
        with lm.using(adapted) if adapted is not None else nullcontext():  # the next fold starts from the base model
            fold_raw = _sample_raw(
                lm, held_rows, gen_prompts, cfg, held_budgets, True, digest(model_id, scope), cache, f"sample fold {f + 1}"
            )
        for i, r in zip(held, fold_raw):
            raw[i] = r
    return raw, folds

