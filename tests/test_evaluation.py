import pytest

from clearcurate.evaluation import (
    detection_scores,
    final_number,
    final_number_scores,
    squad_scores,
)


def test_squad_scores_take_best_reference():
    scores = squad_scores(["Denver Broncos", "the panthers"], [["Broncos", "Denver Broncos"], ["Carolina Panthers"]])
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (1.0 + 2 / 3) / 2)


def test_detection_auroc_precision_recall():
    conf = {"a": 0.9, "b": 0.8, "c": 0.2, "d": 0.6}
    noisy = {"a": False, "b": False, "c": True, "d": True}
    out = detection_scores(conf, noisy, removed={"c", "b"})
    assert out["auroc"] == pytest.approx(1.0)
    assert out["filter_precision"] == pytest.approx(0.5)
    assert out["filter_recall"] == pytest.approx(0.5)
    assert "auroc" not in detection_scores({"a": 0.1}, {"a": True}, set())


def test_final_number_reads_the_committed_answer():
    assert final_number("48/2 = 24 clips\n#### 1,200") == "1200"
    assert final_number("so she pays 3.50 and then 7.") == "7"  # no ####: the last number
    assert final_number("#### 72.0") == "72"
    assert final_number("#### -5") == "-5"
    assert final_number("no numbers here") is None


def test_final_number_scores():
    scores = final_number_scores(["x #### 72", "the answer is 5", "nothing"], [["72"], ["6"], ["1"]])
    assert scores["exact_match"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError):
        final_number_scores([], [])
