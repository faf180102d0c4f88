"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (the local server over the
tiny model), through the official `openai` client: no patching of our code or of the client."""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import replace

import numpy as np
import openai
import pytest

from clearcurate.config import OpenAIConfig
from clearcurate.llm.openai_api import BudgetExceeded, OpenAIChatLM, fine_tune
from helpers import local_openai_server

KEY = "sk-local-test-0123456789"


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    yield from local_openai_server(tiny_model_dir, "tiny", KEY, timeout_sleep_s=6.0)


@pytest.fixture()
def lm(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    state, url = server
    state.faults.clear()
    # a generous timeout: on a loaded 2-core machine a queued request can take seconds, and a spurious
    # timeout would add a retry; the injected one sleeps 6 s and the timeout test waits 3
    cfg = OpenAIConfig(base_url=url, model="tiny", max_concurrency=4, timeout_s=10.0, backoff_s=0.01, poll_s=0.1)
    return OpenAIChatLM(cfg, show_progress=False)


def _faults(url: str, **control) -> None:
    request = urllib.request.Request(url.replace("/v1", "/_control/faults"), data=json.dumps(control).encode(), method="POST")
    urllib.request.urlopen(request).read()


def test_conversations_render_and_parse_and_extend_by_appending(lm):
    first = lm.chat("Q1 \x1e with a planted separator", "answer: (")
    full = lm.chat("Q2", "answer: (", history=[("Q1 \x1e with a planted separator", "answer: (A)")])
    assert full.startswith(first)
    assert lm.messages(full) == [
        {"role": "user", "content": "Q1   with a planted separator"},
        {"role": "assistant", "content": "answer: (A)"},
        {"role": "user", "content": "Q2"},
    ]


def test_samples_use_n_in_one_request_and_count_tokens(lm, server):
    state, _ = server
    before = state.stats["chat_requests"]
    out = lm.sample([lm.chat("Name a colour."), lm.chat("Count to three.")], n=3, temperature=1.0, max_new_tokens=4)
    assert [len(s.generations) for s in out] == [3, 3]
    assert state.stats["chat_requests"] - before == 2 and state.stats["n_max"] >= 3
    assert all(np.isfinite(g.logprob) and g.n_tokens > 0 for s in out for g in s.generations)
    assert lm.usage.requests == 2 and lm.usage.prompt_tokens > 0 and lm.usage.completion_tokens > 0


def test_top_p_reaches_the_server(lm, server):
    """A tiny nucleus leaves one token to draw: every sample is the server's greedy answer."""
    prompt = lm.chat("Name a colour.")
    out = lm.sample([prompt], n=3, temperature=1.0, max_new_tokens=4, top_p=1e-6)
    assert {g.text for g in out[0].generations} == set(lm.greedy([prompt], 4))


def test_without_n_support_k_requests_are_made(lm, server):
    state, _ = server
    lm.cfg = replace(lm.cfg, n_per_request=False)
    before = state.stats["chat_requests"]
    out = lm.sample([lm.chat("Name a colour.")], n=3, max_new_tokens=4)
    assert len(out[0].generations) == 3 and state.stats["chat_requests"] - before == 3


def test_429_500_timeout_and_malformed_replies_are_retried(lm, server):
    _, url = server
    lm.cfg = replace(lm.cfg, timeout_s=3.0)
    _faults(url, faults=["429", "500", "timeout", "malformed"])
    texts = lm.greedy([lm.chat("What is 2+2?")], 4)
    assert len(texts) == 1
    assert lm.usage.retries == 4 and lm.usage.requests == 5
    assert set(lm.usage.errors) == {"RateLimitError", "InternalServerError", "APITimeoutError", "JSONDecodeError"}


def test_retries_stop_at_max_retries_with_the_servers_error_and_the_sdk_adds_none(lm, server):
    state, url = server
    lm.cfg = replace(lm.cfg, max_retries=2)
    _faults(url, faults=["500", "500", "500", "500"])
    before = state.stats["chat_requests"]
    with pytest.raises(openai.InternalServerError, match="server had an error"):
        lm.greedy([lm.chat("hi")], 2)
    # 1 + max_retries attempts reached the server: the SDK's own retries (off) did not multiply them
    assert state.stats["chat_requests"] - before == 3 and lm.usage.requests == 3 and lm.usage.retries == 2


def test_retry_after_is_honoured_and_capped_at_backoff_max(lm, server, caplog):
    _, url = server
    caplog.set_level(logging.DEBUG, logger="clearcurate.llm.openai_api")

    def waits(error: str) -> list[float]:  # the seconds waited before each retry after `error`
        return [r.args[1] for r in caplog.records if r.msg.startswith("retrying after") and r.args[0] == error]

    _faults(url, faults=["429", "500"])  # the 429 says retry-after-ms: 200; the 500 says nothing
    lm.greedy([lm.chat("hi")], 2)
    assert waits("RateLimitError") == [pytest.approx(0.2)]
    assert len(waits("InternalServerError")) == 1 and waits("InternalServerError")[0] < 0.1  # backoff_s 0.01, doubling
    caplog.clear()
    lm.cfg = replace(lm.cfg, backoff_max_s=0.05)
    _faults(url, faults=["429"])
    lm.greedy([lm.chat("hi")], 2)
    assert waits("RateLimitError") == [pytest.approx(0.05)]


def test_budget_stops_the_run(lm):
    lm.cfg = replace(lm.cfg, max_requests=3, max_concurrency=1)
    with pytest.raises(BudgetExceeded, match="request budget spent"):
        lm.greedy([lm.chat(f"q{i}") for i in range(5)], 2)
    assert lm.usage.requests == 3


def test_unreadable_choices_are_unparsed_not_half(lm):
    (probs,) = lm.choice_probs([lm.chat("Pick A or B.", "answer: (")], ["A", "B"])
    # the random tiny model never answers with a letter: recorded as unparsed, counted
    assert np.all(np.isnan(probs[0])) and lm.usage.unparsed == 1


def test_wrong_key_is_refused_and_the_key_is_not_in_the_error(lm, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-000")
    with pytest.raises(Exception) as err:
        lm.greedy([lm.chat("hi")], 2)
    assert "Incorrect API key" in str(err.value) and "sk-wrong-key-000" not in str(err.value)


def test_fine_tuning_job_gives_a_model_and_failures_carry_the_servers_message(lm, server):
    state, url = server
    rows = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(6)]
    job = fine_tune(lm.cfg, rows, "tiny", "test")
    assert job["model"].startswith("ft:tiny:test:") and job["model"] in state.models
    tuned = OpenAIChatLM(lm.cfg, model=job["model"], base="tiny", show_progress=False)
    assert len(tuned.greedy([tuned.chat("q1")], 3)) == 1
    with tuned.base_model():
        assert tuned.model_name == "tiny"
    # fine-tuning calls are retried by the same policy (the upload fails twice here), then the job fails
    _faults(url, faults=["500", "malformed"], failing_jobs=1)
    uploads = state.stats["uploads"]
    with pytest.raises(RuntimeError, match="failed: injected failure: the training file was rejected"):
        fine_tune(lm.cfg, rows, "tiny", "test")
    assert state.stats["uploads"] - uploads == 3
