"""`OpenAIChatLM`: the primitives of `LocalLM` against an OpenAI-compatible chat completions endpoint, and the
strict reading of an answer letter (from top_logprobs, else the text, else unparsed)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from clearcurate.config import OpenAIConfig
from clearcurate.llm.base import Generation, Sampled
from clearcurate.llm.hf import per_prompt
from clearcurate.llm.openai_api.finetune import fine_tune, read_model_ref, write_model_ref
from clearcurate.llm.openai_api.retry import retrying
from clearcurate.llm.openai_api.usage import CHARS_PER_TOKEN, BudgetExceeded, Usage

log = logging.getLogger(__name__)


ROLE_MARK, BODY_MARK = "\x1e", "\x1f"  # ASCII record / unit separators: never meaningful in data


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
        top_p: float = 1.0,
    ) -> list[Sampled]:
        """k = `n` answers per prompt: one request with n=k, or k requests (different seeds); `top_p` is the API's.

        `max_new_tokens` is one budget for all prompts or one per prompt (see clearcurate.core.budget).
        """
        if given is not None:
            raise ValueError(
                "log p(given response) is not available through a chat API: use score.recipe: paper with model.backend: openai"
            )
        want_lp = self.cfg.top_logprobs > 0
        budgets = per_prompt(max_new_tokens, len(prompts))
        extra = {"temperature": temperature, "logprobs": want_lp, **({"top_p": top_p} if top_p < 1.0 else {})}
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


def api_metrics(lm: Any) -> dict[str, Any]:
    """{"api": usage and cost} for a stage's metrics when `lm` is an API client, else {}."""
    return {"api": lm.usage.summary(lm.cfg)} if isinstance(lm, OpenAIChatLM) else {}
