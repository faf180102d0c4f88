import pytest

from clearcurate.evaluation import detection_scores, squad_scores


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
