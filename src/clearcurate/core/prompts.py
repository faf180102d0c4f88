"""Prompt templates, kept apart from scoring math and from model calls.

The wording follows the CLEAR / BSDetector papers. For a local model the letter of a
multiple-choice question is read from next-token probabilities right after an assistant-turn
prefix that ends in "(" (see `CHOICE_PREFIX`), so nothing a response says (for example a planted
"answer: A") can move where the verdict is read from.
"""

from __future__ import annotations

from collections.abc import Sequence

COT_TEMPLATE = (
    "Please strictly use the following template to provide answer: "
    "explanation: [insert step-by-step analysis], answer: [provide your answer]\n\n{prompt}"
)
FEWSHOT_EXAMPLE = "{prompt}\nexplanation: the answer is stated in the text.\nanswer: {response}"
FEWSHOT_HEADER = "Here are solved examples that show the expected answer format.\n\n"

REFLECTION_QUESTIONS = (
    "Question: {prompt}\n\nProposed Answer: {response}\n\n"
    "Is the proposed answer: (A) Correct (B) Incorrect (C) I am not sure. "
    "The output should strictly use the following template: "
    "explanation: [insert analysis], answer: [choose one letter from among choices A through C]",
    "Are you really sure the proposed answer is correct? Choose again: "
    "(A) Correct (B) Incorrect (C) I am not sure. "
    "The output should strictly use the following template: "
    "explanation: [insert analysis], answer: [choose one letter from among choices A through C]",
)
REFLECTION_CHOICES = ("A", "B", "C")

JUDGE_TEMPLATE = (
    "Question: {prompt}\n\nResponse (A): {a}\n\nResponse (B): {b}\n\n"
    "Which response answers the question better? Choose (A) or (B). "
    "The output should strictly use the following template: answer: [A or B]"
)
JUDGE_CHOICES = ("A", "B")

CHOICE_PREFIX = "answer: ("

# Direct rating baseline (AlpaGasus, Chen et al. 2024), on a 1-5 scale; the digit is read from
# next-token probabilities after RATING_PREFIX.
RATING_TEMPLATE = (
    "We would like to request your feedback on the performance of an AI assistant in response to "
    "the instruction displayed below.\n\nInstruction: {prompt}\n\nResponse: {response}\n\n"
    "Please rate the accuracy of the response to the instruction on a scale of 1 to 5, where a "
    "higher score indicates a more accurate response. Answer with a single digit."
)
RATING_CHOICES = ("1", "2", "3", "4", "5")
RATING_PREFIX = "Score: "


def cot_prompt(prompt: str, examples: Sequence[tuple[str, str]] = ()) -> str:
    """The paper's chain-of-thought sampling prompt, optionally preceded by solved examples.

    Examples drawn from the dataset itself show a small model the dataset's answer format, so
    its samples become comparable with the dataset's responses.
    """
    body = COT_TEMPLATE.format(prompt=prompt)
    if not examples:
        return body
    shots = "\n\n".join(FEWSHOT_EXAMPLE.format(prompt=p, response=r) for p, r in examples)
    return FEWSHOT_HEADER + shots + "\n\n" + body


def reflection_question(index: int, prompt: str, response: str) -> str:
    return REFLECTION_QUESTIONS[index].format(prompt=prompt, response=response)


def judge_question(prompt: str, a: str, b: str) -> str:
    return JUDGE_TEMPLATE.format(prompt=prompt, a=a, b=b)


def rating_question(prompt: str, response: str) -> str:
    return RATING_TEMPLATE.format(prompt=prompt, response=response)
