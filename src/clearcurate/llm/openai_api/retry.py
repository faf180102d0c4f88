"""One retry policy for every API call (chat and fine-tuning): exponential backoff with jitter on 429 / 5xx /
timeouts / malformed replies, honouring Retry-After; the SDK's own retries stay off so the two never multiply."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from clearcurate.config import OpenAIConfig

log = logging.getLogger(__name__)

RETRYABLE = ("RateLimitError", "InternalServerError", "APITimeoutError", "APIConnectionError", "APIResponseValidationError")


def _retry_after(err: Exception) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if it said."""
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return None


def _is_retryable(err: Exception) -> bool:
    if isinstance(err, json.JSONDecodeError):  # a malformed reply body
        return True
    status = getattr(err, "status_code", None)
    return type(err).__name__ in RETRYABLE or (isinstance(status, int) and (status in (408, 409, 429) or status >= 500))


def retrying(cfg: OpenAIConfig, on_retry: Callable[[], None] | None = None, asynchronous: bool = False) -> Retrying | AsyncRetrying:
    """The module's one retry policy; every client is made with the SDK's own retries off (max_retries=0).

    Up to `cfg.max_retries` retries of a retryable error (`_is_retryable`), each after the server's
    Retry-After when it sent one, else `backoff_s` doubling per retry with jitter; never longer than
    `backoff_max_s`. The last error is re-raised as it is. Call the result with the function and its
    arguments; `on_retry` runs before each wait.
    """

    def wait(state: RetryCallState) -> float:
        seconds = _retry_after(state.outcome.exception()) if state.outcome else None
        if seconds is None:  # exponential backoff with jitter
            seconds = min(cfg.backoff_max_s, cfg.backoff_s * 2 ** (state.attempt_number - 1)) * random.uniform(0.5, 1.0)
        return min(seconds, cfg.backoff_max_s)

    def before_sleep(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        log.debug("retrying after %s in %.2f s", type(err).__name__, state.next_action.sleep if state.next_action else 0.0)
        if on_retry is not None:
            on_retry()

    policy = AsyncRetrying if asynchronous else Retrying
    return policy(
        retry=retry_if_exception(_is_retryable), stop=stop_after_attempt(cfg.max_retries + 1), wait=wait,
        before_sleep=before_sleep, reraise=True,
    )
