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
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from clearcurate import confidence as cf
from clearcurate import defects, prompts, verify
from clearcurate.budget import token_budgets
from clearcurate.cache import ScoreCache, digest, source_fingerprint
from clearcurate.llm.base import ChatLM, Engine, RowsFailed, Sampled
from clearcurate.llm.hf import LocalLM
from clearcurate.params import LoraTrainConfig, ScoreConfig
from clearcurate.presets import DEFECT_PENALTY, FLUENCY_SCALE, PRESETS
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
SCORING_VERSION = 2  # 2: samples seeded per row (prompt), not per chunk
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


def fold_assignment(rows: Sequence[Record], cfg: ScoreConfig) -> list[int]:
    """Each row's fold: from its id, or (`score.fold_by`) from a field, so that rows sharing it (the same
    prompt answered several times) share a fold and none is scored by a model that saw the others."""
    if cfg.fold_by == "id":
        return [fold_of(r["id"], cfg.folds) for r in rows]
    missing = [r["id"] for r in rows if not isinstance(r.get(cfg.fold_by), str)]
    if missing:
        raise ValueError(f"score.fold_by: {len(missing)} rows have no text field {cfg.fold_by!r}, e.g. {missing[:3]}")
    return [fold_of(f"{cfg.fold_by}:{r[cfg.fold_by]}", cfg.folds) for r in rows]


def repeated_prompts(rows: Sequence[Record]) -> int:
    """Rows whose prompt another row also has: with folds by id, their fold model saw the same prompt."""
    counts = Counter(r["prompt"] for r in rows)
    return sum(n for n in counts.values() if n > 1)


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
    cache: ScoreCache,
    compute: Callable[[list[int]], list[Record]],
    chunk: int,
    desc: str,
    show_progress: bool,
) -> list[Record]:
    """Per-row results: cached ones are read, the rest computed a chunk at a time and stored as each finishes.

    Storing per chunk is what makes a killed run resumable: at most one chunk of work is lost.
    """
    out: list[Record | None] = [cache.get(kind, k) for k in keys]
    todo = [i for i, v in enumerate(out) if v is None]
    if len(todo) < len(keys):
        log.info("%s: %d of %d rows from the cache, %d to compute", desc, len(keys) - len(todo), len(keys), len(todo))
    with tqdm(total=len(todo), desc=desc, unit="row", disable=not show_progress or not todo, leave=False) as bar:
        for start in range(0, len(todo), chunk):
            idx = todo[start : start + chunk]
            for i, value in zip(idx, compute(idx), strict=True):
                out[i] = value
                _store(cache, kind, keys[i], value)
            bar.update(len(idx))
    return out  # type: ignore[return-value]


def _store(cache: ScoreCache, kind: str, key: str, value: Record) -> None:
    """Cache one row's result, except an unparsed API reflection (None): that is asked again next run."""
    if None not in value.get("reflection_probs", ()):
        cache.put(kind, key, value)


@contextmanager
def _quiet(lm: ChatLM) -> Iterator[None]:
    """The model's own per-call progress bars off (the caller shows one per row)."""
    show = lm.show_progress
    lm.show_progress = False
    try:
        yield
    finally:
        lm.show_progress = show


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


