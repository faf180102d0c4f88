"""The `model`, `scorer` and `evaluate` sections: which model, which scorer, and the answer budgets of evaluate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clearcurate.config.common import Section


class ModelParams(Section):
    """`model`: which model, on which backend."""

    backend: Literal["hf", "openai"] = "hf"
    name: str = "smollm2-135m"
    batch_size: int = Field(16, ge=1)
    seed: int = 0


class ScorerParams(Section):
    """`scorer`: the model that scores the data (`score`) and judges candidates (`correct.judge: pairwise`).

    By default the model being trained. A user who fine-tunes a small model can often afford a larger
    one to score with, which knows answers the small one gets wrong (docs/backends.md#a-scorer-apart-from-the-student).
    """

    name: str | None = None
    backend: Literal["hf", "openai"] | None = None
    seed: int = 0

    def separate(self) -> bool:
        """Whether scoring uses another model than the one being trained."""
        return self.name is not None or self.backend is not None


class EvaluateParams(Section):
    """`evaluate`: answer budgets and the (optional) noise labels."""

    max_new_tokens: int = Field(32, ge=1)
    max_new_tokens_cap: int = Field(256, ge=0)
    noise_labels: str | None = None
