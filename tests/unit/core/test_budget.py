import pytest

from clearcurate.core.budget import token_budget, typical_floor


def test_short_references_keep_the_floor_and_long_ones_grow_to_the_cap():
    assert token_budget(5, floor=32, cap=256) == 32  # a short answer keeps the old fixed budget
    assert token_budget(100, floor=32, cap=256) == 158  # 1.5 x 100 + 8: room to say the same thing
    assert token_budget(1000, floor=32, cap=256) == 256
    assert token_budget(1000, floor=32, cap=0) == 32  # cap 0: a fixed budget


@pytest.mark.parametrize("args", [(10, 0, 256), (10, 32, 16), (-1, 32, 256), (10, 32, -1)])
def test_impossible_budgets_are_refused(args):
    with pytest.raises(ValueError):
        token_budget(*args)


def test_the_data_floor_follows_the_kept_answers_long_tail_and_leaves_short_answer_data_alone():
    free_form = [20] * 80 + [100] * 20  # 90th percentile: 100 tokens
    assert typical_floor(free_form, floor=32, cap=256) == token_budget(100, 32, 256) == 158
    assert typical_floor([3, 5, 8, 12] * 25, floor=32, cap=256) == 32  # spans: the floor as it was
    assert typical_floor([1000] * 10, floor=32, cap=256) == 256  # never past the cap
    assert typical_floor([], floor=32, cap=256) == 32 and typical_floor(free_form, floor=32, cap=0) == 32  # fixed budget
