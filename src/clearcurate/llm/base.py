"""What CLEAR asks of a model, whichever backend serves it (local transformers or an OpenAI-compatible API).

Scoring, correction and the stages are written against this protocol; `clearcurate.llm.factory`
builds the implementation `model.backend` names. A backend that cannot do something raises
a clear error naming the setting to change (`supports_logprobs` tells in advance).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from clearcurate.llm.hf import Sampled


@runtime_checkable
class ChatLM(Protocol):
    """A chat model with the primitives CLEAR needs, batched by the implementation."""

    batch_size: int
    supports_logprobs: bool  # continuation_logprobs works: held-out loss and the agreement judge need it

    def chat(self, user: str, assistant_prefix: str = "", history: Sequence[tuple[str, str]] = ()) -> str:
        """One user turn (after `history`) rendered as the model sees it, ending in an open assistant turn."""
        ...

    def sample(self, prompts: Sequence[str], n: int = 1, temperature: float = 1.0, max_new_tokens: int | Sequence[int] = 32,
               seed: int = 0, desc: str = "generate", given: Sequence[str] | None = None) -> list[Sampled]:
        """`n` continuations per rendered prompt, with log-probabilities (and that of `given` responses)."""
        ...

    def greedy(self, prompts: Sequence[str], max_new_tokens: int | Sequence[int] = 32, desc: str = "generate") -> list[str]:
        """The most likely continuation of each prompt."""
        ...

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text (for generation budgets)."""
        ...

    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "logprob") -> list[tuple[float, int]]:
        """(log p(continuation | prompt), tokens) per pair."""
        ...

    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str], desc: str = "choose",
                     followup: Callable[[int, str], str] | None = None) -> list[np.ndarray]:
        """P(each answer letter) per prompt (and per follow-up question)."""
        ...

    def base_model(self) -> AbstractContextManager[None]:
        """Run the enclosed calls on the base model, whatever adapter is in use (the judge)."""
        ...

    def fine_tune(self, rows: Sequence[dict[str, Any]], cfg: Any, out_dir: str | Path, name: str) -> None:
        """Fine-tune on `rows` (LoRA locally, a fine-tuning job on a server) and record the result in `out_dir`."""
        ...

    def load_adapters(self, adapters: Mapping[str, str | Path]) -> dict[str, str]:
        """Make fine-tuned models (from `fine_tune`'s `out_dir`s) available by name; returns each one's identity."""
        ...

    def use_adapter(self, name: str) -> None:
        """Run the next calls on the fine-tuned model loaded as `name`."""
        ...
