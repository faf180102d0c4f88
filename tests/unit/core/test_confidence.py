import math

import pytest

from clearcurate.core import confidence as cf


def test_normalize_and_exact_match_follow_squad():
    assert cf.normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert cf.exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert cf.exact_match("Broncos", "Denver Broncos") == 0.0


def test_token_f1_partial_and_disjoint():
    assert cf.token_f1("Denver Broncos", "Denver Broncos") == 1.0
    assert cf.token_f1("Denver", "Denver Broncos") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert cf.token_f1("Carolina Panthers", "Denver Broncos") == 0.0
    assert cf.token_f1("", "") == 1.0
    assert cf.token_f1("", "x") == 0.0


def test_extract_answer_takes_last_answer_field():
    text = "explanation: the text says so, answer: in 1802\nmore words"
    assert cf.extract_answer(text) == "in 1802"
    assert cf.extract_answer("Answer: A. answer: B") == "B"
    assert cf.extract_answer("no template at all") == "no template at all"


def test_observed_consistency_is_the_paper_formula():
    sims, ems = [1.0, 0.5, 0.0], [1.0, 0.0, 0.0]
    expected = ((0.8 * 1 + 0.2 * 1) + (0.8 * 0.5) + 0.0) / 3
    assert cf.observed_consistency(sims, ems, alpha=0.8) == pytest.approx(expected)
    assert cf.observed_consistency([], [], alpha=0.8) == 0.0
    with pytest.raises(ValueError):
        cf.observed_consistency([1.0], [], alpha=0.8)


def test_reflection_certainty_maps_abc_to_1_0_half():
    assert cf.reflection_certainty([1, 0, 0]) == 1.0
    assert cf.reflection_certainty([0, 1, 0]) == 0.0
    assert cf.reflection_certainty([0, 0, 1]) == 0.5
    assert cf.reflection_certainty([0.2, 0.2, 0.6]) == pytest.approx(0.2 + 0.3)
    assert cf.reflection_certainty([2, 0, 2]) == pytest.approx(0.75)  # renormalised
    with pytest.raises(ValueError):
        cf.reflection_certainty([0.5, 0.5])


def test_combine_paper_weights_and_custom_weights():
    comps = {"consistency": 0.4, "reflection": 1.0, "likelihood": 0.0}
    assert cf.combine(comps, cf.paper_weights(0.7)) == pytest.approx(0.7 * 0.4 + 0.3 * 1.0)
    assert cf.combine(comps, {"consistency": 1, "likelihood": 1}) == pytest.approx(0.2)
    assert cf.combine(comps, {"consistency": 1, "reflection": 0}) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="unknown"):
        cf.combine(comps, {"nope": 1})
    with pytest.raises(ValueError, match="zero"):
        cf.combine(comps, {"consistency": 0})
    with pytest.raises(ValueError):
        cf.paper_weights(1.5)


def test_likelihood_ratio_is_capped_and_decays():
    assert cf.likelihood_ratio(-3.0, -5.0) == 1.0
    assert cf.likelihood_ratio(-5.0, -3.0) == pytest.approx(math.exp(-2.0))
    assert cf.likelihood_ratio(-13.0, -3.0, scale=5.0) == pytest.approx(math.exp(-2.0))
    with pytest.raises(ValueError):
        cf.likelihood_ratio(0.0, 0.0, scale=0.0)


@pytest.mark.parametrize("candidate_is_a, expected", [(True, 0.8), (False, 0.2)])
def test_candidate_preference_maps_ab_slots(candidate_is_a, expected):
    assert cf.candidate_preference([0.8, 0.2], candidate_is_a) == pytest.approx(expected)


def test_candidate_preference_renormalises_over_a_and_b():
    assert cf.candidate_preference([0.3, 0.1, 0.6], True) == pytest.approx(0.75)


def test_relevance_is_zero_when_the_prompt_does_not_help():
    from clearcurate.core.confidence import relevance

    assert relevance(-20.0, -20.0, 10) == 0.0
    assert relevance(-25.0, -20.0, 10) == 0.0  # the prompt makes it less likely: clipped
    assert relevance(-10.0, -20.0, 10) == pytest.approx(1 - math.exp(-1.0))
    assert relevance(-1.0, -20.0, 10) > relevance(-10.0, -20.0, 10)
    with pytest.raises(ValueError):
        relevance(-1.0, -2.0, 0)


def test_length_agreement_compares_with_the_samples_not_with_a_fixed_length():
    assert cf.length_agreement(40, [38, 40, 45]) == 1.0  # a long answer where the model answers long
    assert cf.length_agreement(4, [3, 4, 6]) == 1.0  # a short one where it answers short
    assert cf.length_agreement(40, [4, 5, 4]) == pytest.approx(math.exp(-math.log(10)))  # a sentence for a span
    assert cf.length_agreement(10, [40, 40, 40]) == pytest.approx(0.25)  # cut off at a quarter
    assert cf.length_agreement(10, [40, 40, 40], scale=2.0) == pytest.approx(0.5)
    for bad in ((0, [3]), (3, []), (3, [0, 2])):
        with pytest.raises(ValueError):
            cf.length_agreement(*bad)


def test_token_rate_puts_long_and_short_texts_on_one_scale():
    assert cf.token_rate(-30.0, 60) == cf.token_rate(-2.5, 5) == -0.5
    with pytest.raises(ValueError):
        cf.token_rate(-1.0, 0)


def test_penalized_lowers_only_rows_with_a_defect():
    assert cf.penalized(0.8, False, 0.1) == 0.8
    assert cf.penalized(0.8, True, 0.1) == pytest.approx(0.08)
    assert cf.penalized(0.8, True, 1.0) == 0.8  # a penalty of 1 turns the checks off
    with pytest.raises(ValueError, match="penalty"):
        cf.penalized(0.8, True, 1.5)


