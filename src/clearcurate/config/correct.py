"""The `correct` section: Auto-Correct's judge and threshold."""

from __future__ import annotations

from dataclasses import dataclass

from clearcurate.config.common import JUDGES, ORDERS, require
from clearcurate.core.budget import token_budget


@dataclass(frozen=True)
class CorrectConfig:
    """The `correct` block of params.yaml (plus score.beta for the pairwise judge)."""

    judge: str = "agreement"
    eta: float = 0.9
    k: int = 5
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32
    max_new_tokens_cap: int = 256
    order: str = "both"
    beta: float = 0.7  # not a key of `correct`: score.beta, injected by Params.correct_config()
    seed: int = 0

    def __post_init__(self) -> None:
        require("correct", self, {
            "judge": (self.judge in JUDGES, f"one of {JUDGES}"),
            "order": (self.order in ORDERS, f"one of {ORDERS}"),
            "eta": (0.0 <= self.eta <= 1.0, "in [0, 1]"),
            "temperature": (self.temperature > 0, "> 0"),
            "top_p": (0.0 < self.top_p <= 1.0, "in (0, 1]"),
            "k": (self.k >= 2 or self.judge != "agreement", ">= 2 for the agreement judge (agreement of one sample is meaningless)"),
            "max_new_tokens": (self.max_new_tokens >= 1, ">= 1"),
        })
        token_budget(0, self.max_new_tokens, self.max_new_tokens_cap)  # checks floor and cap
