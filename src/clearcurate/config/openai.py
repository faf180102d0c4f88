"""The `openai` section: an OpenAI-compatible endpoint (the key comes from the environment, never from params)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from clearcurate.config.common import require


@dataclass(frozen=True)
class OpenAIConfig:
    """The `openai:` block of params.yaml. The API key is read from the environment variable
    named by `api_key_env` (never from params), so it cannot reach params, logs or artifacts."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini-2024-07-18"
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    max_retries: int = 6
    timeout_s: float = 60.0
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    n_per_request: bool = True
    top_logprobs: int = 10
    max_requests: int = 0
    max_tokens: int = 0
    price_input_per_mtok: float = 0.15
    price_output_per_mtok: float = 0.6
    context_tokens: int = 128000
    poll_s: float = 10.0
    n_epochs: int = 0


    def __post_init__(self) -> None:
        require("openai", self, {
            "max_concurrency": (self.max_concurrency >= 1, ">= 1"),
            "max_retries": (self.max_retries >= 0, ">= 0"),
            "timeout_s": (self.timeout_s > 0, "> 0"),
            "backoff_s": (self.backoff_s >= 0, ">= 0"),
            "backoff_max_s": (self.backoff_max_s >= self.backoff_s, ">= backoff_s"),
            "top_logprobs": (0 <= self.top_logprobs <= 20, "in [0, 20]"),
            "max_requests": (self.max_requests >= 0, ">= 0 (0: no limit)"),
            "max_tokens": (self.max_tokens >= 0, ">= 0 (0: no limit)"),
            "price_input_per_mtok": (self.price_input_per_mtok >= 0, ">= 0"),
            "price_output_per_mtok": (self.price_output_per_mtok >= 0, ">= 0"),
            "context_tokens": (self.context_tokens >= 1, ">= 1"),
            "poll_s": (self.poll_s > 0, "> 0"),
            "n_epochs": (self.n_epochs >= 0, ">= 0"),
        })

    def api_key(self) -> str:
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise RuntimeError(f"model.backend openai needs an API key in the environment variable {self.api_key_env}")
        return key


# How a run talks to the server, not what it computes: read from params.yaml by every stage but
# declared by none in dvc.yaml, so raising a budget or the concurrency never reruns a stage.
OPENAI_RUN_SETTINGS = (
    "api_key_env", "max_concurrency", "max_retries", "timeout_s", "backoff_s", "backoff_max_s",
    "max_requests", "max_tokens", "price_input_per_mtok", "price_output_per_mtok", "poll_s",
)
