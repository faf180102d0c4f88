"""The `score` section: how each row is scored (recipe, samples, components, weights, folds, defect checks)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from clearcurate.config.common import RECIPES, require
from clearcurate.core.budget import token_budget
from clearcurate.core.defects import CHECKS, DEFAULT_CHECKS


@dataclass(frozen=True)
class ScoreConfig:
    """The `score` block of params.yaml."""

    recipe: str = "crossfit"
    k: int = 5
    temperature: float = 1.0
    max_new_tokens: int = 32
    max_new_tokens_cap: int = 256
    alpha: float = 0.8
    beta: float = 0.7
    similarity: str = "token_f1"
    fewshot: int = 3
    folds: int = 2
    fold_by: str = "id"
    likelihood_scale: float = 5.0
    likelihood_per: str = "response"
    relevance_scale: float = 5.0
    length_scale: float = 1.0
    fold_epochs: float = 1.0
    weights: dict[str, float] | str = "auto"
    group_by: str | None = None
    defects: tuple[str, ...] = DEFAULT_CHECKS
    seed: int = 0

    def __post_init__(self) -> None:
        if unknown := [d for d in self.defects if d not in CHECKS]:
            close = {u: difflib.get_close_matches(u, CHECKS, n=1) for u in unknown}
            raise ValueError("score.defects names unknown checks: " + ", ".join(
                f"{u!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for u, c in close.items()) + f"; the checks are {list(CHECKS)}")
        if len(set(self.defects)) < len(self.defects):
            raise ValueError(f"score.defects names a check twice: {list(self.defects)}")
        if self.recipe not in RECIPES:
            raise ValueError(f"score.recipe must be one of {RECIPES}, got {self.recipe!r}")
        require("score", self, {
            "k": (self.k >= 0, ">= 0"),
            "folds": (self.folds >= 2, ">= 2"),
            "alpha": (0.0 <= self.alpha <= 1.0, "in [0, 1]"),
            "beta": (0.0 <= self.beta <= 1.0, "in [0, 1]"),
            "temperature": (self.temperature > 0, "> 0"),
        })
        token_budget(0, self.max_new_tokens, self.max_new_tokens_cap)  # checks floor and cap
        if isinstance(self.weights, str) and self.weights != "auto":
            raise ValueError(f"score.weights must be auto, a mapping of component weights or empty, got {self.weights!r}")
        if self.likelihood_per not in ("response", "token"):
            raise ValueError(f"score.likelihood_per must be response or token, got {self.likelihood_per!r}")
        if not isinstance(self.fold_by, str) or not self.fold_by.strip():
            raise ValueError(f"score.fold_by must be id, prompt or another row field, got {self.fold_by!r}")
        if self.group_by is not None and (not isinstance(self.group_by, str) or not self.group_by.strip()):
            raise ValueError(f"score.group_by must be a field name or null, got {self.group_by!r}")
        for name in ("likelihood", "relevance", "length"):
            if self.recipe == "paper" and isinstance(self.weights, dict) and self.weights.get(name):
                raise ValueError(f"score.weights.{name} needs score.recipe: crossfit (the paper recipe has no {name})")
