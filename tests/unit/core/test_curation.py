import numpy as np
import pytest

from clearcurate.config import AUTO
from clearcurate.core.curation import (
    NO_COMPLETE_SAMPLE,
    FilterConfig,
    ScoreColumns,
    agreement_verdict,
    auto_statistic,
    correction_reason,
    estimate_noise_share,
    keep_mask,
    pairwise_preference,
    redecide,
    should_replace,
    split_by_threshold,
    threshold,
)
from clearcurate.core.outcomes import Outcome


def test_fixed_gamma_and_quantile_threshold():
    scores = [0.1, 0.2, 0.3, 0.9]
    assert threshold(scores, FilterConfig(gamma=0.6, quantile=None)).gamma == 0.6
    assert threshold(scores, FilterConfig(quantile=0.5)).gamma == pytest.approx(0.25)
    assert threshold(scores, FilterConfig(quantile=0.5)).estimated_noise_share is None


def _scores(n_clean: int, n_noisy: int, seed: int = 0) -> np.ndarray:
    """Confidences like CLEAR's: clean rows high, noisy rows low, both spread, clipped to (0, 1)."""
    rng = np.random.default_rng(seed)
    clean = rng.beta(8, 2, n_clean)
    noisy = rng.beta(2, 8, n_noisy)
    return np.concatenate([clean, noisy])


@pytest.mark.parametrize("n_noisy", [20, 40])
def test_auto_threshold_estimates_the_noisy_share_of_a_two_group_mixture(n_noisy):
    scores = _scores(100 - n_noisy, n_noisy)
    share = estimate_noise_share(scores)
    assert abs(share - n_noisy / 100) <= 0.05
    cut = threshold(list(scores), FilterConfig(quantile="auto"), statistic=scores)
    removed = sum(s < cut.gamma for s in scores)
    assert cut.method == "auto" and cut.estimated_noise_share == share
    assert removed == round(share * 100)


def test_auto_threshold_removes_nothing_from_one_clean_population():
    for seed in range(5):  # one group in the statistic (the likelihood log-ratio of clean rows)
        statistic = np.random.default_rng(seed).normal(-3.0, 3.0, 100)
        assert estimate_noise_share(statistic) == 0.0
        confidences = list(np.random.default_rng(seed).random(100))
        cut = threshold(confidences, FilterConfig(quantile="auto"), statistic=statistic)
        assert sum(s < cut.gamma for s in confidences) == 0


def test_auto_statistic_is_the_likelihood_log_ratio_when_every_row_has_it():
    rows = [{"response_logprob": -5.0, "best_sample_logprob": -2.0}, {"response_logprob": -1.0, "best_sample_logprob": -1.5}]
    assert auto_statistic(rows) == [-3.0, 0.5]
    assert auto_statistic([*rows, {"confidence": 0.3}]) is None  # the paper recipe: the confidence is used


def test_auto_threshold_is_capped_and_needs_enough_rows():
    scores = _scores(30, 70)  # a "noisy" majority is taken as at most max_share
    assert estimate_noise_share(scores, max_share=0.5) == 0.5
    with pytest.raises(ValueError, match="at least 10"):
        estimate_noise_share([0.1, 0.9])
    assert estimate_noise_share([0.5] * 20) == 0.0


def test_filter_config_accepts_auto_and_rejects_other_words():
    assert FilterConfig(quantile="auto").quantile == "auto"
    with pytest.raises(ValueError, match="'auto'"):
        FilterConfig(quantile="abc")
    with pytest.raises(ValueError, match="max_share"):
        FilterConfig(max_share=0)


def test_agreement_verdict_takes_the_agreed_answer_and_weighs_it_against_the_original():
    samples = ["Paris", "paris.", "Lyon", "Paris", "The Paris"]
    lps = [-1.0, -1.5, -2.0, -1.2, -3.0]
    v = agreement_verdict(samples, lps, [True] * 5, "Marseille", original_logprob=-6.0)
    assert v.candidate == "Paris"  # the most likely sample of the majority answer
    assert v.agreement == pytest.approx(4 / 5)
    assert v.preference == pytest.approx(1 / (1 + np.exp(-6.0 + 1.0)))
    assert v.confidence == pytest.approx(v.agreement * v.preference)
    # The original is far more likely than the candidate: low confidence, whatever the agreement.
    assert agreement_verdict(samples, lps, [True] * 5, "Marseille", original_logprob=0.0).confidence < 0.3


