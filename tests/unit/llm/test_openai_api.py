"""The OpenAI-compatible backend's answer parsing, on hand-built replies (the backend against a real
HTTP server is tested in tests/integration/llm/test_openai_server.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from clearcurate.llm.openai_api import letter_probs, parse_letter


def test_strict_letter_parser_accepts_only_unambiguous_answers():
    for text, letter in (("A", "A"), ("(B)", "B"), ("answer: (C)", "C"), ("answer: A.", "A"), (" b ", "B"),
                         ("explanation: it says so, answer: (A)", "A"), ("answer: B\nbecause answer: B", "B")):
        assert parse_letter(text, "ABC") == letter, text
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
