"""Rule-based checks of a response's own content, needing no model: its arithmetic.

A worked solution that states `48 / 2 = 26` is wrong whatever a model thinks of it, and a small
model cannot tell: on GSM8K rows with one altered step, every model-based component is at or
below chance (docs/curation.md). Checking each written calculation catches those rows, and
most wrong solutions that models write, without flagging correct ones (about 2% of clean GSM8K
solutions have a calculation that does not hold; many are real slips in GSM8K itself).

Only complete calculations are checked: `left = right` where both sides are plain arithmetic
(digits, `+ - * /`, the times and division signs, a spaced `x` for times, brackets, `$` and
thousands commas) and the left side calculates something. Anything else (units between the
numbers, percentages, mixed numbers such as "5 and 2/3", clock times, algebra, division by a
written fraction, a label before the `=` such as "Week 2 = 35 + 35") is skipped, not guessed, so
text without calculations gets no verdict. So is a result off by an exact power of ten
("$1 / 2 = 50 cents", "5 * 3 = $15,000" losses in thousands): a change of unit, written loosely,
far more often than a slip (benchmarks/curation/dev_defects.py read every flag on clean GSM8K rows).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass

# Runs of arithmetic text on either side of an `=`: digits, decimal points, thousands commas, `$`,
# brackets, + - * /, the times and division signs, and x as times when spaced ("3 x 4"; "3x" is
# algebra). A run longer than _MAX_RUN characters is not a calculation a person wrote.
_RUN_CHARS = frozenset("0123456789$.,()+-*/×÷–− ")
_MAX_RUN = 200
_OPERATORS = set("+-*/x×÷–−")
# "28 / 1/5" means 28 divided by a fifth, which plain precedence reads as 5.6: such notation is skipped.
_OVER_FRACTION = re.compile(r"/\s*\d+\s*/")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expr: str) -> float | None:
    """The value of a plain arithmetic expression as worked solutions write it (x for times, $ and
    commas), else None."""
    text = expr.replace(" x ", " * ").replace("÷", "/").replace("×", "*").replace("–", "-").replace("−", "-")
    text = text.replace("$", "").replace(",", "").strip()

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        raise ValueError("not arithmetic")

    try:
        return value(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


@dataclass(frozen=True)
class Step:
    """One written calculation: `left = right`, their values, and whether they agree."""

    left: str
    right: str
    left_value: float
    right_value: float
    holds: bool


def _is_calculation(text: str) -> bool:
    return any(c in _OPERATORS for c in text.lstrip("-").replace(" x ", "*"))


def _left_side(run: str) -> tuple[str, float] | None:
    """The calculation ending at `=`, or None when it continues text that is not arithmetic.

    A run can start with a number of the previous sentence ("5 apples. 3 + 2 = 5" gives
    "5. 3 + 2"): a leading token that ends with "." or "," is dropped until the rest parses, never
    another ("60 students x 2/3 = 40" is not the calculation 2/3, "1 1/2 * 60" not 1/2 * 60), and
    a run that starts with an operator continues an earlier result ("= 7 + 2 = 9"), which the
    previous `=` already compared.
    """
    tokens = run.split()
    for i in range(len(tokens)):
        # Only a token that ends a sentence or clause is dropped: "1 1/2 * 60" is a mixed number.
        if i and tokens[i - 1][-1] not in ".,":
            return None
        if i and re.fullmatch(r"\d{1,3},", tokens[i - 1]) and re.fullmatch(r"\d{3}\b.*", tokens[i]):
            return None  # "14, 400 / 80": a thousands number with a stray space, not "400 / 80"
        candidate = " ".join(tokens[i:])
        if candidate[0] in _OPERATORS or _OVER_FRACTION.search(candidate):
            return None
        if (value := evaluate(candidate)) is not None:
            return candidate, value
    return None


def _right_side(run: str, after: str) -> tuple[str, float] | None:
    """The value stated after `=`, or None when the text goes on as algebra or a unit ("5A", "20%")."""
    text = run.rstrip(" ,.")
    if not text.strip() or (run == run.rstrip() and (after[:1].isalpha() or after[:1] == "%")):
        return None
    if _OVER_FRACTION.search(text) or (value := evaluate(text)) is None:
        return None
    return text.strip(), value


def _decimals(text: str) -> int:
    """The most decimals any number in `text` is written with: how finely its author rounded."""
    return max((len(d) for d in re.findall(r"\.(\d+)", text)), default=0)


def _in_run(text: str, i: int) -> bool:
    c = text[i]
    return c in _RUN_CHARS or (c == "x" and 0 < i < len(text) - 1 and text[i - 1] == " " and text[i + 1] == " ")


def _run_end(text: str, start: int, step: int) -> int | None:
    """Where the arithmetic run that starts at `start` and goes in direction `step` (1 or -1) stops,
    or None when it is longer than _MAX_RUN."""
    i = start
    while 0 <= i < len(text) and _in_run(text, i):
        if abs(i - start) >= _MAX_RUN:
            return None
        i += step
    return i


_MIXED_BEFORE = re.compile(r"\d\s+and\s*$")  # "1 and 1/4 + ... = ...": the left side starts a mixed number's fraction
_MIXED_AFTER = re.compile(r"\s*and\s*\(?\d+\s*/\s*\d")  # "17/3 = 5 and 2/3": the right side is a mixed number
_FRACTION = re.compile(r"\(?\d+\s*/\s*\d")


def _scaled(left: float, right: float) -> bool:
    """Whether the sides differ by an exact power of ten (10 to a million): a change of unit."""
    if left == 0 or right == 0:
        return False
    exponent = math.log10(abs(right / left))
    return 1 <= abs(round(exponent)) <= 6 and abs(exponent - round(exponent)) < 1e-9


def arithmetic_steps(text: str) -> list[Step]:
    """Every complete calculation written in `text`, checked (linear in its length)."""
    steps = []
    for m in re.finditer(r"(?<![<>=!])=(?!=)", text):
        pos = m.start()
        before, end = _run_end(text, pos - 1, -1), _run_end(text, pos + 1, 1)
        if before is None or end is None:
            continue
        if text[before : before + 1] == ":" or text[end : end + 1] == ":" or _MIXED_AFTER.match(text[end : end + 16]):
            continue  # a clock time ("6:00+48=6:48") or a mixed number on the right
        left = _left_side(text[before + 1 : pos])
        right = _right_side(text[pos + 1 : end], text[end : end + 1])
        if left is None or right is None or not _is_calculation(left[0]) or _scaled(left[1], right[1]):
            continue
        start = text.rfind(left[0], 0, pos)
        if _FRACTION.match(left[0]) and _MIXED_BEFORE.search(text[max(0, start - 16) : start]):
            continue  # the left side starts inside a mixed number ("12 x 1 and 1/4 = 15")
        tolerance = 0.5 * 10 ** -_decimals(right[0]) + 1e-9 if not _is_calculation(right[0]) else 1e-6 * max(1.0, abs(left[1]))
        steps.append(Step(left[0], right[0], left[1], right[1], abs(left[1] - right[1]) <= tolerance))
    return steps


def arithmetic(text: str) -> float | None:
    """The share of the written calculations that hold, or None when the text has none."""
    steps = arithmetic_steps(text)
    if not steps:
        return None
    return sum(s.holds for s in steps) / len(steps)
