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
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tqdm.auto import tqdm

from clearcurate.core.records import atomic_dir, write_json
from clearcurate.llm.base import Generation, Sampled
from clearcurate.llm.hf import per_prompt
from clearcurate.params import OpenAIConfig

CHARS_PER_TOKEN = 4  # a common rule of thumb for English BPE tokenizers

log = logging.getLogger(__name__)

ROLE_MARK, BODY_MARK = "\x1e", "\x1f"  # ASCII record / unit separators: never meaningful in data


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


def api_metrics(lm: Any) -> dict[str, Any]:
    """{"api": usage and cost} for a stage's metrics when `lm` is an API client, else {}."""
    return {"api": lm.usage.summary(lm.cfg)} if isinstance(lm, OpenAIChatLM) else {}


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


def parse_letter(text: str, choices: Sequence[str]) -> str | None:
    """The chosen letter of a free-text answer, strictly: `A`, `(A)`, `answer: (A)`, `answer: A.`.

    Anything else (two letters, a sentence starting with "A ...") is None: a wrong parse is worse
    than a missing one.
    """
    alternatives = "|".join(re.escape(c) for c in choices)
    pattern = rf"^\s*(?:answer\s*:\s*)?\(?\s*({alternatives})\s*\)?\s*[.!]?\s*$"
    match = re.match(pattern, text.strip().splitlines()[0] if text.strip() else "", flags=re.IGNORECASE)
    if not match:
        found = re.findall(rf"answer\s*:\s*\(?\s*({alternatives})\b", text, flags=re.IGNORECASE)
        return found[-1].upper() if len(set(f.upper() for f in found)) == 1 else None
    return match.group(1).upper()


def letter_probs(logprobs: Any, letter: str, choices: Sequence[str]) -> np.ndarray | None:
    """P(choice) from the top_logprobs where the answer's (strictly parsed) `letter` was generated.

    Renormalised over the choices; None when no token of the reply is that letter.
    """
    content = getattr(logprobs, "content", None) or []
    for position in content:
        if position.token.strip().strip("()").strip().upper() != letter.upper():
            continue
        mass = dict.fromkeys(choices, 0.0)
        for alt in position.top_logprobs or []:
            name = alt.token.strip().strip("()").strip().upper()
            for c in choices:
                if name == c.upper():
                    mass[c] += float(np.exp(alt.logprob))
        total = sum(mass.values())
        if total <= 0:
            return None
        return np.array([mass[c] / total for c in choices])
    return None


