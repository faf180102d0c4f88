import pytest

from clearcurate.core.verify import arithmetic, arithmetic_steps, evaluate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n#### 72", 1.0),
        ("Natalia sold 48/2 = 26 clips in May.\nShe sold 48+26 = 74 clips.\n#### 74", 0.5),  # the slip, carried
        ("He pays 3 x $5 = $15 and 2 × 4 = 8 more.", 1.0),  # spaced x and the times sign
        ("Her remaining time is 5/5 – 1/5 = 4/5 of the day.", 1.0),  # an en dash as minus
        ("She had 50-8 = 44 bracelets left.", 0.0),
        ("So he played 14*20=140 minutes", 0.0),
        ("3000 ÷ (5+1) = 500 women.", 1.0),
        ("Derek caught it 2 * 23 - 4 = 46 - 4 = 42 times.", 1.0),  # a chain: each = compared with the next
        ("The scroll is 4080 + 4080 / 2 = 4000 + 2040 = 6120 years old.", 0.0),  # a typo (4000) breaks both links
        ("She drank 200/300 = 2/3 of it.", 1.0),  # a fraction on the right
        ("It costs 10/3 = 3.33 dollars, and 7/2 = 3 full boxes fit.", 1.0),  # rounding as written
        ("He had 5 apples. 3 + 2 = 5 pears.", 1.0),  # the number of the previous sentence is not part of it
        ("Each costs 6*2.5 = $18.00", 0.0),
    ],
)
def test_written_calculations_are_checked(text, expected):
    assert arithmetic(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "No numbers here at all.",
        "There were 12 = a dozen eggs.",  # nothing calculated
        "Solve 3x-5=16 for x.",  # algebra, not times
        "Then 2x-5=13.",
        "100/5 = 5A/5 so A = 20.",  # the right side goes on as algebra
        "20% of 50 = 10 people.",  # a percentage: the left side is not plain arithmetic
        "There are 60 students x 2/3 = 40 students.",  # a unit between the numbers: "2/3" is not the calculation
        "The trip took 1 1/2 * 60 = 90 minutes.",  # a mixed number
        "Marco gets 28 / 1/5 = 140 cups.",  # division by a written fraction
        "He scored 46 - 4 = 42, then + 2 = 44.",  # "+ 2 = 44" continues a result; only the first is checked
        "Week 1 + Week 2 = 35 + 35 = 70 hours",  # a label before the = is not a calculation ("2 = 35 + 35")
        "D1 = 322 D3 = 2 * 322 = 644",
        "It takes 17/3 = 5 and 2/3 loads.",  # a mixed number on the right
        "There are 15 cups because 12 x 1 and 1/4 = 15",  # and on the left
        "He spends 50 cents because $1 / 2 = 50 cents",  # a change of unit: off by a power of ten
        "The losses are 5 * 3 = $15,000.",
        "The sun sets at 6:00+48=6:48 PM",  # a clock time
        "They read 180 pages a day because 14, 400 / 80 = 180",  # a thousands number with a stray space
    ],
)
def test_what_is_not_plain_arithmetic_is_skipped_not_guessed(text):
    steps = arithmetic_steps(text)
    assert [s.left for s in steps] == _CHECKED.get(text, []), steps  # skipped, or only the plain calculation
    assert all(s.holds for s in steps), steps


# The cases above where a plain calculation remains, and the one left side that is checked.
_CHECKED = {
    "He scored 46 - 4 = 42, then + 2 = 44.": ["46 - 4"],
    "Week 1 + Week 2 = 35 + 35 = 70 hours": ["35 + 35"],
    "D1 = 322 D3 = 2 * 322 = 644": ["2 * 322"],
}


def test_no_calculation_gives_no_verdict():
    assert arithmetic("The capital of France is Paris.") is None
    assert arithmetic("x = 5 and y == 3") is None


def test_steps_say_what_was_compared():
    (step,) = arithmetic_steps("So it cost 192*100=$1930")
    assert (step.left, step.right, step.left_value, step.right_value, step.holds) == ("192*100", "$1930", 19200.0, 1930.0, False)


def test_evaluate_reads_only_arithmetic():
    assert evaluate("$1,200 / 4") == 300.0
    assert evaluate("-3 + 5") == 2.0
    assert evaluate("__import__('os')") is None
    assert evaluate("2 ** 3") is None  # only + - * /
    assert evaluate("1 / 0") is None


def test_a_long_response_is_checked_in_bounded_runs():
    text = ("1+" * 200_000) + "1 = 3\n" + "2 * 3 = 7\n"
    steps = arithmetic_steps(text)
    assert [s.left for s in steps] == ["2 * 3"]  # the 400k-character run is not a calculation; the next line is
    assert arithmetic(text) == 0.0
