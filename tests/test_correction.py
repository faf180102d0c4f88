import pytest

from clearcurate.correction import ORDERS, candidate_first


def test_candidate_order_is_random_per_row_but_stable():
    ids = [f"row{i}" for i in range(400)]
    order = [candidate_first(i, seed=0) for i in ids]
    assert order == [candidate_first(i, seed=0) for i in ids]  # stable across runs
    assert 0.4 < sum(order) / len(order) < 0.6  # balanced: position bias cancels
    assert order != [candidate_first(i, seed=1) for i in ids]


def test_judge_order_can_be_fixed_for_position_bias_studies(tiny_lm):
    from clearcurate.correction import correct_rows
    from clearcurate.curation import CORRECTED, REMOVED
    from clearcurate.training import LoraTrainConfig, attach_lora

    rows = [{"id": f"r{i}", "prompt": f"Question {i}?", "response": f"answer {i}"} for i in range(4)]
    adapted = attach_lora(tiny_lm.model, LoraTrainConfig(lora_r=2))
    tiny_lm.model = adapted
    try:
        shown = {}
        for order in ORDERS:
            out = correct_rows(tiny_lm, rows, eta=0.8, beta=0.7, max_new_tokens=3, order=order)
            assert [d["id"] for d in out] == [r["id"] for r in rows]
            assert all(d["outcome"] in (CORRECTED, REMOVED) and d["reason"] for d in out)
            shown[order] = [d["candidate_shown_as"] for d in out]
        assert set(shown["candidate_a"]) == {"A"} and set(shown["candidate_b"]) == {"B"}
        assert shown["random"] == ["A" if candidate_first(r["id"], 0) else "B" for r in rows]
        with pytest.raises(ValueError, match="order must be one of"):
            correct_rows(tiny_lm, rows, eta=0.8, beta=0.7, max_new_tokens=3, order="left")
    finally:
        tiny_lm.model = adapted.unload()