def test_agreement_verdict_confirms_the_original_and_ignores_cut_off_samples():
    confirmed = agreement_verdict(["Paris"] * 5, [-1.0] * 5, [True] * 5, "paris", original_logprob=-1.0)
    assert confirmed.candidate is None and confirmed.confidence == 0.0
    assert not should_replace(confirmed.confidence, 0.0, confirmed.candidate, "paris")
    assert correction_reason(0.0, 0.5, None, "paris") == "the held-out model agrees with the original answer"
    cut = agreement_verdict(["x = 4 and so", "5", "5", "x = 4 and so", "x = 4 and so"], [-0.1, -2, -2, -0.1, -0.1],
                            [False, True, True, False, False], "7", original_logprob=-9.0)
    assert cut.candidate == "5" and cut.agreement == pytest.approx(2 / 5)
    nothing = agreement_verdict(["", ""], [None, -1.0], [True, False], "7", original_logprob=-1.0)
    assert nothing.candidate is None and nothing.confidence == 0.0
    # The reasons say which: the model agreeing with the row, or no sample complete enough to agree on (issue 31).
    assert confirmed.complete == 5 and confirmed.reason(0.5, "paris") == "the held-out model agrees with the original answer"
    assert nothing.complete == 0 and nothing.reason(0.5, "7") == NO_COMPLETE_SAMPLE
    assert cut.reason(0.0, "7").startswith("candidate preferred with confidence")
    with pytest.raises(ValueError):
        agreement_verdict(["a"], [], [True], "b", -1.0)


def test_agreement_verdict_groups_math_solutions_by_final_number():
    samples = ["3*4 = 12\n#### 12", "4*3=12 so\n#### 12", "3+4=7\n#### 7"]
    v = agreement_verdict(samples, [-5.0, -4.0, -3.0], [True] * 3, "3*4 = 13\n#### 13", original_logprob=-20.0)
    assert v.candidate == "4*3=12 so\n#### 12" and v.agreement == pytest.approx(2 / 3)


def test_pairwise_preference_cancels_a_slot_bias():
    # A judge that always prefers slot B: P(cand)=0.2 when shown as A, 0.8 when shown as B.
    assert pairwise_preference(0.2, 0.8) == pytest.approx(0.5)
    assert pairwise_preference(0.9, 0.7) == pytest.approx(0.8)


def test_split_keeps_at_threshold_and_preserves_order():
    kept, removed = split_by_threshold({"a": 0.5, "b": 0.49, "c": 0.9}, 0.5)
    assert kept == ["a", "c"] and removed == ["b"]


def test_invalid_filter_config_is_rejected():
    with pytest.raises(ValueError):
        FilterConfig(gamma=1.2)
    with pytest.raises(ValueError):
        FilterConfig(quantile=-0.1)


def test_replace_only_above_eta_and_when_different():
    assert should_replace(0.81, 0.8, "new", "old")
    assert not should_replace(0.8, 0.8, "new", "old")  # strictly greater than eta
    assert not should_replace(0.99, 0.8, "old", "old")
    assert not should_replace(0.99, 0.8, "  ", "old")
    assert "<= eta" in correction_reason(0.5, 0.8, "new", "old")
    assert correction_reason(0.9, 0.8, "", "old") == "candidate empty"


def test_a_candidate_with_a_defect_never_replaces():
    wrong = "She has 3 * 4 = 13 apples.\n#### 13"
    assert not should_replace(0.99, 0.5, wrong, "#### 12")
    assert correction_reason(0.99, 0.5, wrong, "#### 12") == \
        "candidate has a defect: defect arithmetic: the calculation 3 * 4 = 13 does not hold (3 * 4 is 12)"
    for bad in ("As an AI language model, I cannot answer that.", "N/A"):
        assert correction_reason(0.99, 0.5, bad, "Paris").startswith("candidate has a defect: defect ")
    right = "She has 3 * 4 = 12 apples.\n#### 12"
    assert should_replace(0.99, 0.5, right, "#### 13")
    assert correction_reason(0.99, 0.5, right, "#### 13") == "candidate preferred with confidence 0.990 > eta 0.5"
    assert correction_reason(0.4, 0.5, right, "#### 13") == "candidate confidence 0.400 <= eta 0.5"


def test_a_stored_decision_is_taken_again_at_another_eta_from_its_evidence():
    stored = {"id": "r", "outcome": "removed", "reason": "candidate confidence 0.750 <= eta 0.8", "confidence": 0.75,
              "agreement": 0.8, "old": "wrong", "new": "right"}
    lower = redecide(stored, 0.7)
    assert lower["outcome"] == Outcome.CORRECTED and lower["reason"] == "candidate preferred with confidence 0.750 > eta 0.7"
    assert lower["agreement"] == 0.8 and stored["outcome"] == "removed"  # evidence kept, the stored record untouched
    assert redecide(lower, 0.8)["outcome"] == Outcome.REMOVED
    # Refusals no eta changes keep their stored, more precise reason; so do failures and unparsed judges.
    agreed = {**stored, "confidence": 0.99, "new": "wrong", "reason": "the held-out model agrees with the original answer"}
    assert redecide(agreed, 0.0) == agreed
    failed = {**stored, "confidence": 0.99, "error": "timeout", "reason": "Auto-Correct failed on this row: timeout"}
    assert redecide(failed, 0.0) == failed
    unparsed = {**stored, "judge_unparsed": True, "confidence": 0.99}
    assert redecide(unparsed, 0.0) == unparsed


def _old_filter(scored, train_ids, cfg):
    """The filter stage's decision as it was made in memory (a record per row), the reference for ScoreColumns."""
    scores = {s["id"]: s for s in scored}
    confidence = {i: float(scores[i]["confidence"]) for i in train_ids}
    cut = threshold(list(confidence.values()), cfg, auto_statistic([scores[i] for i in train_ids]))
    return cut, split_by_threshold(confidence, cut.gamma)


