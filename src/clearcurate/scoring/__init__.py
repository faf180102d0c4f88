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
Self-reflection and fluency are asked of the base model, the same judge for every row, and only
when the weights give them a share (`base_parts`).

The package: `store` (cache keys and versions), `samples` (sampled answers and likelihoods),
`reflection` (the base model's questions), `crossfit` (fold models, here or on an engine), `combine`
(components and confidences, no model work) and `score_rows` here, which puts them together.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence

import numpy as np

from clearcurate.cache import ScoreCache, digest
from clearcurate.config import LoraTrainConfig, ScoreConfig
from clearcurate.core import confidence as cf
from clearcurate.core import defects, presets, verify
from clearcurate.core.presets import FLUENCY_SCALE, PRESETS
from clearcurate.core.records import Record
from clearcurate.llm.base import ChatLM, Engine
from clearcurate.scoring.combine import component_records, confidences, group_field_candidates, likelihood, row_groups
from clearcurate.scoring.crossfit import crossfit, fold_adapters, fold_assignment, fold_of, on_engine, repeated_prompts
from clearcurate.scoring.reflection import base_parts, reflect, reflect_cached, reflection_records
from clearcurate.scoring.samples import (
    fewshot_examples,
    paper_prompts,
    sample_budgets,
    sample_cache_keys,
    sample_raw,
    sample_records,
    sampled_config,
)
from clearcurate.scoring.similarity import Similarity
from clearcurate.scoring.store import RECOMBINE_ONLY, SCORING_MODULES, code_version, stored_settings

__all__ = [  # what the stages, correction, the engines and the benchmark use
    "RECOMBINE_ONLY", "SCORING_MODULES", "ScoreConfig", "base_parts", "code_version", "confidences", "fewshot_examples",
    "fold_adapters", "fold_assignment", "fold_of", "group_field_candidates", "likelihood", "reflect", "reflection_records", "row_groups",
    "sample_budgets", "sample_records", "score_rows", "stored_settings",
]

log = logging.getLogger(__name__)


def score_rows(
    lm: ChatLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    similarity: Similarity,
    train_cfg: LoraTrainConfig | None = None,
    cache: ScoreCache | None = None,
    model_id: str = "",
    engine: Engine | None = None,
) -> list[Record]:
    """Score every row; returns one record per row: id, confidence and every component.

    With a `cache` (and `model_id`, the base model's fingerprint), finished rows are stored as
    they complete and reused on the next call: see clearcurate.cache. Without one, a temporary
    cache holds this call's fold adapters and rows. `engine`: run the model work there (e.g. on
    a Ray cluster) instead of on `lm`, which then only renders prompts and counts tokens; a row
    the engine fails on raises RowsFailed at the end, after every other row is cached.
    """
    if not rows:
        return []
    if cache is not None and not model_id:
        raise ValueError("a scoring cache needs model_id (the base model's fingerprint), or results of other models would match")
    if cache is None:
        with tempfile.TemporaryDirectory(prefix="clearcurate-score-") as tmp:
            return score_rows(lm, rows, cfg, similarity, train_cfg, ScoreCache(tmp), model_id or "uncached", engine)
    response_tokens = lm.token_counts([r["response"] for r in rows])  # counted once: the preset and every budget
    preset = presets.choose(cfg, response_tokens)
    budgets = sample_budgets(response_tokens, cfg)
    cfg = presets.applied(cfg, preset)
    log.info("confidence weights: %s %s (likelihood per %s)", preset, presets.component_weights(cfg), cfg.likelihood_per)
    if cfg.recipe == "crossfit" and train_cfg is None:
        raise ValueError("the crossfit recipe needs the LoRA training config")
    if cfg.recipe == "crossfit" and cfg.fold_by == "id" and (repeated := repeated_prompts(rows)):
        log.warning("%d rows share their prompt with another row: with folds by id, a fold model may have trained on the same "
                    "prompt with another response. Set score.fold_by: prompt to keep each prompt's rows in one fold (docs/scoring.md)",
                    repeated)
    parts = base_parts(presets.component_weights(cfg))
    sampling = sampled_config(cfg)
    if engine is not None:
        raw, folds, reflections = on_engine(engine, lm, rows, sampling, budgets, train_cfg, cache, model_id, parts)
    elif cfg.recipe == "paper":
        gen_prompts = paper_prompts(lm, rows, cfg)
        keys = sample_cache_keys(digest(model_id, "base"), sampling, False, gen_prompts, rows, budgets)
        raw = sample_raw(lm, rows, gen_prompts, sampling, budgets, False, keys, cache, "sample") if sampling.k else []
        folds: list[int | None] = [None] * len(rows)
        reflections = reflect_cached(lm, rows, model_id, cache, parts)
    else:
        raw, folds = crossfit(lm, rows, sampling, budgets, train_cfg, cache, model_id)
        reflections = reflect_cached(lm, rows, model_id, cache, parts)
    components = component_records(rows, raw, sampling, similarity, lm.token_counts)
    groups = row_groups(rows, cfg.group_by) if cfg.group_by is not None else None
    length_adjusted = preset in PRESETS and PRESETS[preset].length_adjusted
    if groups is not None and not length_adjusted:
        log.info("score.group_by: %s weighs no component against length, so the groups change nothing", preset)
    if groups is None and length_adjusted:
        for name, counts in group_field_candidates(rows).items():
            shown = ", ".join(f"{v} {n}" for v, n in list(counts.items())[:5]) + (", ..." if len(counts) > 5 else "")
            log.warning("rows carry %r (%s): if it names the kind or source of each response, set score.group_by: %s, "
                        "so each kind is weighed against its own length trend (docs/scoring.md)", name, shown, name)
    out = []
    for i, (row, part, fold, base, n_tokens) in enumerate(zip(rows, components, folds, reflections, response_tokens)):
        refl = base.get("reflection_probs", [])
        parsed = [cf.reflection_certainty(p) for p in refl if p is not None]
        arithmetic = verify.arithmetic(row["response"])
        comps = {**({"reflection": float(np.mean(parsed))} if parsed else {}), **part,
                 **({"arithmetic": arithmetic} if arithmetic is not None else {})}
        if base.get("response_logprob_base") is not None:
            comps["fluency"] = cf.fluency(base["response_logprob_base"], base["response_tokens_base"], FLUENCY_SCALE)
            comps.update(response_logprob_base=base["response_logprob_base"], response_tokens_base=base["response_tokens_base"])
        comps.setdefault("response_tokens", n_tokens + 1)  # the response and its end of turn, as the likelihoods count it
        record = {"id": row["id"], "confidence": None, "weights_preset": preset, **comps,
                  **({"reflection_probs": refl} if "reflection_probs" in base else {}),
                  "defects": defects.find_defects(row["prompt"], row["response"], cfg.defects)}
        if len(parsed) < len(refl):
            record["reflection_unparsed"] = len(refl) - len(parsed)
        if fold is not None:
            record["fold"] = fold
        if groups is not None:
            record["group"] = groups[i]
        out.append(record)
    for record, (confidence, adjusted) in zip(out, confidences(out, cfg, preset)):
        record["confidence"] = confidence
        if adjusted:
            record["length_adjusted"] = adjusted
    return out
