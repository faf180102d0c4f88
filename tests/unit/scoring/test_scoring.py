import logging
from dataclasses import replace

import pytest

from clearcurate.core import confidence as cf
from clearcurate.core import presets
from clearcurate.core.presets import DEFECT_PENALTY, FLUENCY_SCALE
from clearcurate.llm.lora import LoraTrainConfig
from clearcurate.scoring import ScoreConfig, fold_of, sample_budgets, score_rows
from clearcurate.scoring.similarity import get_similarity

ROWS = [
    {"id": f"r{i}", "prompt": f"Context: The sky is blue and grass is green. Question: colour {i}?", "response": r}
    for i, r in enumerate(["blue", "green", "The sky is blue and grass is green.", "blue", "green", "red"])
]


def test_folds_are_stable_and_cover_all():
    folds = [fold_of(f"id{i}", 3) for i in range(300)]
    assert folds == [fold_of(f"id{i}", 3) for i in range(300)]
    assert set(folds) == {0, 1, 2}


def test_config_validation_and_weights():
    with pytest.raises(ValueError):
        ScoreConfig(recipe="magic")
    with pytest.raises(ValueError):
        ScoreConfig(folds=1)
    with pytest.raises(ValueError, match=r"needs score\.recipe: crossfit"):
        ScoreConfig(recipe="paper", weights={"consistency": 1, "likelihood": 1})
    assert presets.component_weights(ScoreConfig(weights={}, beta=0.7)) == pytest.approx({"consistency": 0.7, "reflection": 0.3})
    assert presets.component_weights(ScoreConfig(k=0, weights={"consistency": 1, "reflection": 1})) == {"reflection": 1}
    assert presets.component_weights(ScoreConfig(k=0, weights={"likelihood": 1, "relevance": 1})) == {"relevance": 1}  # needs no samples


