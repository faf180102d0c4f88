"""Auto-Correct: propose a new response for each removed row, and replace only when confident.

Two judges, one decision rule (`curation.should_replace`: confidence > eta):
- `agreement` (default): the filtered model, which never trained on the removed rows, samples k
  answers; the candidate is the answer they agree on, and confidence is their agreement times
  the model's likelihood preference for the candidate over the original (confident learning's
  out-of-sample relabelling; RobustFT's agreement rule). No judge prompt is involved, so there
  is no position bias to remove, and it needs no model stronger than the one being tuned.
- `pairwise` (the CLEAR paper's): the filtered model proposes its greedy answer; the base model
  judges original against candidate, asked in both orders and averaged to remove its preference
  for a slot (arXiv 2305.17926), combined with self-reflection on the candidate, weighted by beta.
The pure decision math lives in `clearcurate.core.curation`; this module only calls the model.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np

from clearcurate.cache import ScoreCache, digest, source_fingerprint
from clearcurate.config import CorrectConfig
from clearcurate.core import confidence as cf
from clearcurate.core import prompts
from clearcurate.core.budget import token_budgets, typical_floor
from clearcurate.core.curation import agreement_verdict, correction_reason, pairwise_preference, redecide, should_replace
from clearcurate.core.outcomes import Outcome
from clearcurate.core.records import Record, progress
from clearcurate.llm.base import ChatLM, Engine
from clearcurate.scoring import SCORING_MODULES, reflect


def candidate_first(row_id: str, seed: int) -> bool:
    """Whether the candidate is shown as (A) for this row: random per row, stable across runs."""
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).digest()
    return random.Random(digest).random() < 0.5


def correct_rows(lm: ChatLM, rows: Sequence[Record], cfg: CorrectConfig, judge: ChatLM | None = None) -> list[Record]:
    """Decide every removed row: corrected (with the new response) or removed, with a reason and the evidence.

    `lm` must run the filtered model (it never saw these rows). The pairwise judge is `judge` (a separate
    scorer: params' `scorer`) or, by default, `lm.base_model()`.
    """
    if not rows:
        return []
    if cfg.judge == "agreement":
        return _agreement(lm, rows, cfg)
    return _pairwise(lm, rows, cfg, judge)


# What produces a row's cached evidence: the model stack scoring uses, plus the judges and their math.
# Other code never reuses it (as in scoring's cache keys).
CORRECTION_MODULES = (*SCORING_MODULES, "clearcurate.correction", "clearcurate.core.curation", "clearcurate.core.confidence")


@functools.cache
def _code_version() -> str:
    return source_fingerprint(CORRECTION_MODULES)[:16]


def evidence_settings(cfg: CorrectConfig) -> dict[str, object]:
    """The settings a decision's evidence depends on: all but eta, which only decides from it (`curation.redecide`)."""
    return {k: v for k, v in asdict(cfg).items() if k != "eta"}


def cached_decisions(
    rows: Sequence[Record], cfg: CorrectConfig, cache: ScoreCache, model_id: str,
    work: Callable[[Sequence[Record]], list[Record]],
) -> list[Record]:
    """Every row's decision at `cfg.eta`, with model work (`work`) only for rows whose evidence is not cached.

    The evidence (candidate, confidence) depends on the models (`model_id`: base and filtered
    adapter), the row and the judge's settings, never on eta; it is cached under a key without
    eta, so trying another eta re-decides stored rows without sampling again; other correction or
    model code (`CORRECTION_MODULES`) never matches. A row whose work failed is not cached: the next
    run tries it again.
    """
    settings = evidence_settings(cfg)
    keys = [digest(_code_version(), model_id, settings, r["id"], r["prompt"], r["response"]) for r in rows]
    stored = [cache.get("correction", k) for k in keys]
    fresh = iter(work([r for r, s in zip(rows, stored, strict=True) if s is None]) if None in stored else [])
    out = []
    for key, evidence in zip(keys, stored, strict=True):
        if evidence is None:
            evidence = next(fresh)
            if "error" not in evidence:
                cache.put("correction", key, evidence)
        out.append(redecide(evidence, cfg.eta))
    return out


def correct(lm: ChatLM, engine: Engine | None, rows: Sequence[Record], cfg: CorrectConfig, adapter: Path,
            judge: ChatLM | None = None) -> list[Record]:
    """Every removed row's decision: on the engine (workers holding the filtered `adapter`), or here on
    `lm`, the filtered model (`judge`: the pairwise judge when the scorer is another model)."""
    if engine is not None:
        return correct_on(engine, rows, cfg, adapter)
    return correct_rows(lm, rows, cfg, judge=judge)


def correct_on(engine: Engine, rows: Sequence[Record], cfg: CorrectConfig, adapter: Path) -> list[Record]:
    """`correct_rows` on `engine`, in blocks of rows, on workers holding the filtered model's `adapter`.

    Every row gets a decision: one whose work fails on the engine (alone: a failing block is retried
    row by row) is removed, with the error as its reason, and the other rows go on.
    """
    done = progress(engine.map_blocks(rows, partial(correct_rows, cfg=cfg), {"filtered": adapter}), "correct", len(rows))
    return [failed_decision(row, out["error"]) if "error" in out else out["result"] for row, out in zip(rows, done, strict=True)]


def failed_decision(row: Record, error: str) -> Record:
    """The decision for a row Auto-Correct could not decide: removed (as the filter had it), with the error as its reason."""
    return {"id": row["id"], "outcome": Outcome.REMOVED, "reason": f"Auto-Correct failed on this row: {error}",
            "confidence": 0.0, "error": error, "old": row["response"], "new": row["response"]}


def _agreement(lm: ChatLM, rows: Sequence[Record], cfg: CorrectConfig) -> list[Record]:
    if not lm.supports_logprobs:
        raise ValueError(
            "correct.judge: agreement compares log-probabilities of the original and the candidate, which a chat API "
            "does not return: set correct.judge: pairwise with model.backend: openai"
        )
    # One call for every row, each with a budget that follows its removed response's length (as `score`'s samples do):
    # a fixed 32 tokens cut off 57% of the samples on free-form rows, and a cut-off sample cannot be the candidate.
    # A sample's randomness depends on the seed, its index and its prompt only (LocalLM.sample), not on the other rows.
    budgets = correction_budgets(lm, rows, cfg)
    sampled_rows = lm.sample([lm.chat(r["prompt"]) for r in rows], n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p,
                             max_new_tokens=budgets, seed=cfg.seed, given=[r["response"] for r in rows], desc="propose")
    out: list[Record] = []
    for row, sampled, budget in zip(rows, sampled_rows, budgets, strict=True):
        gens = sampled.generations
        complete = [g.n_tokens < budget for g in gens]
        verdict = agreement_verdict([g.text for g in gens], [g.logprob for g in gens], complete, row["response"],
                                    float(sampled.given_logprob))
        replace = should_replace(verdict.confidence, cfg.eta, verdict.candidate, row["response"])
        out.append({
            "id": row["id"],
            "outcome": Outcome.CORRECTED if replace else Outcome.REMOVED,
            "reason": verdict.reason(cfg.eta, row["response"]),
            "confidence": verdict.confidence,
            "agreement": verdict.agreement,
            "likelihood_preference": verdict.preference,
            "samples": [g.text for g in gens],
            "budget": budget,
            "truncated_samples": complete.count(False),
            "old": row["response"],
            "new": verdict.candidate if verdict.candidate is not None else row["response"],
        })
    return out


TYPICAL_ROWS = 2000  # kept responses read for their typical length: the file's first, plenty for a quantile


def with_data_floor(cfg: CorrectConfig, lm: ChatLM, kept: Iterable[Record]) -> CorrectConfig:
    """`cfg` with its sampling floor (`max_new_tokens`) raised to the kept responses' typical length
    (`core.budget.typical_floor`), so that a good answer fits even where the removed response is short. The
    floor is part of `cfg`, so cached evidence sampled with another floor is not reused."""
    responses = [r["response"] for r in islice(kept, TYPICAL_ROWS)]
    return replace(cfg, max_new_tokens=typical_floor(lm.token_counts(responses), cfg.max_new_tokens, cfg.max_new_tokens_cap))


def correction_budgets(lm: ChatLM, rows: Sequence[Record], cfg: CorrectConfig) -> list[int]:
    """Each row's generation budget: at least `correct.max_new_tokens`, 1.5x its removed response's tokens + 8, at most the cap."""
    return token_budgets(lm.token_counts([r["response"] for r in rows]), cfg.max_new_tokens, cfg.max_new_tokens_cap)


def _judge(lm: ChatLM, rows: Sequence[Record], candidates: Sequence[str], cand_a: Sequence[bool]) -> list[float | None]:
    """The base model's P(candidate better) per row, with the candidate in the given slot (None: unparsed)."""
    questions = [
        lm.chat(prompts.judge_question(r["prompt"], c if a else r["response"], r["response"] if a else c), prompts.CHOICE_PREFIX)
        for r, c, a in zip(rows, candidates, cand_a)
    ]
    (verdicts,) = lm.choice_probs(questions, prompts.JUDGE_CHOICES, desc="judge")
    return [cf.candidate_preference(list(p), a) if np.all(np.isfinite(p)) else None for p, a in zip(verdicts, cand_a)]


def _pairwise(lm: ChatLM, rows: Sequence[Record], cfg: CorrectConfig, judge: ChatLM | None = None) -> list[Record]:
    candidates = lm.greedy([lm.chat(r["prompt"]) for r in rows], correction_budgets(lm, rows, cfg), desc="propose")
    with ExitStack() as stack:  # the base model (or the scorer) judges, not the model that wrote the candidate
        if judge is None:
            judge = lm
            stack.enter_context(lm.base_model())
        if cfg.order == "both":
            first = _judge(judge, rows, candidates, [True] * len(rows))
            second = _judge(judge, rows, candidates, [False] * len(rows))
            prefs = [None if a is None or b is None else pairwise_preference(a, b) for a, b in zip(first, second)]
            shown = ["both"] * len(rows)
        else:
            slots = [candidate_first(r["id"], cfg.seed) if cfg.order == "random" else cfg.order == "candidate_a" for r in rows]
            prefs = _judge(judge, rows, candidates, slots)
            first = [p if a else None for p, a in zip(prefs, slots)]
            second = [None if a else p for p, a in zip(prefs, slots)]
            shown = ["A" if a else "B" for a in slots]
        reflections = reflect(judge, rows, responses=candidates)
    weights = cf.paper_weights(cfg.beta)
    out: list[Record] = []
    for row, cand, pref, p_a, p_b, slot, refl in zip(rows, candidates, prefs, first, second, shown, reflections):
        if pref is None:  # an API judge whose answer had no readable letter
            out.append({"id": row["id"], "outcome": Outcome.REMOVED, "reason": "the judge's answer could not be parsed",
                        "confidence": 0.0, "judge_unparsed": True, "old": row["response"], "new": cand})
            continue
        parsed = [cf.reflection_certainty(p) for p in refl if p is not None]
        certainty = float(np.mean(parsed)) if parsed else None
        conf = pref if certainty is None else cf.combine({"consistency": pref, "reflection": certainty}, weights)
        replace = should_replace(conf, cfg.eta, cand, row["response"])
        out.append({
            "id": row["id"],
            "outcome": Outcome.CORRECTED if replace else Outcome.REMOVED,
            "reason": correction_reason(conf, cfg.eta, cand, row["response"]),
            "confidence": conf,
            "judge_preference": pref,
            "judge_preference_candidate_a": p_a,
            "judge_preference_candidate_b": p_b,
            "candidate_reflection": certainty,
            "candidate_shown_as": slot,
            "old": row["response"],
            "new": cand,
        })
    return out
