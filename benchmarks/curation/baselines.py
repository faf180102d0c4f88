"""Data-quality scores a user would try instead of CLEAR, for the curation benchmark.

- Direct rating (AlpaGasus, Chen et al. 2024): the model rates each pair 1-5; the score is the
  expected rating under its next-token probabilities of the digits.
- Perplexity and IFD (Superfiltering, Li et al. 2024): the model's mean loss on the response
  with the prompt, and the instruction-following difficulty IFD = PPL(response | prompt) /
  PPL(response alone). IFD near or above 1 means the prompt does not help predict the response,
  which is what a response written for another prompt looks like; so lower IFD ranks as cleaner.
All return higher = cleaner, the same orientation as BSDetector confidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clearcurate.core import prompts
from clearcurate.core.records import Record
from clearcurate.llm.hf import LocalLM


def direct_rating(lm: LocalLM, rows: Sequence[Record]) -> list[float]:
    """Expected 1-5 rating of each pair by the model itself."""
    questions = [lm.chat(prompts.rating_question(r["prompt"], r["response"]), prompts.RATING_PREFIX) for r in rows]
    (probs,) = lm.choice_probs(questions, prompts.RATING_CHOICES, desc="rate")
    scale = np.arange(1, len(prompts.RATING_CHOICES) + 1, dtype=float)
    return [float(p @ scale) for p in probs]


def perplexity_scores(lm: LocalLM, rows: Sequence[Record]) -> list[Record]:
    """Per row: mean response loss with and without the prompt, and IFD; plus clean-oriented scores."""
    responses = [r["response"] for r in rows]
    conditioned = lm.continuation_logprobs([lm.chat(r["prompt"]) for r in rows], responses, desc="ppl | prompt")
    alone = lm.continuation_logprobs([lm.chat("")] * len(rows), responses, desc="ppl alone")
    out = []
    for (lp_c, n), (lp_a, _) in zip(conditioned, alone):
        loss_c, loss_a = -lp_c / n, -lp_a / n
        ifd = float(np.exp(loss_c - loss_a))
        out.append({"loss": loss_c, "loss_alone": loss_a, "ifd": ifd, "neg_loss": -loss_c, "neg_ifd": -ifd})
    return out
