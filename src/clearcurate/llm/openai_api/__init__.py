"""The same primitives as `LocalLM`, against any OpenAI-compatible chat completions endpoint.

Hosted models (OpenAI), and inference servers that speak the same API (vLLM, TGI, llama.cpp
server, Ollama), score, correct and evaluate through the official `openai` client:
- requests run concurrently (asyncio, at most `max_concurrency` in flight), with retries,
  exponential backoff and jitter on 429 / 5xx / timeouts / malformed replies, honouring
  `Retry-After`: one policy (`retrying`, tenacity) for chat and fine-tuning calls alike, with
  the SDK's own retries off so that the two never multiply;
- a per-run request and token budget stops the run cleanly (`BudgetExceeded`); rows finished
  before that are already in the scoring cache, so a rerun resumes and pays only for the rest;
- k samples come from one request (`n=k`) where the server supports it, else k requests;
- a multiple-choice answer is read from the `top_logprobs` of the answer letter when the
  server returns them, else parsed from the text by a strict parser; an answer that is neither
  is recorded as unparsed (None), never silently 0.5, and counted in `usage.unparsed`.

Prompts stay opaque strings, as with `LocalLM`: `chat()` renders a conversation with record
separators, and the same object parses it back into messages. Rendering extends a conversation
by appending, which the reflection follow-up relies on.

The package: `client` (OpenAIChatLM and answer letters), `retry` (the one retry policy), `usage` (spend and
budget) and `finetune` (fine-tuning jobs and model references).
"""

from __future__ import annotations

from clearcurate.llm.openai_api.client import OpenAIChatLM, api_metrics, letter_probs, parse_letter
from clearcurate.llm.openai_api.finetune import MODEL_FILE, chat_training_file, fine_tune, read_model_ref, write_model_ref
from clearcurate.llm.openai_api.retry import RETRYABLE, retrying
from clearcurate.llm.openai_api.usage import CHARS_PER_TOKEN, BudgetExceeded, Usage

__all__ = [
    "CHARS_PER_TOKEN", "MODEL_FILE", "RETRYABLE", "BudgetExceeded", "OpenAIChatLM", "Usage", "api_metrics", "chat_training_file",
    "fine_tune", "letter_probs", "parse_letter", "read_model_ref", "retrying", "write_model_ref",
]


