"""What a run spends on an API: requests, tokens, retries, errors, unparsed answers and the estimated cost, and
the budget that stops a run cleanly (`BudgetExceeded`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from clearcurate.config import OpenAIConfig

CHARS_PER_TOKEN = 4  # a common rule of thumb for English BPE tokenizers


class BudgetExceeded(RuntimeError):
    """The run's request or token budget is spent; finished rows are cached, rerun to resume."""


@dataclass
class Usage:
    """What a run asked of the server, for the stage's metrics."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    unparsed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def cost_usd(self, cfg: OpenAIConfig) -> float:
        return (self.prompt_tokens * cfg.price_input_per_mtok + self.completion_tokens * cfg.price_output_per_mtok) / 1e6

    def summary(self, cfg: OpenAIConfig) -> dict[str, Any]:
        return {**asdict(self), "estimated_cost_usd": round(self.cost_usd(cfg), 6)}
