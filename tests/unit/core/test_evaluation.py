import math

import pytest

from clearcurate.core.evaluation import (
    HELDOUT,
    detection_scores,
    differences,
    final_number,
    model_scores,
    paired_bootstrap,
    per_question_scores,
    with_uncertainty,
)


def test_squad_scores_take_best_reference():
    qa = [{"response": "Broncos", "answers": ["Broncos", "Denver Broncos"]}, {"response": "x", "answers": ["Carolina Panthers"]}]
    scores = model_scores(["Denver Broncos", "the panthers"], qa, None)
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (1.0 + 2 / 3) / 2)


def test_detection_auroc_precision_recall():
    conf = {"a": 0.9, "b": 0.8, "c": 0.2, "d": 0.6}
    noisy = {"a": False, "b": False, "c": True, "d": True}
    out = detection_scores(conf, noisy, removed={"c", "b"})
    assert out["auroc"] == pytest.approx(1.0)
    assert out["filter_precision"] == pytest.approx(0.5)
    assert out["filter_recall"] == pytest.approx(0.5)
    undefined = detection_scores({"a": 0.1}, {"a": True}, set())  # one class, nothing removed: absent, never 0
    assert undefined["auroc"] is None and undefined["filter_precision"] is None and undefined["filter_recall"] == 0.0
    assert detection_scores({"a": 0.1}, {"a": False}, {"a"})["filter_recall"] is None


def test_final_number_reads_the_committed_answer():
    assert final_number("48/2 = 24 clips\n#### 1,200") == "1200"
    assert final_number("so she pays 3.50 and then 7.") == "7"  # no ####: the last number
    assert final_number("#### 72.0") == "72"
    assert final_number("#### -5") == "-5"
    assert final_number("no numbers here") is None


def test_worked_solutions_are_scored_by_their_final_number():
    math_rows = [{"response": f"steps\n#### {n}", "answers": [n]} for n in ("72", "6", "1")]
    scores = model_scores(["x #### 72", "the answer is 5", "nothing"], math_rows, None)
    assert scores == {"exact_match": pytest.approx(100 / 3)}  # no SQuAD F1 of worded steps against a number
    # one reference that is not a worked solution: SQuAD exact match and F1 for all
    assert set(model_scores(["72", "6"], [math_rows[0], {"response": "Paris", "answers": ["Paris"]}], None)) == {"exact_match", "f1"}
    with pytest.raises(ValueError):
        model_scores([], [], None)


def test_answer_key_and_same_answer():
    from clearcurate.core.evaluation import answer_key, same_answer

    assert answer_key("The Denver Broncos.") == "denver broncos"
    assert answer_key("2*6=12\n#### 12") == "#12"
    assert same_answer("step one\n#### 1,200", "other steps\n#### 1200")
    assert not same_answer("#### 12", "#### 13")


def test_correction_scores_count_repairs_and_damage():
    from clearcurate.core.evaluation import correction_scores

    labels = {
        "n1": {"noisy": True, "clean_response": "Paris"},
        "n2": {"noisy": True, "clean_response": "Rome"},
        "c1": {"noisy": False, "clean_response": "Oslo"},
        "c2": {"noisy": False, "clean_response": "Bern"},
    }
    decisions = [
        {"id": "n1", "outcome": "corrected", "new": "paris"},  # repaired
        {"id": "n2", "outcome": "corrected", "new": "Milan"},  # replaced, still wrong
        {"id": "c1", "outcome": "corrected", "new": "Bergen"},  # a clean row damaged
        {"id": "c2", "outcome": "removed", "new": "Zurich"},
    ]
    out = correction_scores(decisions, labels)
    assert out["given"] == 4 and out["given_noisy"] == 2 and out["replaced"] == 3
    assert out["correction_precision"] == pytest.approx(1 / 3)
    assert out["noisy_repaired"] == 1 and out["noisy_repaired_share"] == pytest.approx(0.5)
    assert out["clean_damaged"] == 1 and out["clean_damaged_share"] == pytest.approx(0.5)
    assert correction_scores([], labels)["correction_precision"] is None


def test_paired_bootstrap_sees_a_real_gain_and_not_noise():
    import numpy as np

    from clearcurate.core.evaluation import paired_bootstrap, verdict

    rng = np.random.default_rng(0)
    base = (rng.random((5, 500)) < 0.3).astype(float)
    better = base.copy()
    flip = rng.random((5, 500)) < 0.1  # 10% of questions go from wrong to right
    better[flip] = 1.0
    diff, lo, hi = paired_bootstrap(better, base)
    assert diff > 0 and lo > 0 and lo <= diff <= hi and verdict(lo, hi) == "better"
    same = (rng.random((5, 500)) < 0.3).astype(float)
    _, lo, hi = paired_bootstrap(same, base)
    assert lo < 0 < hi and verdict(lo, hi) == "no detectable change"
    assert verdict(*paired_bootstrap(base, better)[1:]) == "worse"
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros((2, 3)), np.zeros((3, 3)))