class OpenAIChatLM:
    """Chat-completions client with the `LocalLM` interface that scoring, correction and evaluation use."""

    def __init__(
        self, cfg: OpenAIConfig, model: str | None = None, base: str | None = None, batch_size: int = 8, show_progress: bool = True
    ) -> None:
        self.cfg = cfg
        self.base = base or model or cfg.model
        self.model_name = model or self.base
        self.batch_size = max(batch_size, cfg.max_concurrency)  # a scoring chunk fills the pipe
        self.show_progress = show_progress
        self.usage = Usage()
        self._tuned: dict[str, str] = {}

    # ---- fine-tuned models: jobs on the server, recorded by id ----------------------------------
    supports_logprobs = False  # a chat API gives no log-probability of a given text

    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "logprob") -> list[tuple[float, int]]:
        raise NotImplementedError("a chat API does not return the log-probability of a given text "
                                  "(held-out loss, correct.judge: agreement, score.recipe: crossfit need model.backend: hf)")

    def fine_tune(self, rows: Sequence[dict[str, Any]], cfg: Any, out_dir: str | Path, name: str) -> None:
        """A fine-tuning job on the server from the base model; `out_dir` records the new model's id."""
        from clearcurate.llm.lora import data_fingerprint

        job = fine_tune(self.cfg, rows, base_model=self.base, suffix=name)
        write_model_ref(out_dir, job.pop("model"), train_log={"config": asdict(cfg), "data_sha256": data_fingerprint(rows), **job}, **job)

    def load_adapters(self, adapters: Mapping[str, str | Path]) -> dict[str, str]:
        """The fine-tuned model ids recorded in each directory; the id is the model's identity."""
        self._tuned = {name: read_model_ref(path) for name, path in adapters.items()}
        return dict(self._tuned)

    def use_adapter(self, name: str) -> None:
        self.model_name = self._tuned[name]

    # ---- conversations as opaque strings ------------------------------------------------------
    @staticmethod
    def _clean(text: str) -> str:
        return text.replace(ROLE_MARK, " ").replace(BODY_MARK, " ")

    def chat(self, user: str, assistant_prefix: str = "", history: Sequence[tuple[str, str]] = ()) -> str:
        """A conversation ending in an (open) assistant turn; extends earlier renderings by appending."""
        parts = []
        for question, answer in history:
            parts += [f"{ROLE_MARK}user{BODY_MARK}{self._clean(question)}", f"{ROLE_MARK}assistant{BODY_MARK}{self._clean(answer)}"]
        parts += [f"{ROLE_MARK}user{BODY_MARK}{self._clean(user)}", f"{ROLE_MARK}assistant{BODY_MARK}{self._clean(assistant_prefix)}"]
        return "".join(parts)

    @staticmethod
    def messages(prompt: str) -> list[dict[str, str]]:
        """Parse a rendering back into chat messages; the open assistant turn (a prefix) is dropped,
        since chat APIs cannot continue one: the questions themselves ask for the answer format."""
        out = []
        for part in prompt.split(ROLE_MARK)[1:]:
            role, _, content = part.partition(BODY_MARK)
            if role not in ("user", "assistant", "system"):
                raise ValueError(f"not a rendered conversation (role {role!r})")
            out.append({"role": role, "content": content})
        if not out or out[-1]["role"] != "assistant":
            raise ValueError("a rendered conversation ends in an open assistant turn")
        return out[:-1]

    @contextmanager
    def base_model(self) -> Iterator[None]:
        """Run the enclosed calls on the base model (e.g. the judge), whatever model is selected."""
        previous, self.model_name = self.model_name, self.base
        try:
            yield
        finally:
            self.model_name = previous

    # ---- requests -------------------------------------------------------------------------------
    def _check_budget(self) -> None:
        u, cfg = self.usage, self.cfg
        if cfg.max_requests and u.requests >= cfg.max_requests:
            raise BudgetExceeded(f"request budget spent ({u.requests} of openai.max_requests {cfg.max_requests})")
        if cfg.max_tokens and u.prompt_tokens + u.completion_tokens >= cfg.max_tokens:
            raise BudgetExceeded(
                f"token budget spent ({u.prompt_tokens + u.completion_tokens} of openai.max_tokens {cfg.max_tokens})"
            )

    async def _one(self, client: Any, request: dict[str, Any], gate: asyncio.Semaphore) -> Any:
        async with gate:
            return await retrying(self.cfg, self._count_retry, asynchronous=True)(self._attempt, client, request)

    def _count_retry(self) -> None:
        self.usage.retries += 1

    async def _attempt(self, client: Any, request: dict[str, Any]) -> Any:
        """One request: the budget is checked and every error counted before `retrying` decides."""
        self._check_budget()
        self.usage.requests += 1
        try:
            reply = await client.chat.completions.create(**request)
            if not getattr(reply, "choices", None):
                raise json.JSONDecodeError("reply has no choices", str(reply)[:200], 0)
        except Exception as err:
            name = type(err).__name__
            self.usage.errors[name] = self.usage.errors.get(name, 0) + 1
            raise
        usage = getattr(reply, "usage", None)
        if usage is not None:
            self.usage.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.usage.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        return reply

    def _run(self, requests: list[dict[str, Any]], desc: str) -> list[Any]:
        """All requests concurrently (bounded), in order; the first hard error or budget stop propagates."""
        from openai import AsyncOpenAI

        async def main() -> list[Any]:
            client = AsyncOpenAI(
                base_url=self.cfg.base_url, api_key=self.cfg.api_key(), max_retries=0, timeout=self.cfg.timeout_s
            )
            gate = asyncio.Semaphore(self.cfg.max_concurrency)
            bar = tqdm(total=len(requests), desc=desc, disable=not self.show_progress, unit="req", leave=False)

            async def tracked(req: dict[str, Any]) -> Any:
                reply = await self._one(client, req, gate)
                bar.update(1)
                return reply

            tasks = [asyncio.ensure_future(tracked(r)) for r in requests]
            try:
                return await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            finally:
                bar.close()
                await client.close()

        return asyncio.run(main())

    def _request(self, prompt: str, **extra: Any) -> dict[str, Any]:
        return {"model": self.model_name, "messages": self.messages(prompt), **extra}

    # ---- the LocalLM primitives -------------------------------------------------------------
    def sample(
        self,
        prompts: Sequence[str],
        n: int = 1,
        temperature: float = 1.0,
        max_new_tokens: int | Sequence[int] = 32,
        seed: int = 0,
        desc: str = "generate",
        given: Sequence[str] | None = None,
    ) -> list[Sampled]:
        """k = `n` answers per prompt: one request with n=k, or k requests (different seeds).

        `max_new_tokens` is one budget for all prompts or one per prompt (see clearcurate.core.budget).
        """
        if given is not None:
            raise ValueError(
                "log p(given response) is not available through a chat API: use score.recipe: paper with model.backend: openai"
            )
        want_lp = self.cfg.top_logprobs > 0
        budgets = per_prompt(max_new_tokens, len(prompts))
        extra = {"temperature": temperature, "logprobs": want_lp}
        if self.cfg.n_per_request or n == 1:
            requests = [self._request(p, n=n, seed=seed, max_tokens=b, **extra) for p, b in zip(prompts, budgets)]
        else:
            requests = [self._request(p, n=1, seed=seed + j, max_tokens=b, **extra) for p, b in zip(prompts, budgets) for j in range(n)]
        choices = [c for reply in self._run(requests, desc) for c in reply.choices]  # n per prompt, in order
        out = []
        for i in range(len(prompts)):
            picked = choices[i * n : (i + 1) * n]
            gens = []
            for choice in picked:
                tokens = getattr(getattr(choice, "logprobs", None), "content", None) or []
                logprob = float(sum(t.logprob for t in tokens)) if tokens else float("nan")
                gens.append(Generation((choice.message.content or "").strip(), logprob, len(tokens)))
            if len(gens) != n:
                raise RuntimeError(f"the server returned {len(gens)} answers for n={n}: set openai.n_per_request: false")
            out.append(Sampled(gens))
        return out

    def greedy(self, prompts: Sequence[str], max_new_tokens: int | Sequence[int] = 32, desc: str = "generate") -> list[str]:
        return [s.generations[0].text for s in self.sample(prompts, 1, 0.0, max_new_tokens, desc=desc)]

    @staticmethod
    def token_counts(texts: Sequence[str]) -> list[int]:
        """Approximate tokens of each text (4 characters per token: the server's tokenizer is not at hand)."""
        return [math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts]

    def _choices(self, prompts: Sequence[str], choices: Sequence[str], desc: str) -> list[np.ndarray]:
        """One request per question; an unparsed answer is a row of NaN (counted in usage.unparsed)."""
        extra: dict[str, Any] = {"temperature": 0.0, "max_tokens": 8}
        if self.cfg.top_logprobs > 0:
            extra.update(logprobs=True, top_logprobs=self.cfg.top_logprobs)
        replies = self._run([self._request(p, **extra) for p in prompts], desc)
        out = []
        for reply in replies:
            choice = reply.choices[0]
            letter = parse_letter(choice.message.content or "", choices)  # the answer must parse strictly
            probs = None if letter is None else letter_probs(getattr(choice, "logprobs", None), letter, choices)
            if probs is None and letter is not None:  # no logprobs from the server: the parsed letter alone
                probs = np.array([float(c == letter) for c in choices])
            if probs is None:
                self.usage.unparsed += 1
                probs = np.full(len(choices), np.nan)
            out.append(probs)
        return out

    def choice_probs(
        self,
        prompts: Sequence[str],
        choices: Sequence[str],
        desc: str = "choose",
        followup: Callable[[int, str], str] | None = None,
    ) -> list[np.ndarray]:
        """P(each choice) per question; with `followup`, a second question in the same conversation."""
        first = np.array(self._choices(prompts, choices, desc)).reshape(len(prompts), len(choices))
        if followup is None:
            return [first]
        second = np.full_like(first, np.nan)
        asked = [i for i in range(len(prompts)) if np.all(np.isfinite(first[i]))]
        seconds = [prompts[i] + followup(i, choices[int(np.argmax(first[i]))]) for i in asked]
        for i, probs in zip(asked, self._choices(seconds, choices, f"{desc} (follow-up)")):
            second[i] = probs
        self.usage.unparsed += len(prompts) - len(asked)  # never asked: the first answer was unparsed
        return [first, second]


