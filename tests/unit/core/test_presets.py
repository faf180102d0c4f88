"""Which weighting applies: `auto` picks a preset by the median response length; explicit weights win."""

from __future__ import annotations

from dataclasses import replace

import pytest

from clearcurate.config import ScoreConfig
from clearcurate.core import presets
from clearcurate.core.confidence import FOLD_COMPONENTS, SAMPLED_COMPONENTS, paper_weights


def test_auto_picks_short_up_to_16_median_tokens_and_free_form_above() -> None:
    cfg = ScoreConfig()
    assert cfg.weights == "auto"
    assert presets.choose(cfg, [3, 5, 200]) == "short"  # the median, not the mean
    assert presets.choose(cfg, [16]) == "short" and presets.choose(cfg, [17]) == "free_form"
    assert presets.choose(cfg, []) == "short"  # nothing to measure: the short preset, not an error


def test_explicit_weights_and_the_paper_recipe_are_never_overridden_by_a_preset() -> None:
    assert presets.choose(replace(ScoreConfig(), weights={"consistency": 1.0}), [100]) == "custom"
    assert presets.choose(replace(ScoreConfig(), weights={}), [100]) == "paper"
    assert presets.choose(replace(ScoreConfig(), recipe="paper"), [100]) == "paper"


def test_applied_takes_the_presets_weights_and_likelihood_normalisation() -> None:
    free = presets.applied(ScoreConfig(), "free_form")
    p = presets.PRESETS["free_form"]
    assert free.weights == p.weights and free.likelihood_per == p.likelihood_per and free.likelihood_scale == p.likelihood_scale
    assert free.weights is not p.weights  # a copy: editing a config never edits the preset
    assert presets.applied(ScoreConfig(), "paper").weights == {}
    custom = replace(ScoreConfig(), weights={"relevance": 1.0})
    assert presets.applied(custom, "custom") is custom


def test_component_weights_needs_auto_resolved_and_drops_sampled_components_without_samples() -> None:
    with pytest.raises(ValueError, match="auto depends on the data"):
        presets.component_weights(ScoreConfig())
    paper = presets.applied(ScoreConfig(), "paper")
    assert presets.component_weights(paper) == paper_weights(paper.beta)
    no_samples = presets.component_weights(replace(paper, k=0))
    assert no_samples and not set(no_samples) & set(SAMPLED_COMPONENTS)


def test_every_preset_weighs_known_components_and_sums_to_one() -> None:
    known = {*FOLD_COMPONENTS, *paper_weights(0.5), "fluency"}
    for name, p in presets.PRESETS.items():
        assert set(p.weights) <= known, name
        assert sum(p.weights.values()) == pytest.approx(1.0), name


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_the_docs_preset_table_is_the_presets(name: str) -> None:
    """docs/curation.md's table of presets says what presets.py holds (issue 29 found the table giving another
    free-form weighting than the code): weights in order, length adjustment, likelihood per response or per token."""
    from helpers import ROOT

    p = presets.PRESETS[name]
    row = next(line for line in (ROOT / "docs" / "curation.md").read_text(encoding="utf-8").splitlines()
               if line.startswith(f"| `{name}` |"))
    weights = " + ".join(f"{w:g} {c}" for c, w in p.weights.items())
    assert f"| {weights}{', each against the set' if p.length_adjusted else ''}" in row, row
    assert f"| per {p.likelihood_per}" in row and f"scale {p.likelihood_scale:g} nats" in row, row
