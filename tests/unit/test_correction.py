import pytest

from clearcurate.config import ORDERS
from clearcurate.core.budget import token_budget
from clearcurate.core.outcomes import Outcome
from clearcurate.correction import CorrectConfig, candidate_first, correct_rows, evidence_settings, with_data_floor
from clearcurate.llm.lora import LoraTrainConfig, attach_lora
from helpers import assert_same_records

ROWS = [{"id": f"r{i}", "prompt": f"Question {i}?", "response": f"answer {i}"} for i in range(4)]


def test_candidate_order_is_random_per_row_but_stable():
    ids = [f"row{i}" for i in range(400)]
    order = [candidate_first(i, seed=0) for i in ids]
    assert order == [candidate_first(i, seed=0) for i in ids]  # stable across runs
    assert 0.4 < sum(order) / len(order) < 0.6  # balanced: position bias cancels
    assert order != [candidate_first(i, seed=1) for i in ids]


def test_correct_config_rejects_bad_settings():
    with pytest.raises(ValueError, match=r"correct\.judge"):
        CorrectConfig(judge="gpt")
    with pytest.raises(ValueError, match=r"correct\.order must be one of"):
        CorrectConfig(order="left")
    with pytest.raises(ValueError, match=r"correct\.k"):
        CorrectConfig(k=1)
    with pytest.raises(ValueError, match=r"correct\.eta"):
        CorrectConfig(eta=1.5)
    for top_p in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"correct\.top_p must be in \(0, 1\]"):
            CorrectConfig(top_p=top_p)
    with pytest.raises(ValueError, match=r"correct\.temperature"):
        CorrectConfig(temperature=0.0)
    with pytest.raises(ValueError, match=r"token cap \(16\) is below the floor \(32\)"):
        CorrectConfig(max_new_tokens_cap=16)


def _with_adapter(lm):
    """`lm` as the filtered model: with a LoRA adapter, taken off again after the test."""
    adapted = attach_lora(lm.model, LoraTrainConfig(lora_r=2))
    lm.model = adapted
    yield lm
    lm.model = adapted.unload()


@pytest.fixture
def filtered_lm(tiny_lm):
    """The random tiny model: it never ends an answer within these budgets."""
    yield from _with_adapter(tiny_lm)


@pytest.fixture
def filtered_stopping_lm(stopping_lm):
    """A tiny model whose answers end after a few tokens: samples complete, agree and replace."""
    yield from _with_adapter(stopping_lm)


def test_pairwise_judge_asks_both_orders_or_a_fixed_slot(filtered_lm):
    shown = {}
    for order in ORDERS:
        out = correct_rows(filtered_lm, ROWS, CorrectConfig(judge="pairwise", order=order, max_new_tokens=3))
        assert [d["id"] for d in out] == [r["id"] for r in ROWS]
        assert all(d["outcome"] in (Outcome.CORRECTED, Outcome.REMOVED) and d["reason"] for d in out)
        shown[order] = out
    assert {d["candidate_shown_as"] for d in shown["candidate_a"]} == {"A"}
    assert {d["candidate_shown_as"] for d in shown["candidate_b"]} == {"B"}
    assert [d["candidate_shown_as"] for d in shown["random"]] == ["A" if candidate_first(r["id"], 0) else "B" for r in ROWS]
    # Both orders: the preference is the mean of the two single-slot preferences.
    for both, a, b in zip(shown["both"], shown["candidate_a"], shown["candidate_b"]):
        assert both["judge_preference"] == pytest.approx((a["judge_preference"] + b["judge_preference"]) / 2, abs=1e-5)