@pytest.mark.parametrize("cfg", [FilterConfig(quantile=0.2), FilterConfig(quantile=AUTO), FilterConfig(gamma=0.55)])
@pytest.mark.parametrize("with_statistic", [True, False])
def test_score_columns_decide_exactly_as_the_in_memory_filter(cfg, with_statistic):
    rng = np.random.default_rng(0)
    noisy = rng.random(400) < 0.2  # two populations, so `auto` estimates a share above zero
    scored = []
    for k in range(400):
        record = {"id": f"r{k}", "confidence": float(rng.beta(2, 5) if noisy[k] else rng.beta(5, 2)), "samples": ["a", "b"]}
        if with_statistic or k % 7:  # without: some rows lack the log-ratio, so `auto` falls back to the confidences
            record.update(response_logprob=float(-40 + 30 * (not noisy[k]) + rng.normal()), best_sample_logprob=-12.0)
        scored.append(record)
    scored.append({**scored[3], "confidence": 0.01})  # a repeated id: its last record counts
    train_ids = [f"r{k}" for k in rng.permutation(400)]  # the training file's order, not the scores'
    cut, (kept, removed) = _old_filter(scored, train_ids, cfg)
    confidence, statistic, missing = ScoreColumns.collect(iter(scored)).align(train_ids)
    assert missing == [] and (statistic is not None) == with_statistic
    assert threshold(confidence, cfg, statistic) == cut
    mask = keep_mask(confidence, cut.gamma)
    assert [i for i, k in zip(train_ids, mask) if k] == kept
    assert [i for i, k in zip(train_ids, mask) if not k] == removed and "r3" in removed


def test_score_columns_name_the_training_ids_without_a_score():
    columns = ScoreColumns.collect([{"id": "a", "confidence": 0.5}, {"id": "b", "confidence": 0.7}])
    confidence, statistic, missing = columns.align(["b", "x", "a", "y"])
    assert missing == ["x", "y"] and statistic is None
    assert confidence[0] == 0.7 and confidence[2] == 0.5


def test_a_row_whose_prompt_is_at_fault_is_left_removed_without_model_work():
    from clearcurate.core.curation import PROMPT_AT_FAULT, uncorrectable

    row = {"id": "r", "prompt": "Describe the attached image.", "response": "A cat.",
           "defects": [{"check": "needs_input", "reason": "the instruction refers to 'the attached image'"}]}
    decision = uncorrectable(row)
    assert decision is not None and decision["outcome"] == Outcome.REMOVED and decision["reason"] == PROMPT_AT_FAULT
    assert decision["new"] == decision["old"] == "A cat."
    assert uncorrectable({**row, "defects": [{"check": "refusal", "reason": "..."}]}) is None  # a new response can fix a refusal
    assert uncorrectable({**row, "defects": []}) is None and uncorrectable({k: v for k, v in row.items() if k != "defects"}) is None


def test_the_filter_removes_a_row_with_a_defect_whatever_its_score():
    from clearcurate.core.curation import ScoreColumns, keep_mask, removal_reason

    scored = [{"id": "a", "confidence": 0.9}, {"id": "b", "confidence": 0.95, "defects": [{"check": "refusal", "reason": "As an AI"}]},
              {"id": "c", "confidence": 0.1, "defects": []}]
    columns = ScoreColumns.collect(scored)
    confidence, _, missing = columns.align(["c", "b", "a"])
    defects = columns.defects_of(["c", "b", "a"])
    assert not missing and set(defects) == {1}
    assert keep_mask(confidence, 0.5, defects).tolist() == [False, False, True]
    assert removal_reason(0.95, 0.5, defects[1]) == "defect refusal: As an AI"
    assert removal_reason(0.1, 0.5) == "confidence 0.1000 < gamma 0.5000"


def test_removals_by_length_band_and_the_warning_when_one_band_dominates():
    """Issue 31: on Alpaca rows the filter removed half of the short answers and 6% of the long ones."""
    from clearcurate.core.curation import LengthBands

    bands = LengthBands()
    for i in range(54):
        bands.add("865" if i % 2 else "Giver rhymes with river", removed=i < 27)
    for i in range(124):
        bands.add(" ".join(["word"] * 50), removed=i < 7)
    summary = bands.summary()
    assert list(summary) == ["<= 8 words", "9-40 words", "> 40 words"]
    assert summary["<= 8 words"] == {"rows": 54, "removed": 27, "removed_share": 0.5}
    assert summary["9-40 words"] == {"rows": 0, "removed": 0, "removed_share": None}
    assert bands.warning().startswith("the filter removed 50% of responses of <= 8 words (27 of 54) against 19% overall")
    even = LengthBands()
    for i in range(100):
        even.add("short" if i % 2 else " ".join(["w"] * 20), removed=i % 5 == 0)
    assert even.warning() is None
    few = LengthBands()
    for i in range(100):
        few.add("a b" if i < 5 else " ".join(["w"] * 20), removed=i < 5)  # 5 short rows all removed: too few to say
    assert few.warning() is None
