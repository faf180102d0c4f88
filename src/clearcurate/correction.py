"""Auto-Correct: the fine-tuned model proposes, the base model judges, eta decides.

The judge sees the original and the candidate as (A) and (B) in a per-row random order, so a
small model's preference for one slot cancels out over the dataset instead of biasing every
verdict the same way. Confidence that the candidate is better uses the BSDetector machinery:
the judge's probability of choosing the candidate (the expected agreement of sampled verdicts,
i.e. observed consistency) combined with self-reflection on the candidate, weighted by beta.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import numpy as np

from clearcurate import confidence as cf
from clearcurate import prompts
from clearcurate.curation import CORRECTED, REMOVED, correction_reason, should_replace
from clearcurate.llm.hf import LocalLM
from clearcurate.records import Record
from clearcurate.scoring import reflect

ORDERS = ("random", "candidate_a", "candidate_b")


def candidate_first(row_id: str, seed: int) -> bool:
    """Whether the candidate is shown as (A) for this row: random per row, stable across runs."""
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).digest()
    return random.Random(digest).random() < 0.5


def correct_rows(
    lm: LocalLM,
    rows: Sequence[Record],
    eta: float,
    beta: float,
    max_new_tokens: int,
    seed: int = 0,
    order: str = "random",
) -> list[Record]:
    """Decide every low-confidence row: corrected (with the new response) or removed, with a reason.

    `lm.model` must be a peft model whose adapter is the fine-tuned model; the adapter is switched
    off for judging so the base model, not the model that wrote the candidate, is the judge.
    `order` fixes the candidate's slot instead of randomising it (for measuring position bias).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if not rows:
        return []
    candidates = lm.greedy([lm.chat(r["prompt"]) for r in rows], max_new_tokens, desc="propose")
    if order == "random":
        first = [candidate_first(r["id"], seed) for r in rows]
    else:
        first = [order == "candidate_a"] * len(rows)
    questions = [
        lm.chat(
            prompts.judge_question(r["prompt"], c if cand_a else r["response"], r["response"] if cand_a else c),
            prompts.CHOICE_PREFIX,
        )
        for r, c, cand_a in zip(rows, candidates, first)
    ]
    with lm.base_model():
        (verdicts,) = lm.choice_probs(questions, prompts.JUDGE_CHOICES, desc="judge")
        reflections = reflect(lm, rows, responses=candidates)
    weights = cf.paper_weights(beta)
    out: list[Record] = []
    for row, cand, cand_a, probs, refl in zip(rows, candidates, first, verdicts, reflections):
        if not np.all(np.isfinite(probs)):  # an API judge whose answer had no readable letter
            out.append({"id": row["id"], "outcome": REMOVED, "reason": "the judge's answer could not be parsed",
                        "confidence": 0.0, "judge_unparsed": True, "old": row["response"], "new": cand})
            continue
        preference = cf.candidate_preference(list(probs), cand_a)
        parsed = [cf.reflection_certainty(p) for p in refl if p is not None]
        certainty = float(np.mean(parsed)) if parsed else None
        if certainty is None:  # no readable self-reflection: the judge's preference alone
            conf = preference
        else:
            conf = cf.combine({"consistency": preference, "reflection": certainty}, weights)
        replace = should_replace(conf, eta, cand, row["response"])
        out.append(
            {
                "id": row["id"],
                "outcome": CORRECTED if replace else REMOVED,
                "reason": correction_reason(conf, eta, cand, row["response"]),
                "confidence": conf,
                "judge_preference": preference,
                "candidate_reflection": certainty,
                "candidate_shown_as": "A" if cand_a else "B",
                "old": row["response"],
                "new": cand,
            }
        )
    return out