def test_fluency_is_the_per_token_likelihood_on_0_1():
    assert cf.fluency(-10.0, 10) == pytest.approx(math.exp(-1.0))
    assert cf.fluency(-10.0, 10, scale=2.0) == pytest.approx(math.exp(-0.5))
    assert cf.fluency(-10.0, 10) == cf.fluency(-20.0, 20)  # a rate: length alone changes nothing
    assert cf.fluency(0.5, 1) == 1.0
    with pytest.raises(ValueError):
        cf.fluency(-1.0, 0)
    with pytest.raises(ValueError):
        cf.fluency(-1.0, 1, scale=0.0)


def test_length_adjusted_values_follow_no_length_trend_and_single_out_a_row_off_it():
    from scipy.stats import spearmanr

    lengths = [5 + 7 * i for i in range(40)]
    values = [0.9 - 0.15 * math.log(n) + 0.01 * ((i * 7) % 5 - 2) for i, n in enumerate(lengths)]  # falls with length
    assert spearmanr(lengths, values).statistic < -0.9
    adjusted = cf.length_adjusted(values, lengths)
    assert all(0.0 < a < 1.0 for a in adjusted)
    assert abs(spearmanr(lengths, adjusted).statistic) < 0.3  # the length trend is gone
    values[20] -= 0.3  # one response reads far worse than others of its length
    adjusted = cf.length_adjusted(values, lengths)
    assert min(range(40), key=adjusted.__getitem__) == 20 and adjusted[20] < 0.01
    assert max(adjusted) < 0.9  # the rest sit near the line


def test_length_adjusted_with_spread_stops_short_responses_filling_both_tails():
    """A per-token rate over a few tokens varies far more than one over hundreds: one spread for all
    lengths puts the short responses at both ends; the spread at each length puts them in proportion."""
    lengths = [2 + (i % 4) for i in range(40)] + [100 + 10 * (i % 10) for i in range(80)]
    values = [0.5 + (0.3 if n < 10 else 0.03) * ((i * 37) % 11 - 5) / 5 for i, n in enumerate(lengths)]
    short = range(40)

    def tails(adjusted: list[float]) -> int:  # short responses among the lowest and highest 15
        order = sorted(range(len(adjusted)), key=adjusted.__getitem__)
        return sum(i in short for i in order[:15] + order[-15:])

    assert tails(cf.length_adjusted(values, lengths)) == 30  # every extreme is a short response
    spread = cf.length_adjusted(values, lengths, spread=True)
    assert tails(spread) <= 16  # about their third of the rows
    assert all(0.0 < a < 1.0 for a in spread)
    values[60] -= 0.3  # a long response far off its length's (narrow) spread still stands out
    assert min(range(120), key=cf.length_adjusted(values, lengths, spread=True).__getitem__) == 60
    assert cf.length_adjusted([0.3, 0.3, 0.3], [4, 9, 20], spread=True) == [0.5, 0.5, 0.5]


def test_length_adjusted_edge_cases():
    assert cf.length_adjusted([], []) == []
    assert cf.length_adjusted([0.3, 0.3, 0.3], [4, 9, 20]) == [0.5, 0.5, 0.5]  # nothing stands out
    same_length = cf.length_adjusted([0.2, 0.5, 0.8], [7, 7, 7])  # no line to fit: against the mean
    assert same_length[0] < 0.5 < same_length[2] and same_length[1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one length per value"):
        cf.length_adjusted([0.1, 0.2], [3])
    with pytest.raises(ValueError, match="at least 1 token"):
        cf.length_adjusted([0.1], [0])


def test_length_adjusted_per_group_removes_a_gap_between_kinds_that_one_line_keeps():
    """Two kinds of response at overlapping lengths, one read as likelier per token (worked solutions
    against open answers): one line over the mix ranks a whole kind low; one line per kind does not."""
    from scipy.stats import spearmanr

    lengths = [20 + 5 * (i % 20) for i in range(80)]
    kind = ["solution" if i < 40 else "answer" for i in range(80)]
    values = [(0.8 if k == "solution" else 0.4) - 0.05 * math.log(n) + 0.01 * ((i * 7) % 5 - 2)
              for i, (n, k) in enumerate(zip(lengths, kind))]
    pooled = cf.length_adjusted(values, lengths)
    grouped = cf.length_adjusted(values, lengths, kind)
    gap = lambda adj: sum(adj[:40]) / 40 - sum(adj[40:]) / 40  # noqa: E731
    assert gap(pooled) > 0.6 and abs(gap(grouped)) < 0.05
    assert abs(spearmanr(lengths[:40], grouped[:40]).statistic) < 0.3  # each kind's own trend is gone
    assert grouped[:40] == pytest.approx(cf.length_adjusted(values[:40], lengths[:40]))  # a group alone is as if scored alone


def test_length_adjusted_pools_small_groups_and_checks_its_inputs():
    lengths = [10 + i for i in range(30)]
    values = [0.5 + 0.01 * (i % 3) for i in range(30)]
    groups = ["big"] * 20 + [f"tiny{i % 3}" for i in range(10)]  # three groups of 3-4 rows: one shared line
    out = cf.length_adjusted(values, lengths, groups)
    assert out[20:] == pytest.approx(cf.length_adjusted(values[20:], lengths[20:]))
    assert out[:20] == pytest.approx(cf.length_adjusted(values[:20], lengths[:20]))
    assert cf.MIN_GROUP_ROWS == 10
    with pytest.raises(ValueError, match="one group"):
        cf.length_adjusted([0.1, 0.2], [3, 4], ["a"])