def test_agreement_judge_decides_from_the_filtered_models_samples(filtered_stopping_lm):
    lm = filtered_stopping_lm
    cfg = CorrectConfig(judge="agreement", k=4, max_new_tokens=4, eta=0.0)
    out = correct_rows(lm, ROWS, cfg)
    assert out == correct_rows(lm, ROWS, cfg)  # per-row seeds: reproducible
    assert out[1:] == correct_rows(lm, ROWS[1:], cfg)  # and independent of the other rows
    for d, row in zip(out, ROWS):
        assert len(d["samples"]) == 4 and 0.0 <= d["agreement"] <= 1.0
        assert d["confidence"] == pytest.approx(d["agreement"] * d["likelihood_preference"])
        assert d["reason"]
        if d["outcome"] == Outcome.CORRECTED:  # eta 0: any differing agreed answer replaces
            assert d["new"] in d["samples"] and d["new"] != row["response"] and d["confidence"] > 0.0
            assert d["reason"].startswith("candidate preferred with confidence")
        else:
            assert d["new"] == row["response"]
    assert any(d["outcome"] == Outcome.CORRECTED for d in out)  # the replacing branch ran
    assert sum(d["truncated_samples"] for d in out) < 4 * len(out)  # samples ended within their budgets
    strict = correct_rows(lm, ROWS, CorrectConfig(judge="agreement", k=4, max_new_tokens=4, eta=0.99))
    assert all(d["outcome"] == Outcome.REMOVED for d in strict)  # the same evidence, refused above eta
    assert [d["confidence"] for d in strict] == [d["confidence"] for d in out]


@pytest.mark.parametrize("judge", ["pairwise", "agreement"])
def test_decisions_do_not_depend_on_the_rows_decided_with_them(filtered_lm, judge):
    """What the Ray engine relies on: it decides rows in blocks, the local engine all at once."""
    cfg = CorrectConfig(judge=judge, k=3, max_new_tokens=3, eta=0.0)
    whole = correct_rows(filtered_lm, ROWS, cfg)
    assert_same_records(correct_rows(filtered_lm, ROWS[:1], cfg) + correct_rows(filtered_lm, ROWS[1:], cfg), whole)


def test_the_sampling_floor_rises_to_the_kept_answers_length_and_is_part_of_the_evidence_key(tiny_lm):
    """A removed free-form response is often shorter than a good answer (an evasive template, a cut-off text):
    the kept rows say how long this data's answers run. Short-answer data keeps its floor."""
    cfg = CorrectConfig(judge="agreement", max_new_tokens=32, max_new_tokens_cap=256)
    kept = [{"response": " ".join(["a long and careful answer"] * 20)} for _ in range(10)]
    raised = with_data_floor(cfg, tiny_lm, iter(kept))
    n = tiny_lm.token_counts([kept[0]["response"]])[0]
    assert raised.max_new_tokens == token_budget(n, 32, 256) > 32
    assert evidence_settings(raised) != evidence_settings(cfg)  # evidence sampled with another floor is not reused
    assert with_data_floor(cfg, tiny_lm, iter([{"response": "Paris"}] * 10)) == cfg


def test_agreement_budgets_follow_each_removed_responses_length(filtered_lm):
    """Free-form rows get room to finish (a fixed 32 tokens cut off 57% of the samples on Alpaca rows, issue 31):
    the budget is score's rule, and every decision says its budget and how many of its samples were cut off."""
    long_row = {"id": "long", "prompt": "Describe the sea.", "response": " ".join(["waves and salt"] * 30)}
    cfg = CorrectConfig(judge="agreement", k=3, max_new_tokens=4, max_new_tokens_cap=64, eta=0.0)
    out = correct_rows(filtered_lm, [ROWS[0], long_row], cfg)
    n_long = filtered_lm.token_counts([long_row["response"]])[0]
    n_short = filtered_lm.token_counts([ROWS[0]["response"]])[0]
    assert [d["budget"] for d in out] == [token_budget(n_short, 4, 64), 64] and out[0]["budget"] > 4
    assert n_long * 1.5 + 8 > 64  # the long row hits the cap
    for d in out:  # the random model never ends an answer: nothing complete, and the reason says so
        assert d["truncated_samples"] == 3
        assert d["outcome"] == Outcome.REMOVED and d["reason"].startswith("no complete sample")
    fixed = correct_rows(filtered_lm, [ROWS[0], long_row], CorrectConfig(judge="agreement", k=3, max_new_tokens=4,
                                                                            max_new_tokens_cap=0, eta=0.0))
    assert [d["budget"] for d in fixed] == [4, 4]