@pytest.mark.parametrize("recipe", ["paper", "crossfit"])
def test_score_rows_writes_every_component(tiny_lm, recipe):
    cfg = ScoreConfig(recipe=recipe, k=2, max_new_tokens=3, fewshot=2, likelihood_per="token", likelihood_scale=0.5,
                      weights={} if recipe == "paper" else {"consistency": 1, "reflection": 1, "likelihood": 1, "fluency": 1})
    out = score_rows(tiny_lm, ROWS, cfg, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    assert [o["id"] for o in out] == [r["id"] for r in ROWS]
    for o in out:
        assert 0.0 <= o["confidence"] <= 1.0 and 0.0 <= o["consistency"] <= 1.0 and 0.0 <= o["reflection"] <= 1.0
        assert len(o["samples"]) == 2 and len(o["reflection_probs"]) == 2
        assert ("likelihood" in o) == ("length" in o) == (recipe == "crossfit")
        if recipe == "crossfit":  # per token: the response's rate against the best sample's rate
            rates = [lp / n for lp, n in zip(o["sample_logprobs"], o["sample_tokens"])]
            expected = cf.likelihood_ratio(o["response_logprob"] / o["response_tokens"], max(rates), cfg.likelihood_scale)
            assert o["likelihood"] == pytest.approx(expected)
            assert o["length"] == pytest.approx(cf.length_agreement(o["response_tokens"], o["sample_tokens"]))
        if recipe == "crossfit":  # the base model's per-token likelihood of the response after its prompt
            assert o["fluency"] == pytest.approx(cf.fluency(o["response_logprob_base"], o["response_tokens_base"], FLUENCY_SCALE))
        else:  # the paper's weighting gives fluency nothing, so it is not computed
            assert "fluency" not in o and "response_logprob_base" not in o
            assert o["confidence"] == pytest.approx(0.7 * o["consistency"] + 0.3 * o["reflection"])


def test_base_model_work_is_done_only_for_weighted_components(tiny_lm):
    from clearcurate.scoring import base_parts

    assert base_parts({"consistency": 0.6, "likelihood": 0.2, "relevance": 0.2}) == ()
    assert base_parts({"consistency": 0.1, "fluency": 0.8, "reflection": 0.0}) == ("fluency",)
    assert base_parts({"reflection": 0.3, "fluency": 0.1}) == ("reflection", "fluency")
    weights = {"consistency": 0.6, "likelihood": 0.2, "relevance": 0.2}
    cfg = ScoreConfig(k=2, max_new_tokens=3, weights=weights)
    lean = score_rows(tiny_lm, ROWS, cfg, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    for o in lean:
        assert not {"reflection", "reflection_probs", "fluency", "response_logprob_base"} & o.keys()
    # computing them anyway (a zero weight) changes no confidence: the lean run lost nothing it used
    full = score_rows(tiny_lm, ROWS, ScoreConfig(k=2, max_new_tokens=3, weights={**weights, "reflection": 0, "fluency": 1e-12}),
                      get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    assert all("fluency" in o for o in full)
    assert [o["confidence"] for o in lean] == pytest.approx([o["confidence"] for o in full], abs=1e-9)


def test_crossfit_leaves_the_base_model_unchanged(tiny_lm):
    import torch

    before = {k: v.clone() for k, v in tiny_lm.model.state_dict().items()}
    score_rows(tiny_lm, ROWS, ScoreConfig(k=1, max_new_tokens=2), get_similarity("token_f1"), LoraTrainConfig(epochs=1))
    after = tiny_lm.model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        torch.testing.assert_close(after[k], before[k], atol=1e-5, rtol=0)


def test_auto_weights_follow_the_answer_length_and_are_resolved_before_use():
    from clearcurate.core.presets import PRESETS, preset_for

    assert preset_for(4) == "short" and preset_for(45) == "free_form"
    auto = ScoreConfig()
    assert presets.choose(auto, [3, 4, 5, 60]) == "short" and presets.choose(auto, [40, 90, 120]) == "free_form"
    with pytest.raises(ValueError, match=r"applied\(cfg, choose"):
        presets.component_weights(auto)
    free = presets.applied(auto, "free_form")
    assert presets.component_weights(free) == PRESETS["free_form"].weights and free.likelihood_per == "token"
    assert presets.choose(ScoreConfig(weights={"consistency": 1}), [100]) == "custom"
    paper = ScoreConfig(recipe="paper")  # auto under the paper recipe: the paper's beta weighting
    paper_weights = presets.component_weights(presets.applied(paper, presets.choose(paper, [3])))
    assert paper_weights == pytest.approx({"consistency": 0.7, "reflection": 0.3})
    with pytest.raises(ValueError, match=r"score\.weights must be"):
        ScoreConfig(weights="magic")


def test_score_rows_records_the_preset_it_used(tiny_lm):
    cfg = ScoreConfig(k=2, max_new_tokens=3, max_new_tokens_cap=8)
    short = score_rows(tiny_lm, ROWS, cfg, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    assert {o["weights_preset"] for o in short} == {"short"}
    long_rows = [{**r, "response": " ".join(["a long worked answer with many words"] * 4)} for r in ROWS]
    free = score_rows(tiny_lm, long_rows, cfg, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    assert {o["weights_preset"] for o in free} == {"free_form"}
    for o in free:  # free form weighs no sampled component: nothing is sampled, the fold model scores the response only
        assert not {"samples", "consistency", "likelihood", "length"} & o.keys()
        assert 0.0 <= o["relevance"] <= 1.0 and 0.0 <= o["fluency"] <= 1.0 and set(o["length_adjusted"]) == {"relevance", "fluency"}


def test_samples_get_a_budget_that_grows_with_the_response(tiny_lm):
    long_row = {"id": "long", "prompt": "Describe the sea.", "response": " ".join(["waves and salt and wind"] * 6)}
    rows = [ROWS[0], ROWS[1], ROWS[3], long_row]
    cfg = ScoreConfig(k=2, max_new_tokens=12, max_new_tokens_cap=30, weights={"consistency": 1})
    budgets = sample_budgets(tiny_lm.token_counts([r["response"] for r in rows]), cfg)
    assert budgets == [12, 12, 12, 30]  # one-word responses keep the floor; the long one gets the cap
    out = score_rows(tiny_lm, rows, cfg, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    assert all(n <= b + 1 for o, b in zip(out, budgets) for n in o["sample_tokens"])  # + the end of turn
    assert max(out[3]["sample_tokens"]) > 13  # the random tiny model talks on: the long row's samples ran past the floor


def test_a_response_whose_calculation_fails_loses_confidence(tiny_lm):
    rows = [{"id": f"m{i}", "prompt": f"What is {i} + 2?", "response": f"{i} + 2 = {i + 2 + (i == 3)}"} for i in range(6)]
    cfg = ScoreConfig(k=1, max_new_tokens=3, weights={"consistency": 1, "reflection": 1})
    out = score_rows(tiny_lm, rows, cfg, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    for o in out:
        combined = cf.combine(o, {"consistency": 1, "reflection": 1})
        if o["id"] == "m3":  # "3 + 2 = 6"
            assert o["arithmetic"] == 0.0 and o["confidence"] == pytest.approx(DEFECT_PENALTY * combined)
            assert o["defects"] == [{"check": "arithmetic", "reason": "the calculation 3 + 2 = 6 does not hold (3 + 2 is 5)"}]
        else:
            assert o["arithmetic"] == 1.0 and o["confidence"] == pytest.approx(combined) and o["defects"] == []


def test_defects_are_recorded_with_reasons_and_only_the_named_checks_run(tiny_lm):
    rows = [{"id": "ok", "prompt": "Name a colour.", "response": "Blue."},
            {"id": "ai", "prompt": "Name a colour.", "response": "As an AI language model, I do not see colours."},
            {"id": "na", "prompt": "Name a shape.", "response": "N/A"},
            *({"id": f"c{i}", "prompt": f"Name colour {i}.", "response": "Red."} for i in range(3))]
    cfg = ScoreConfig(k=1, max_new_tokens=3, weights={"consistency": 1})
    out = {o["id"]: o for o in score_rows(tiny_lm, rows, cfg, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))}
    assert [d["check"] for d in out["ai"]["defects"]] == ["refusal"] and "As an AI language model" in out["ai"]["defects"][0]["reason"]
    assert [d["check"] for d in out["na"]["defects"]] == ["placeholder"] and out["ok"]["defects"] == []
    assert out["ai"]["confidence"] == pytest.approx(DEFECT_PENALTY * out["ai"]["consistency"])
    only = replace(cfg, defects=("placeholder",))
    again = {o["id"]: o for o in score_rows(tiny_lm, rows, only, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))}
    assert again["ai"]["defects"] == [] and again["na"]["defects"] == out["na"]["defects"]


def test_records_stored_before_the_defect_checks_keep_their_arithmetic_penalty():
    from clearcurate.core.defects import is_defective

    assert is_defective({"arithmetic": 0.5}) and not is_defective({"arithmetic": 1.0}) and not is_defective({})
    assert not is_defective({"arithmetic": 0.5, "defects": []})  # the checks ran (arithmetic was turned off)


def test_the_free_form_preset_weighs_components_against_the_length_trend(tiny_lm):
    """Long responses get the free_form preset: relevance and fluency, each as it stands among responses of its length."""
    from clearcurate.core.presets import PRESETS

    words = "the quick brown fox jumps over the lazy dog and runs into the green field near the old farm house".split()
    # numbered words: no repeated text, so no defect check fires and the confidence is the preset's combination
    rows = [{"id": f"f{i}", "prompt": f"Describe scene {i}.",
             "response": " ".join(f"{w}{j}" for j, w in enumerate((words * 3)[: 24 + 3 * i])) + "."} for i in range(8)]
    out = score_rows(tiny_lm, rows, ScoreConfig(k=1, max_new_tokens=4), get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    weights = PRESETS["free_form"].weights
    assert {o["weights_preset"] for o in out} == {"free_form"} and PRESETS["free_form"].length_adjusted
    relevance = cf.length_adjusted([o["relevance"] for o in out], [o["response_tokens"] for o in out])
    fluency = cf.length_adjusted([o["fluency"] for o in out], [o["response_tokens"] for o in out])
    for o, rel, flu in zip(out, relevance, fluency):
        assert o["length_adjusted"] == pytest.approx({"relevance": rel, "fluency": flu})
        assert o["confidence"] == pytest.approx((weights["relevance"] * rel + weights["fluency"] * flu) / sum(weights.values()))


def test_group_by_fits_the_length_trend_per_group_and_a_missing_field_is_an_error(tiny_lm):
    from clearcurate.scoring import confidences, row_groups

    words = "the quick brown fox jumps over the lazy dog and runs into the green field near the old farm house".split()
    rows = [{"id": f"g{i}", "prompt": f"Describe scene {i}.", "response": " ".join((words * 3)[: 24 + i]),
             "source": "a" if i < 10 else "b"} for i in range(20)]
    cfg = ScoreConfig(k=1, max_new_tokens=4, group_by="source")
    out = score_rows(tiny_lm, rows, cfg, get_similarity("token_f1"), LoraTrainConfig(epochs=1, batch_size=4))
    assert [o["group"] for o in out] == [r["source"] for r in rows]
    for name in ("relevance", "fluency"):
        for lo, hi in ((0, 10), (10, 20)):  # each source against its own length line
            expected = cf.length_adjusted([o[name] for o in out[lo:hi]], [o["response_tokens"] for o in out[lo:hi]])
            assert [o["length_adjusted"][name] for o in out[lo:hi]] == pytest.approx(expected)
    ungrouped = confidences(out, presets.applied(ScoreConfig(k=1), "free_form"), "free_form")  # the benchmark's recomputation
    assert [c for c, _ in ungrouped] != pytest.approx([o["confidence"] for o in out])
    assert row_groups([{"id": "x", "source": 3}, {"id": "y"}], "source") == ["3", None]
    with pytest.raises(ValueError, match=r"score\.group_by: no row has a field 'sorce'"):
        score_rows(tiny_lm, rows, ScoreConfig(k=1, max_new_tokens=4, group_by="sorce"), get_similarity("token_f1"),
                   LoraTrainConfig(epochs=1, batch_size=4))
    with pytest.raises(ValueError, match=r"score\.group_by must be a field name"):
        ScoreConfig(group_by=" ")


def test_a_field_that_looks_like_a_kind_of_response_is_suggested_for_group_by(tiny_lm, caplog):
    from clearcurate.scoring import group_field_candidates

    base = [{"id": str(i), "prompt": "p", "response": "r", "source": "a" if i < 12 else "b", "category": f"c{i}",
             "note": "same", "n": i} for i in range(24)]
    # category: a value per row; note: one value; n: not text. Only source splits the rows into kinds.
    assert group_field_candidates(base) == {"source": {"a": 12, "b": 12}}
    assert group_field_candidates([{**r, "source": "a" if i < 16 else "b"} for i, r in enumerate(base)]) == {}  # b: 8 rows
    assert group_field_candidates([{**r, "source": ""} if i == 0 else r for i, r in enumerate(base)]) == {}  # a row lacks it
    assert group_field_candidates([]) == {}

    words = "the quick brown fox jumps over the lazy dog and runs into the green field near the old farm house".split()
    rows = [{"id": f"k{i}", "prompt": f"Describe scene {i}.", "response": " ".join((words * 3)[: 24 + i]),
             "source": "a" if i < 10 else "b"} for i in range(20)]
    with caplog.at_level(logging.WARNING, logger="clearcurate.scoring"):
        out = score_rows(tiny_lm, rows, ScoreConfig(k=1, max_new_tokens=4), get_similarity("token_f1"),
                         LoraTrainConfig(epochs=1, batch_size=4))
    assert out[0]["weights_preset"] == "free_form"
    assert "rows carry 'source' (a 10, b 10)" in caplog.text and "score.group_by: source" in caplog.text
