"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (the local server over the
tiny model), through the official `openai` client: no patching of our code or of the client."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from clearcurate.llm.openai_api import (
    BudgetExceeded,
    OpenAIChatLM,
    OpenAIConfig,
    fine_tune,
    letter_probs,
    parse_letter,
)

from conftest import local_openai_server

KEY = "sk-local-test-0123456789"


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    yield from local_openai_server(tiny_model_dir, "tiny", KEY, timeout_sleep_s=2.0)


@pytest.fixture()
def lm(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    state, url = server
    state.faults.clear()
    cfg = OpenAIConfig(base_url=url, model="tiny", max_concurrency=4, timeout_s=1.0, backoff_s=0.01, poll_s=0.1)
    return OpenAIChatLM(cfg, show_progress=False)


def _faults(url: str, **control) -> None:
    request = urllib.request.Request(url.replace("/v1", "/_control/faults"), data=json.dumps(control).encode(), method="POST")
    urllib.request.urlopen(request).read()


def test_strict_letter_parser_accepts_only_unambiguous_answers():
    for text in ("A", "(B)", "answer: (C)", "answer: A.", " b ", "explanation: it says so, answer: (A)"):
        assert parse_letter(text, "ABC") in "ABC"
    assert parse_letter("answer: (C)", "ABC") == "C" and parse_letter(" b ", "ABC") == "B"
    for text in ("", "A dog is an animal", "answer: A or answer: B", "D", "I think so"):
        assert parse_letter(text, "ABC") is None


def test_letter_probabilities_come_from_top_logprobs_at_the_letter():
    def tok(token, alts):
        return SimpleNamespace(token=token, logprob=0.0, top_logprobs=[SimpleNamespace(token=t, logprob=np.log(p)) for t, p in alts])

    logprobs = SimpleNamespace(content=[tok("answer", [("answer", 1.0)]), tok(" (", [(" (", 1.0)]),
                                        tok("A", [("A", 0.6), (" B", 0.2), ("C", 0.1), ("D", 0.1)])])
    np.testing.assert_allclose(letter_probs(logprobs, "A", "ABC"), [0.6 / 0.9, 0.2 / 0.9, 0.1 / 0.9])
    assert letter_probs(SimpleNamespace(content=[tok("Yes", [("Yes", 1.0)])]), "A", "ABC") is None
    # "a" inside prose is not an answer: only the strictly parsed letter's position is read
    prose = SimpleNamespace(content=[tok("I", [("I", 1.0)]), tok(" think", [(" think", 1.0)]), tok(" a", [(" a", 0.9), (" B", 0.1)])])
    assert parse_letter("I think a", "ABC") is None and letter_probs(prose, "B", "ABC") is None


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


def test_without_n_support_k_requests_are_made(lm, server):
    state, _ = server
    lm.cfg = replace(lm.cfg, n_per_request=False)
    before = state.stats["chat_requests"]
    out = lm.sample([lm.chat("Name a colour.")], n=3, max_new_tokens=4)
    assert len(out[0].generations) == 3 and state.stats["chat_requests"] - before == 3


def test_429_500_timeout_and_malformed_replies_are_retried(lm, server):
    _, url = server
    _faults(url, faults=["429", "500", "timeout", "malformed"])
    texts = lm.greedy([lm.chat("What is 2+2?")], 4)
    assert len(texts) == 1
    assert lm.usage.retries == 4 and lm.usage.requests == 5
    assert set(lm.usage.errors) == {"RateLimitError", "InternalServerError", "APITimeoutError", "JSONDecodeError"}


def test_retries_give_up_with_the_servers_error(lm, server):
    _, url = server
    lm.cfg = replace(lm.cfg, max_retries=1)
    _faults(url, faults=["500", "500"])
    with pytest.raises(Exception, match="server had an error"):
        lm.greedy([lm.chat("hi")], 2)


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
    _faults(url, failing_jobs=1)
    with pytest.raises(RuntimeError, match="failed: injected failure: the training file was rejected"):
        fine_tune(lm.cfg, rows, "tiny", "test")
