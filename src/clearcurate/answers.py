"""Each model's answers on the test set: its greedy answer and the reference's held-out loss, per row.

Model I/O only (the metrics are clearcurate.core.evaluation). Both engines run this one function: the
local engine on every test row at once, the Ray engine on blocks of rows (`RayEngine.map_blocks`).
A row's answers do not depend on the rows computed with it, beyond float rounding (its batch sets
its left padding).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from clearcurate.cache import ScoreCache, digest, source_fingerprint
from clearcurate.core.budget import token_budgets
from clearcurate.core.evaluation import heldout_nll
from clearcurate.core.records import Record, progress
from clearcurate.llm.base import ChatLM, Engine, RowsFailed

BASE = "base"  # the base model: every adapter switched off


def identities(lm: ChatLM, engine: Engine | None, adapters: Mapping[str, str | Path]) -> dict[str, str]:
    """Each adapter's identity (so an adapter equal to another is run once): here, loaded onto `lm`;
    on an engine, whose workers load them, read from their files."""
    if engine is not None:
        from clearcurate.llm.hf import adapter_identity

        return {name: adapter_identity(path) for name, path in adapters.items()}
    return lm.load_adapters(adapters)


def test_rows(lm: ChatLM, test: Sequence[Record], max_new_tokens: int, cap: int) -> list[Record]:
    """The test rows as `model_answers` takes them, with an answer budget of at least `max_new_tokens` and
    enough to match each row's longest reference (at most `cap`): a truncated free-form answer would score
    its length, not its content."""
    references = [r.get("answers") or [r["response"]] for r in test]
    longest = [max(lm.token_counts(refs)) for refs in references]
    return [{"id": r["id"], "prompt": lm.chat(r["prompt"]), "reference": r["response"], "max_new_tokens": n}
            for r, n in zip(test, token_budgets(longest, max_new_tokens, cap))]


def answer_all(lm: ChatLM, engine: Engine | None, rows: Sequence[Record], models: Sequence[str], with_loss: bool,
               adapters: Mapping[str, str | Path]) -> list[Record]:
    """`model_answers` of every row: here on `lm`, or on the engine in blocks of rows. A row that fails on
    the engine stops the stage after every other row is done, naming each with its reason: metrics over
    the other rows would mislead."""
    work = partial(model_answers, models=models, with_loss=with_loss)
    if engine is None:
        return work(lm, rows)
    answers, failures = [], {}
    needed = {name: adapters[name] for name in models if name != BASE}
    for row, out in zip(rows, progress(engine.map_blocks(rows, work, needed), "evaluate", len(rows)), strict=True):
        answers.append(out.get("result"))
        if "error" in out:
            failures[row["id"]] = out["error"]
    if failures:
        raise RowsFailed(failures)
    return answers


# What a model's answers depend on besides the model and the rows: the code that produces them. Other code never matches.
ANSWER_MODULES = ("clearcurate.answers", "clearcurate.core.budget", "clearcurate.llm.base", "clearcurate.llm.hf",
                  "clearcurate.llm.openai_api.client")


@functools.cache
def _answers_code() -> str:
    return source_fingerprint(ANSWER_MODULES)[:16]


def answers_key(model_id: str, identity: str, rows: Sequence[Record], with_loss: bool) -> str:
    """The cache key of one model's answers on a test set: the base model, the model's identity (BASE or an adapter's
    weights, `identities`), every row's prompt, reference and budget, and the answering code."""
    return digest(_answers_code(), model_id, identity, with_loss, [(r["prompt"], r["reference"], r["max_new_tokens"]) for r in rows])


def cached_answers(lm: ChatLM, engine: Engine | None, rows: Sequence[Record], models: Mapping[str, str], with_loss: bool,
                   adapters: Mapping[str, str | Path], cache: ScoreCache, model_id: str) -> tuple[list[Record], list[str]]:
    """`answer_all` for the models (name -> identity) whose answers on these rows are not cached, and the cached
    answers of the others; returns the answers and the names that were reused. A filter experiment changes the
    filtered model only: the base model's and the baseline's answers are the same, and answering them again cost
    two of `evaluate`'s four model passes."""
    keys = {name: answers_key(model_id, identity, rows, with_loss) for name, identity in models.items()}
    stored = {name: cache.get("answers", key) for name, key in keys.items()}
    todo = [name for name in models if stored[name] is None]
    out = answer_all(lm, engine, rows, todo, with_loss, adapters) if todo else [{} for _ in rows]
    for name in todo:
        cache.put("answers", keys[name], {"answers": [a[name] for a in out]})
    for name, found in stored.items():
        if found is not None:
            for answers, answer in zip(out, found["answers"], strict=True):
                answers[name] = answer
    return out, [name for name in models if stored[name] is not None]


def model_answers(lm: ChatLM, rows: Sequence[Record], models: Sequence[str], with_loss: bool) -> list[Record]:
    """Per row, `{model: {"text": greedy answer, "nll": the reference's NLL per token, or None}}`.

    `rows`: `prompt` (chat-rendered), `reference` (the response) and `max_new_tokens`; `models`: `base` or the
    names of adapters loaded with `load_adapters`; `with_loss`: the model gives log-probabilities (local models).
    """
    prompts = [r["prompt"] for r in rows]
    budgets = [r["max_new_tokens"] for r in rows]
    out: list[Record] = [{} for _ in rows]
    for name in models:
        with _running(lm, name):
            if with_loss:  # one prefill per row: the reference is scored on the prompt's KV cache, then the answer decoded
                sampled = lm.sample(prompts, 1, 0.0, budgets, desc=f"eval {name}", given=[r["reference"] for r in rows])
                texts = [s.generations[0].text for s in sampled]
                nlls: list[float | None] = list(heldout_nll([(s.given_logprob, s.given_tokens) for s in sampled]))
            else:
                texts, nlls = lm.greedy(prompts, budgets, desc=f"eval {name}"), [None] * len(rows)
        for answers, text, nll in zip(out, texts, nlls):
            answers[name] = {"text": text, "nll": nll}
    return out


@contextmanager
def _running(lm: ChatLM, name: str) -> Iterator[None]:
    """The enclosed calls on model `name`: the base model, or a loaded adapter."""
    if name == BASE:
        with lm.base_model():
            yield
    else:
        lm.use_adapter(name)
        yield