# ---- fine-tuning jobs -------------------------------------------------------------------------

MODEL_FILE = "openai_model.json"  # what a model directory holds with backend openai: the model id


def write_model_ref(out_dir: str | Path, model: str, train_log: dict[str, Any] | None = None, **extra: Any) -> None:
    """A model 'artifact' for the openai backend: the id later stages call, atomically written.

    `train_log` (config and data fingerprint) lets `training.reuse_adapter` reuse a fine-tuned
    model id exactly as it reuses a local adapter.
    """
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / MODEL_FILE, {"model": model, **extra})
        if train_log is not None:
            write_json(tmp / "train_log.json", train_log)


def read_model_ref(model_dir: str | Path) -> str:
    path = Path(model_dir) / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: this model directory was not made with model.backend: openai")
    return str(json.loads(path.read_text(encoding="utf-8"))["model"])


def chat_training_file(rows: Sequence[dict[str, Any]]) -> bytes:
    """Rows in the OpenAI chat fine-tuning format: one {"messages": [user, assistant]} per line."""
    lines = [
        json.dumps({"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}]},
                   ensure_ascii=False)
        for r in rows
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def fine_tune(cfg: OpenAIConfig, rows: Sequence[dict[str, Any]], base_model: str, suffix: str) -> dict[str, Any]:
    """Upload the rows, create a fine-tuning job, poll it to the end; returns the job's final record.

    A failed or cancelled job raises with the server's own message.
    """
    from openai import OpenAI

    if not rows:
        raise ValueError(f"{suffix}: no training rows")
    with OpenAI(base_url=cfg.base_url, api_key=cfg.api_key(), timeout=cfg.timeout_s, max_retries=0) as client:
        return _run_job(client, cfg, rows, base_model, suffix)


def _run_job(client: Any, cfg: OpenAIConfig, rows: Sequence[dict[str, Any]], base_model: str, suffix: str) -> dict[str, Any]:
    call, start = retrying(cfg), time.perf_counter()  # each API call retried as chat requests are
    upload = call(client.files.create, file=(f"{suffix}.jsonl", chat_training_file(rows)), purpose="fine-tune")
    hyper = {"n_epochs": cfg.n_epochs} if cfg.n_epochs else {}
    job = call(
        client.fine_tuning.jobs.create,
        model=base_model, training_file=upload.id, suffix=suffix[:18], **({"hyperparameters": hyper} if hyper else {}),
    )
    log.info("%s: fine-tuning job %s on %s (%d rows, file %s)", suffix, job.id, base_model, len(rows), upload.id)
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(cfg.poll_s)
        job = call(client.fine_tuning.jobs.retrieve, job.id)
        log.info("%s: job %s %s (%.0f s)", suffix, job.id, job.status, time.perf_counter() - start)
    if job.status != "succeeded":
        error = getattr(job, "error", None)
        message = getattr(error, "message", None) or "no message from the server"
        raise RuntimeError(f"{suffix}: fine-tuning job {job.id} {job.status}: {message}")
    return {"model": job.fine_tuned_model, "job": job.id, "training_file": upload.id, "base_model": base_model,
            "rows": len(rows), "seconds": round(time.perf_counter() - start, 1)}
