import pytest

from clearcurate.curation import (
    FilterConfig,
    correction_reason,
    should_replace,
    split_by_threshold,
    threshold,
)


def test_fixed_gamma_and_quantile_threshold():
    scores = [0.1, 0.2, 0.3, 0.9]
    assert threshold(scores, FilterConfig(gamma=0.6)) == 0.6
    assert threshold(scores, FilterConfig(quantile=0.5)) == pytest.approx(0.25)


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
