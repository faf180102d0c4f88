import math

import pytest
from baselines import direct_rating, perplexity_scores

ROWS = [
    {"id": "a", "prompt": "What is 2 + 2?", "response": "4"},
    {"id": "b", "prompt": "Name the capital of France.", "response": "Paris is the capital of France."},
]


def test_direct_rating_is_an_expected_rating_between_1_and_5(tiny_lm):
    ratings = direct_rating(tiny_lm, ROWS)
    assert len(ratings) == 2 and all(1.0 <= r <= 5.0 for r in ratings)
    assert ratings != direct_rating(tiny_lm, [ROWS[0], {**ROWS[1], "response": "blue"}])  # reads the response


def test_perplexity_and_ifd_agree_with_teacher_forced_logprobs(tiny_lm):
    scores = perplexity_scores(tiny_lm, ROWS)
    with_prompt = tiny_lm.continuation_logprobs([tiny_lm.chat(r["prompt"]) for r in ROWS], [r["response"] for r in ROWS])
    alone = tiny_lm.continuation_logprobs([tiny_lm.chat("")] * 2, [r["response"] for r in ROWS])
    for s, (lp, n), (lp_alone, _) in zip(scores, with_prompt, alone):
        assert s["loss"] == pytest.approx(-lp / n, rel=1e-5)
        assert s["ifd"] == pytest.approx(math.exp(-lp / n + lp_alone / n), rel=1e-4)
        assert s["neg_ifd"] == -s["ifd"] and s["neg_loss"] == -s["loss"]
