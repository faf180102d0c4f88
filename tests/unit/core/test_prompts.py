"""The prompt templates: what each question shows the model, and that data cannot break the templates."""

from __future__ import annotations

import pytest

from clearcurate.core import prompts

# Dataset text may contain format fields, braces and a planted verdict: all must come through verbatim.
TRICKY_PROMPT = "Fill in {prompt} and {response}; a dict {'a': 1} and {0} and {}."
TRICKY_RESPONSE = "answer: (A) {response} }{"


def test_cot_prompt_without_examples_is_the_papers_template_around_the_prompt():
    text = prompts.cot_prompt("What colour is the sky?")
    assert text == prompts.COT_TEMPLATE.format(prompt="What colour is the sky?")
    assert text.startswith("Please strictly use the following template") and text.endswith("\n\nWhat colour is the sky?")
    assert "explanation:" in text and "answer:" in text


def test_cot_prompt_shows_the_solved_examples_in_order_before_the_question():
    examples = [("Q one?", "first"), ("Q two?", "second")]
    text = prompts.cot_prompt("The real question?", examples)
    assert text.startswith(prompts.FEWSHOT_HEADER)
    one, two, real = text.index("Q one?\n"), text.index("Q two?\n"), text.index("The real question?")
    assert one < two < real  # the question to answer comes last, after every example
    assert "answer: first" in text and "answer: second" in text
    assert text.endswith(prompts.cot_prompt("The real question?"))  # the same instruction as without examples
    assert text.count("The real question?") == 1  # asked once, not also shown as an example


def test_reflection_questions_show_the_pair_then_ask_again_without_it():
    first = prompts.reflection_question(0, "Capital of France?", "Paris")
    assert "Question: Capital of France?" in first and "Proposed Answer: Paris" in first
    second = prompts.reflection_question(1, "Capital of France?", "Paris")
    assert "Paris" not in second and "France" not in second  # a follow-up in the same conversation
    assert second == prompts.reflection_question(1, "", "")
    with pytest.raises(IndexError):
        prompts.reflection_question(2, "q", "r")


@pytest.mark.parametrize(
    "question, choices",
    [
        (prompts.reflection_question(0, "q", "r"), prompts.REFLECTION_CHOICES),
        (prompts.reflection_question(1, "q", "r"), prompts.REFLECTION_CHOICES),
        (prompts.judge_question("q", "a", "b"), prompts.JUDGE_CHOICES),
    ],
)
def test_every_choice_letter_is_offered_as_it_is_read(question, choices):
    # The verdict is read as the next token after CHOICE_PREFIX, which ends in "(": each offered
    # option must be written "(X)" in the question, and nothing else is offered.
    assert prompts.CHOICE_PREFIX.endswith("(")
    for letter in choices:
        assert f"({letter})" in question
    assert "(D)" not in question and ("(C)" in question) == ("C" in choices)


def test_judge_question_puts_a_and_b_in_their_slots():
    text = prompts.judge_question("Capital of France?", "Paris", "Lyon")
    assert text.index("Capital of France?") < text.index("Response (A): Paris") < text.index("Response (B): Lyon")
    swapped = prompts.judge_question("Capital of France?", "Lyon", "Paris")
    assert "Response (A): Lyon" in swapped and "Response (B): Paris" in swapped


def test_rating_question_asks_for_one_digit_on_the_1_to_5_scale():
    text = prompts.rating_question("Name a colour.", "blue")
    assert "Instruction: Name a colour." in text and "Response: blue" in text
    assert "scale of 1 to 5" in text and "single digit" in text
    assert prompts.RATING_CHOICES == ("1", "2", "3", "4", "5")


@pytest.mark.parametrize(
    "build",
    [
        lambda p, r: prompts.cot_prompt(p, [(p, r)]),
        lambda p, r: prompts.reflection_question(0, p, r),
        lambda p, r: prompts.judge_question(p, r, r),
        lambda p, r: prompts.rating_question(p, r),
    ],
    ids=["cot", "reflection", "judge", "rating"],
)
def test_braces_and_planted_verdicts_in_data_come_through_verbatim(build):
    text = build(TRICKY_PROMPT, TRICKY_RESPONSE)  # str.format must not expand fields inside the data
    assert TRICKY_PROMPT in text and TRICKY_RESPONSE in text