def _sample_raw(
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
    """`sample_records` of every row, through the cache (`keys`: `_sample_keys`)."""
    order = _sample_order(gen_prompts, budgets)
    chunk, show = _chunked(lm)

    def compute(idx: list[int]) -> list[Record]:
        real = [order[i] for i in idx]
        with _quiet(lm):
            return sample_records(lm, [gen_prompts[i] for i in real], [rows[i]["response"] for i in real],
                                  [budgets[i] for i in real], cfg, with_likelihood)

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
    With k = 0 there are no samples: relevance only, where the given response was scored.
    """
    if cfg.k == 0:
        return [_relevance(r, cfg) for r in raw] if raw else [{} for _ in rows]
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
        results.append({**part, **_relevance(r, cfg)})
    return results


def _relevance(raw: Record, cfg: ScoreConfig) -> Record:
    """How much the prompt raises the response's likelihood under the fold model (with its inputs), where it was scored."""
    if raw.get("response_logprob_alone") is None:
        return {}
    return {"relevance": cf.relevance(raw["response_logprob"], raw["response_logprob_alone"], raw["response_tokens"], cfg.relevance_scale),
            "response_logprob": raw["response_logprob"], "response_logprob_alone": raw["response_logprob_alone"],
            "response_tokens": raw["response_tokens"]}


def sampled_config(cfg: ScoreConfig) -> ScoreConfig:
    """`cfg` for the sampling work: k = 0 when no weighted component needs samples (the free_form preset
    weighs relevance and fluency only). The fold model then scores the given response alone, two forward
    passes a row instead of k sampled answers of up to `max_new_tokens_cap` tokens."""
    weights = cfg.component_weights()
    return cfg if any(weights.get(c, 0) > 0 for c in cf.SAMPLED_COMPONENTS) else replace(cfg, k=0)


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


def _reflect_keys(rows: Sequence[Record], model_id: str, parts: Sequence[str]) -> list[str]:
    """Cache keys of the base model's work: the base model, the scoring code, the parts and the row's first question."""
    template = (prompts.reflection_question(1, "", ""), prompts.CHOICE_PREFIX, prompts.REFLECTION_CHOICES)
    version = code_version()
    return [digest(model_id, version, "reflect", tuple(parts), template, prompts.reflection_question(0, r["prompt"], r["response"]))
            for r in rows]


def _reflect_cached(lm: ChatLM, rows: Sequence[Record], model_id: str, cache: ScoreCache, parts: Sequence[str]) -> list[Record]:
    """`reflection_records` per row, through the cache (nothing to compute when no part is weighted)."""
    if not parts:
        return [{} for _ in rows]
    chunk, show = _chunked(lm)

    def compute(idx: list[int]) -> list[Record]:
        with _quiet(lm):
            return reflection_records(lm, [rows[i] for i in idx], parts)

    return _cached(_reflect_keys(rows, model_id, parts), "reflection", cache, compute, chunk, "base model", show)


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
    preset = cfg.preset_for(response_tokens)
    budgets = sample_budgets(response_tokens, cfg)
    cfg = cfg.with_preset(preset)
    log.info("confidence weights: %s %s (likelihood per %s)", preset, cfg.component_weights(), cfg.likelihood_per)
    if cfg.recipe == "crossfit" and train_cfg is None:
        raise ValueError("the crossfit recipe needs the LoRA training config")
    if cfg.recipe == "crossfit" and cfg.fold_by == "id" and (repeated := repeated_prompts(rows)):
        log.warning("%d rows share their prompt with another row: with folds by id, a fold model may have trained on the same "
                    "prompt with another response. Set score.fold_by: prompt to keep each prompt's rows in one fold (docs/scoring.md)",
                    repeated)
    parts = base_parts(cfg.component_weights())
    sampling = sampled_config(cfg)
    if engine is not None:
        raw, folds, reflections = _on_engine(engine, lm, rows, sampling, budgets, train_cfg, cache, model_id, parts)
    elif cfg.recipe == "paper":
        gen_prompts = _paper_prompts(lm, rows, cfg)
        keys = _sample_keys(digest(model_id, "base"), sampling, False, gen_prompts, rows, budgets)
        raw = _sample_raw(lm, rows, gen_prompts, sampling, budgets, False, keys, cache, "sample") if sampling.k else []
        folds: list[int | None] = [None] * len(rows)
        reflections = _reflect_cached(lm, rows, model_id, cache, parts)
    else:
        raw, folds = _crossfit(lm, rows, sampling, budgets, train_cfg, cache, model_id)
        reflections = _reflect_cached(lm, rows, model_id, cache, parts)
    components = _components(rows, raw, sampling, similarity, lm.token_counts)
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


# Score settings that change only how stored components combine (`confidences`), never a row's model
# work: keys of stored scoring results leave them out, so changing one recombines instead of rescoring.
RECOMBINE_ONLY = ("group_by", "defects")
# Settings added after results were stored, at the value that reproduces what was stored before they
# existed: left out of stored results' keys at that value, so those results stay found.
ADDED_AT = {"fold_by": "id"}


def stored_settings(settings: Mapping[str, object]) -> dict[str, object]:
    """The score settings a stored result's key names: all but `RECOMBINE_ONLY` and the `ADDED_AT` ones at their old behaviour."""
    return {k: v for k, v in settings.items() if k not in RECOMBINE_ONLY and not (k in ADDED_AT and v == ADDED_AT[k])}


def group_field_candidates(rows: Sequence[Record]) -> dict[str, dict[str, int]]:
    """Fields that look like a row's kind or source (every row has a text value, and at least two
    values cover MIN_GROUP_ROWS rows each), with their value counts: what `score.group_by` could
    name. A set that mixes kinds of response needs it (docs/scoring.md), and nothing else tells."""
    skip = {"id", "prompt", "response"}
    found: dict[str, dict[str, int]] = {}
    for name in sorted(set(rows[0]) - skip) if rows else ():
        values = [row.get(name) for row in rows]
        if not all(isinstance(v, str) and v.strip() for v in values):
            continue
        counts = Counter(values)
        if sum(n >= cf.MIN_GROUP_ROWS for n in counts.values()) >= 2 and len(counts) <= len(rows) // cf.MIN_GROUP_ROWS:
            found[name] = dict(counts.most_common())
    return found


def row_groups(rows: Sequence[Record], field: str) -> list[str | None]:
    """Each row's `score.group_by` value as a group label (None where the row lacks it). A field no
    row has is an error: a typo must not silently fit one trend for everything."""
    groups = [None if row.get(field) is None else str(row[field]) for row in rows]
    if rows and all(g is None for g in groups):
        raise ValueError(f"score.group_by: no row has a field {field!r} (fields of the first row: {sorted(rows[0])})")
    return groups


def confidences(records: Sequence[Record], cfg: ScoreConfig, preset: str) -> list[tuple[float, dict[str, float]]]:
    """Each row's confidence from its stored components, with the length-adjusted values the preset
    weighs (`Preset.length_adjusted`, over all these rows together, or per `group` with
    `score.group_by`) and the defect penalty applied (`defects`; records stored before the defect
    checks existed carry only their `arithmetic` share, the first check).

    No model work: the benchmark recomputes stored rows with it when a preset changes. `cfg` has the
    preset applied (`with_preset`).
    """
    weights = cfg.component_weights()
    numeric = [{k: v for k, v in r.items() if isinstance(v, float)} for r in records]
    adjusted: list[dict[str, float]] = [{} for _ in records]
    if preset in PRESETS and PRESETS[preset].length_adjusted:
        for name in (k for k, w in weights.items() if w):
            have = [i for i, num in enumerate(numeric) if name in num]
            lengths = [records[i]["response_tokens"] for i in have]
            groups = [records[i].get("group") for i in have] if cfg.group_by is not None else None
            for i, value in zip(have, cf.length_adjusted([numeric[i][name] for i in have], lengths, groups)):
                adjusted[i][name] = value
    out = []
    for record, num, adj in zip(records, numeric, adjusted):
        active = {k: w for k, w in weights.items() if k != "reflection" or k in num}  # an unparsed reflection drops out
        if not any(active.values()):
            raise ValueError(f"row {record['id']}: no component to score it with (reflection unparsed, k = 0)")
        out.append((cf.penalized(cf.combine({**num, **adj}, active), defects.is_defective(record), DEFECT_PENALTY), adj))
    return out


def _paper_prompts(lm: ChatLM, rows: Sequence[Record], cfg: ScoreConfig) -> list[str]:
    """The paper recipe's generation prompts: chain of thought after `cfg.fewshot` worked examples from the data."""
    shots = fewshot_examples(rows, cfg.fewshot, cfg.seed)
    return [lm.chat(prompts.cot_prompt(r["prompt"], s)) for r, s in zip(rows, shots)]


@dataclass
class _Fold:
    """One cross-fit fold: its held-out rows, its training rows and where its adapter is cached."""

    number: int
    held: list[int]
    train: list[Record]
    slot: str
    train_rows: list[str]  # per-row content hashes (the adapter's reuse check)
    adapter: Path | None = None  # the cached adapter, once there is one
    gen_prompts: list[str] = field(default_factory=list)
    trained: bool = False  # by this run (else found in the cache)


def _folds(
    lm: ChatLM, rows: Sequence[Record], cfg: ScoreConfig, fold_cfg: LoraTrainConfig, cache: ScoreCache, model_id: str
) -> list[_Fold]:
    """The folds that have rows to score, each with its cached adapter if one fits (`ScoreCache.fold_adapter`)."""
    weights = cfg.component_weights()
    if not any(weights.get(c, 0) > 0 for c in cf.FOLD_COMPONENTS):
        return []  # nothing to score with a fold model
    assignment = fold_assignment(rows, cfg)
    out = []
    for f in range(cfg.folds):
        held = [i for i, x in enumerate(assignment) if x == f]
        if not held:
            continue
        train = [rows[i] for i, x in enumerate(assignment) if x != f]
        slot = f"fold{f + 1}of{cfg.folds}-{digest(model_id, code_version(), asdict(fold_cfg))[:16]}"
        train_rows = [digest(r["id"], r["prompt"], r["response"]) for r in train]
        fold = _Fold(f, held, train, slot, train_rows, cache.fold_adapter(slot, train_rows, FOLD_REUSE_TOLERANCE))
        fold.gen_prompts = [lm.chat(rows[i]["prompt"]) for i in held]
        out.append(fold)
    return out


def _fold_config(cfg: ScoreConfig, train_cfg: LoraTrainConfig) -> LoraTrainConfig:
    # Fold models train for a fixed number of epochs: fitting longer lets them learn the noisy
    # rows too, and detection drops (measured AUROC 0.85 after one epoch, 0.73 after two).
    return replace(train_cfg, epochs=cfg.fold_epochs, max_steps=0)


def _fold_keys(fold: _Fold, rows: Sequence[Record], cfg: ScoreConfig, budgets: Sequence[int], model_id: str) -> list[str]:
    """Sample keys of a fold's held-out rows, under its adapter."""
    assert fold.adapter is not None
    held_rows = [rows[i] for i in fold.held]
    return _sample_keys(digest(model_id, fold.adapter.name), cfg, True, fold.gen_prompts, held_rows, [budgets[i] for i in fold.held])


def fold_adapters(
    lm: ChatLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    train_cfg: LoraTrainConfig,
    cache: ScoreCache,
    model_id: str,
    engine: Engine | None = None,
) -> list[_Fold]:
    """Every cross-fit fold with rows to score, each with its cached adapter: the missing ones are trained
    first, on `engine` (in parallel where it can) or here one at a time, and cached."""
    fold_cfg = _fold_config(cfg, train_cfg)
    folds = _folds(lm, rows, cfg, fold_cfg, cache, model_id)
    untrained = [fold for fold in folds if fold.adapter is None]
    if engine is not None and untrained:
        log.info("cross-fit: training %d fold adapters on the engine", len(untrained))
        for fold, files in zip(untrained, engine.train_folds([fold.train for fold in untrained], fold_cfg)):
            fold.adapter = cache.save_fold_adapter(fold.slot, fold.train_rows, functools.partial(_write_files, files))
    elif untrained:
        for fold in untrained:
            log.info("cross-fit fold %d/%d: train on %d rows, score %d", fold.number + 1, cfg.folds, len(fold.train), len(fold.held))
            adapted, _ = lm.new_adapter(fold.train, fold_cfg, desc=f"fold {fold.number + 1}/{cfg.folds}")
            fold.adapter = cache.save_fold_adapter(fold.slot, fold.train_rows, adapted.save_pretrained)
            lm.model = adapted.unload()  # training changed only the adapter: the base weights are as they were
    for fold in untrained:
        fold.trained = True
    return folds


def _crossfit(
    lm: LocalLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    budgets: Sequence[int],
    train_cfg: LoraTrainConfig,
    cache: ScoreCache,
    model_id: str,
) -> tuple[list[Record], list[int | None]]:
    """Cross-fit samples in this process, one fold at a time, each with its adapter merged in."""
    raw: list[Record] = [{} for _ in rows]
    for fold in fold_adapters(lm, rows, cfg, train_cfg, cache, model_id):
        assert fold.adapter is not None
        keys = _fold_keys(fold, rows, cfg, budgets, model_id)
        with ExitStack() as stack:
            if not cache.has_all("samples", keys):  # every held row cached: this fold needs no model
                if not fold.trained:
                    log.info("cross-fit fold %d/%d: reusing the cached adapter %s", fold.number + 1, cfg.folds, fold.adapter.name)
                stack.enter_context(lm.using(lm.open_adapter(fold.adapter)))  # the next fold starts from the base model
            fold_raw = _sample_raw(lm, [rows[i] for i in fold.held], fold.gen_prompts, cfg, [budgets[i] for i in fold.held], True,
                                   keys, cache, f"{'sample' if cfg.k else 'score'} fold {fold.number + 1}")
        for i, r in zip(fold.held, fold_raw):
            raw[i] = r
    return raw, fold_assignment(rows, cfg)


def _on_engine(
    engine: Engine,
    lm: ChatLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    budgets: Sequence[int],
    train_cfg: LoraTrainConfig | None,
    cache: ScoreCache,
    model_id: str,
    parts: Sequence[str],
) -> tuple[list[Record], list[int | None], list[Record]]:
    """Samples and reflections of every row, the missing ones computed on `engine` and cached as its blocks finish.

    The keys, seeds and fold adapters are the local engine's, so either engine resumes the other's run.
    """
    n = len(rows)
    gen_prompts: list[str] = [""] * n
    sample_keys: list[str | None] = [None] * n
    adapter_of: list[str | None] = [None] * n
    adapters: dict[str, Path] = {}
    if cfg.recipe == "paper":
        folds: list[int | None] = [None] * n
        if cfg.k:
            gen_prompts = _paper_prompts(lm, rows, cfg)
            sample_keys = list(_sample_keys(digest(model_id, "base"), cfg, False, gen_prompts, rows, budgets))
    else:
        for fold in fold_adapters(lm, rows, cfg, train_cfg, cache, model_id, engine):
            assert fold.adapter is not None
            adapters[fold.adapter.name] = fold.adapter
            for i, prompt, key in zip(fold.held, fold.gen_prompts, _fold_keys(fold, rows, cfg, budgets, model_id)):
                gen_prompts[i], sample_keys[i], adapter_of[i] = prompt, key, fold.adapter.name
        folds = fold_assignment(rows, cfg)
    reflect_keys = _reflect_keys(rows, model_id, parts)
    raw: list[Record | None] = [cache.get("samples", k) if k is not None else {} for k in sample_keys]
    reflections: list[Record | None] = [cache.get("reflection", k) if parts else {} for k in reflect_keys]
    tasks = [
        {"index": i, "prompt": rows[i]["prompt"], "response": rows[i]["response"], "gen_prompt": gen_prompts[i], "budget": budgets[i],
         "adapter": adapter_of[i], "with_likelihood": cfg.recipe == "crossfit", "sample": raw[i] is None, "reflect": reflections[i] is None}
        for i in range(n) if raw[i] is None or reflections[i] is None
    ]
    if len(tasks) < n:
        log.info("%d of %d rows from the cache, %d to compute", n - len(tasks), n, len(tasks))
    tasks.sort(key=lambda t: (t["adapter"] or "", -t["budget"], -len(t["gen_prompt"])))  # a block: one fold, similar lengths
    failures: dict[str, str] = {}
    with tqdm(total=len(tasks), desc="score", unit="row", disable=not lm.show_progress or not tasks) as bar:
        for result in engine.run(tasks, cfg, adapters):
            i = result["index"]
            if "samples" in result:
                raw[i] = result["samples"]
                _store(cache, "samples", sample_keys[i], result["samples"])
            if "reflection" in result:
                reflections[i] = result["reflection"]
                _store(cache, "reflection", reflect_keys[i], result["reflection"])
            if "error" in result:
                failures[rows[i]["id"]] = result["error"]
            bar.update(1)
    if failures:
        cache.record_failures(failures)
        raise RowsFailed(failures)
    return raw, folds, reflections  # type: ignore[return-value]


def _write_files(files: Mapping[str, bytes], folder: Path) -> None:
    """Write an adapter's files (as an engine returns them) into `folder`."""
    for name, data in files.items():
        (folder / name).write_bytes(data)