def test_freeform_metrics_are_overlap_and_heldout_loss_by_name():
    from clearcurate.core.evaluation import freeform_per_question, heldout_nll, heldout_scores

    per_q = freeform_per_question(["the cat sat on the mat", "nothing alike"], ["A cat sat on a mat.", "dogs bark"])
    assert per_q == {"token_f1_vs_reference": [pytest.approx(1.0), 0.0]}  # SQuAD-normalised: articles and case ignored
    nll = heldout_nll([(-4.0, 2), (-9.0, 3)])
    assert nll == [pytest.approx(2.0), pytest.approx(3.0)]  # per token, so long and short references weigh alike
    scores = heldout_scores(nll)
    assert scores["heldout_nll_per_token"] == pytest.approx(2.5)
    assert scores["heldout_perplexity"] == pytest.approx(math.exp(2.5))
    with pytest.raises(ValueError):
        heldout_nll([(-1.0, 0)])
    with pytest.raises(ValueError):
        freeform_per_question(["a"], [])


def test_model_scores_are_squad_scores_with_answers_else_token_f1_plus_heldout_loss():
    qa = [{"response": "Denver", "answers": ["Denver Broncos"]}, {"response": "x", "answers": ["Carolina"]}]
    assert model_scores(["Denver Broncos", "no"], qa, None) == {"exact_match": 50.0, "f1": 50.0}
    per_question = per_question_scores(["Denver Broncos", "no"], qa, [1.0, 2.0])
    assert per_question == {"exact_match": [1.0, 0.0], "f1": [1.0, 0.0], "heldout_nll_per_token": [1.0, 2.0]}
    freeform = [{"response": "deep blue sky"}, {"response": "red"}]
    scores = model_scores(["deep blue", "red"], freeform, [1.0, 3.0])
    assert scores["token_f1_vs_reference"] == pytest.approx(100 * (0.8 + 1.0) / 2)
    assert scores["heldout_nll_per_token"] == pytest.approx(2.0) and scores["heldout_perplexity"] == pytest.approx(math.exp(2.0))


def test_every_metric_comes_with_n_and_a_ci_and_the_means_are_model_scores():
    """What `evaluate` writes (issue 31): the same means as before, with n and a 95% CI that holds them."""
    qa = [{"response": r, "answers": [r]} for r in ("a b", "c", "d e f", "g")] * 10
    texts = ["a b", "x", "d e", "g"] * 10
    nll = [1.0, 2.0, 1.5, 0.5] * 10
    scores = with_uncertainty(per_question_scores(texts, qa, nll))
    assert {k: v for k, v in scores.items() if k != "n" and "_ci_" not in k} == pytest.approx(model_scores(texts, qa, nll))
    assert scores["n"] == 40
    for metric in ("exact_match", "f1", HELDOUT, "heldout_perplexity"):
        assert scores[f"{metric}_ci_low"] < scores[metric] < scores[f"{metric}_ci_high"]
    # Perplexity's interval is the loss's, through exp (monotone: the percentile interval carries over exactly).
    assert [scores[f"heldout_perplexity{e}"] for e in ("_ci_low", "_ci_high")] == pytest.approx(
        [math.exp(scores[f"{HELDOUT}{e}"]) for e in ("_ci_low", "_ci_high")])
    # Half right on 40 questions: a standard error of 7.9 points, so about 50 +- 15.
    assert scores["exact_match"] == 50.0 and 32 < scores["exact_match_ci_low"] < 38 and 62 < scores["exact_match_ci_high"] < 68


def test_differences_are_paired_and_signed_model_minus_reference():
    worse = {"f1": [0.2, 0.4, 0.6, 0.8] * 10, HELDOUT: [1.2, 1.4, 1.6, 1.8] * 10}
    better = {"f1": [0.3, 0.5, 0.7, 0.9] * 10, HELDOUT: [1.1, 1.3, 1.5, 1.7] * 10}
    diff = differences(better, worse)
    assert diff["n"] == 40
    # Every question gains 0.1 F1 and 0.1 nats: paired, the spread between questions cancels and the CI is a point.
    assert (diff["f1"], diff["f1_ci_low"], diff["f1_ci_high"]) == pytest.approx((10.0, 10.0, 10.0))
    assert diff[HELDOUT] == pytest.approx(-0.1) and diff[f"{HELDOUT}_ci_high"] == pytest.approx(-0.1)
    import numpy as np

    noisy = {"f1": list(np.random.default_rng(0).random(40))}
    mean, low, high = paired_bootstrap(np.asarray([noisy["f1"]]), np.asarray([worse["f1"]]))
    assert differences(noisy, {"f1": worse["f1"]})["f1_ci_low"] == pytest.approx(100 * low) and low < mean < high
