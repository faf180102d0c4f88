"""Curation decisions (Auto-Filter, Auto-Correct) as pure functions of scores and thresholds.

Every input row ends in exactly one outcome with a reason, so nothing is silently lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

KEPT, CORRECTED, REMOVED = "kept", "corrected", "removed"


@dataclass(frozen=True)
class FilterConfig:
    """`filter` in params.yaml: keep confidence >= gamma, or >= the given quantile of all scores."""

    gamma: float = 0.5
    quantile: float | None = None

    def __post_init__(self) -> None:
        if self.quantile is not None and not 0.0 <= self.quantile <= 1.0:
            raise ValueError(f"filter.quantile must be in [0, 1] or null, got {self.quantile}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"filter.gamma must be in [0, 1], got {self.gamma}")


def threshold(confidences: Sequence[float], cfg: FilterConfig) -> float:
    """The effective gamma: fixed, or a quantile of this dataset's confidences (the paper uses the median)."""
    if cfg.quantile is None:
        return cfg.gamma
    if not confidences:
        raise ValueError("cannot take a quantile of no scores")
    return float(np.quantile(np.asarray(confidences, dtype=float), cfg.quantile))


def split_by_threshold(confidences: Mapping[str, float], gamma: float) -> tuple[list[str], list[str]]:
    """Ids kept (confidence >= gamma) and removed (below), in input order."""
    kept = [i for i, c in confidences.items() if c >= gamma]
    removed = [i for i, c in confidences.items() if c < gamma]
    return kept, removed


def should_replace(candidate_confidence: float, eta: float, candidate: str, original: str) -> bool:
    """Auto-Correct: replace only when confident (> eta) that the candidate is better and it differs."""
    return candidate_confidence > eta and candidate.strip() != "" and candidate.strip() != original.strip()


def correction_reason(candidate_confidence: float, eta: float, candidate: str, original: str) -> str:
    """Why a low-confidence row was or was not corrected (written next to every outcome)."""
    if not candidate.strip():
        return "candidate empty"
    if candidate.strip() == original.strip():
        return "candidate equals original"
    if candidate_confidence > eta:
        return f"candidate preferred with confidence {candidate_confidence:.3f} > eta {eta}"
    return f"candidate confidence {candidate_confidence:.3f} <= eta {eta}"
