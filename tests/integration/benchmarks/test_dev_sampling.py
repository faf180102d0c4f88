"""benchmarks/curation/dev_sampling.py: what one sampler candidate did, and the rule that picks `correct.top_p`."""

from __future__ import annotations

import sys

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks" / "curation"))
import dev_sampling

SETS = (*dev_sampling.FREE_FORM, dev_sampling.POWERED)


def _measured(rows_cut: dict[float, int], damaged: dict[float, int], removed: int = 20) -> dict:
    """Every set measured for each candidate: the free-form sets each with `rows_cut` rows cut, the powered set
    with every clean row it damaged."""
    return {f"top_p {tp}": {s: {"removed_rows": removed, "rows_with_a_sample_cut": rows_cut[tp],
                                "clean_damaged": damaged[tp] if s == dev_sampling.POWERED else 0} for s in SETS}
            for tp in rows_cut}


def test_the_rule_takes_the_largest_nucleus_that_meets_the_target_without_more_damage():
    rows_cut = {1.0: 19, 0.95: 1, 0.9: 0, 0.8: 0}
    assert dev_sampling.decide(_measured(rows_cut, {1.0: 2, 0.95: 2, 0.9: 2, 0.8: 1}))["chosen"] == 0.95
    # more damage than pure sampling disqualifies a candidate, whatever it does to the cut rows
    assert dev_sampling.decide(_measured(rows_cut, {1.0: 2, 0.95: 3, 0.9: 2, 0.8: 1}))["chosen"] == 0.9


def test_without_the_target_it_takes_the_fewest_rows_cut_only_if_that_halves_them():
    halves = dev_sampling.decide(_measured({1.0: 19, 0.95: 16, 0.9: 12, 0.8: 9}, dict.fromkeys((1.0, 0.95, 0.9, 0.8), 0)))
    assert halves["chosen"] == 0.8
    short = dev_sampling.decide(_measured({1.0: 19, 0.95: 16, 0.9: 12, 0.8: 10}, dict.fromkeys((1.0, 0.95, 0.9, 0.8), 0)))
    assert short["chosen"] == 1.0
    assert dev_sampling.decide({})["chosen"] is None  # nothing measured: no decision


def test_a_candidates_summary_counts_cut_rows_and_scores_replacements_against_the_clean_answer():
    decisions = [
        {"id": "a", "outcome": "corrected", "new": "Paris", "truncated_samples": 0, "samples": ["Paris"] * 5},
        {"id": "b", "outcome": "corrected", "new": "Rome", "truncated_samples": 2, "samples": ["Rome"] * 3 + ["x " * 9] * 2},
        {"id": "c", "outcome": "removed", "new": "", "truncated_samples": 5, "samples": ["y " * 9] * 5},
    ]
    labels = {"a": {"noisy": True, "clean_response": "Paris"}, "b": {"noisy": False, "clean_response": "Milan"},
              "c": {"noisy": True, "clean_response": "Oslo"}}
    out = dev_sampling.summary({"decisions": decisions, "labels": labels})
    assert (out["rows_with_a_sample_cut"], out["rows_with_every_sample_cut"], out["samples_cut"]) == (2, 1, 7)
    assert (out["replaced"], out["replaced_matching_clean"], out["clean_damaged"]) == (2, 1, 1)


def test_development_md_quotes_the_stored_table_and_decision():
    """The page's table is what `--table` prints from dev_sampling_results.json: a number typed by hand, or
    left behind by a rerun, fails here."""
    import json

    stored = json.loads(dev_sampling.RESULTS.read_text(encoding="utf-8"))
    page = (ROOT / "benchmarks" / "curation" / "DEVELOPMENT.md").read_text(encoding="utf-8")
    assert dev_sampling.table(stored) in page
    assert stored["decision"]["chosen"] == 1.0 and "the default stays `top_p: 1`" in page
