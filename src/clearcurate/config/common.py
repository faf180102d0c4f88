"""What every section of params.yaml shares: the allowed names, the rule check that names the key, the pydantic base."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

RECIPES = ("paper", "crossfit")


AUTO = "auto"


JUDGES = ("agreement", "pairwise")


ORDERS = ("both", "random", "candidate_a", "candidate_b")


FORMATS = ("auto", "jsonl", "alpaca", "chat", "csv", "parquet")


def require(section: str, config: Any, rules: dict[str, tuple[bool, str]]) -> None:
    """Raise for the first setting that breaks its rule, naming it as params.yaml does: `score.k must be >= 0, got -1`."""
    for key, (ok, need) in rules.items():
        if not ok:
            raise ValueError(f"{section}.{key} must be {need}, got {getattr(config, key)!r}")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
