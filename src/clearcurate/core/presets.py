"""Confidence weightings chosen on development data, one per kind of answer (`score.weights: auto`).

Short answers and free-form text need different scores. Where answers are a few words (SQuAD
spans), a response far longer or less likely in total than the model's own answers is a real
sign of noise. Where answers are paragraphs or worked solutions, the same signals measure length:
long correct responses score low (issue 12: Spearman -0.59 between length and the short-answer
confidence on clean Dolly rows). `auto` picks the preset by the data's median response length.

`fluency` (the base model's per-token likelihood of the response after its prompt, Superfiltering's
perplexity signal) carries most of the free-form weight: evasive templates, cut-off text and
responses to another instruction read unnaturally whatever the model's own samples say. There the
components are weighed against the set's length trend (`Preset.length_adjusted`), which lets
relevance (the prompt's share of the response's likelihood) in without favouring short answers.

Every number here comes from `benchmarks/curation/dev.py` and `dev_freeform.py` (development rows
only; `dev_results.json`, `dev_freeform_results.json`); see docs/curation.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from clearcurate.core import confidence as cf

if TYPE_CHECKING:
    from clearcurate.config import ScoreConfig


@dataclass(frozen=True)
class Preset:
    """Weights over the components, and how the likelihood component is normalised."""

    weights: dict[str, float]
    likelihood_per: str  # response: totals (a longer response is less likely) | token: rates
    likelihood_scale: float  # nats per response or per token: spreads the component over [0, 1]
    # The weights apply to each component's standing among responses of its length
    # (confidence.length_adjusted), not to its raw value: where length is not a sign of noise.
    length_adjusted: bool = False


PRESETS = {
    # Issue 11's choice on SQuAD-N 20/40% and plausible spans and GSM8K-N: best worst-case AUROC
    # (0.733; 0.842 / 0.733 / 0.734 / 0.829).
    "short": Preset({"consistency": 0.6, "likelihood": 0.2, "relevance": 0.2}, "response", 5.0),
    # Best worst-case AUROC among the weightings with |Spearman(length, confidence)| <= 0.2 on clean
    # Dolly and GSM8K rows, length-adjusted. Issue 12 chose relevance .2 + fluency .8 on Dolly-N and
    # GSM8K-N (0.839 / 0.996). Issue 31 added a Dolly set where a third of the responses are short
    # answers (dev_lengths.py): there that preset gave 0.709, and the same rule over the three sets
    # picks relevance .4 + fluency .6 (0.829 / 1.000 / 0.833; BBM traces 0.672 -> 0.692), which needs
    # no samples (likelihood .1 tied it on the worst case, at k sampled answers a row).
    "free_form": Preset({"relevance": 0.4, "fluency": 0.6}, "token", 0.5, length_adjusted=True),
}
# Nats per token that spread the fluency component (the base model's per-token log-likelihood of
# the response after its prompt) over [0, 1]; chosen with the free_form weights among 0.5, 1, 2, 4.
FLUENCY_SCALE = 1.0
# A row with a defect (clearcurate.core.defects: a calculation that does not hold, a refusal, a placeholder...)
# has its confidence multiplied by this, whatever the preset, and the filter removes it whatever the
# threshold. Chosen for the arithmetic check, the first defect check, with
# benchmarks/curation/dev_verify.py: the check flags 0.5% of clean GSM8K solutions (many of them
# real slips in GSM8K) and none of the clean Dolly dev rows; among the gates compared (x share of
# calculations that hold, x its square, x 0.5 or x 0.1 when any fails) all tie on the worst-case
# dev AUROC (0.733, SQuAD-N 40%, which has no calculations), and x 0.1 has the best mean: GSM8K with
# one altered step 0.545 -> 0.939, GSM8K-N 0.949 -> 0.938 (one clean row flagged). Every other check
# is held to precision >= 0.9 on the rows it flags in clean dev data (dev_defects.py).
DEFECT_PENALTY = 0.1
# SQuAD answers have a median of 3-5 tokens, Dolly responses about 45, GSM8K solutions about 100.
SHORT_MAX_TOKENS = 16


def preset_for(median_response_tokens: float) -> str:
    """`short` when the median response has at most 16 tokens, else `free_form`."""
    return "short" if median_response_tokens <= SHORT_MAX_TOKENS else "free_form"


def choose(cfg: ScoreConfig, response_tokens: Sequence[int]) -> str:
    """Which weighting applies to rows with these response lengths: a preset name, `custom` (explicit
    `score.weights`) or `paper` (empty weights, or the paper recipe with `auto`)."""
    if cfg.weights != "auto":
        return "custom" if cfg.weights else "paper"
    return "paper" if cfg.recipe == "paper" else preset_for(statistics.median(response_tokens) if response_tokens else 0)


def applied(cfg: ScoreConfig, name: str) -> ScoreConfig:
    """`cfg` with the named preset's weights and likelihood normalisation (`custom`, `paper`: as it is)."""
    if name == "paper" and cfg.weights == "auto":
        return replace(cfg, weights={})
    if name not in PRESETS:
        return cfg
    p = PRESETS[name]
    return replace(cfg, weights=dict(p.weights), likelihood_per=p.likelihood_per, likelihood_scale=p.likelihood_scale)


def component_weights(cfg: ScoreConfig) -> dict[str, float]:
    """Explicit `weights` if given, else the paper's beta * O + (1 - beta) * S (`auto`: resolve with `applied` first);
    without samples (k = 0), the sampled components drop out."""
    if cfg.weights == "auto":
        raise ValueError("score.weights: auto depends on the data: apply applied(cfg, choose(cfg, ...)) first")
    weights = dict(cfg.weights) if cfg.weights else cf.paper_weights(cfg.beta)
    if cfg.k == 0:  # no samples: consistency, likelihood and length are undefined
        weights = {n: w for n, w in weights.items() if n not in cf.SAMPLED_COMPONENTS}
    return weights
