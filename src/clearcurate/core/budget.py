"""How many tokens to generate: enough to be compared with a reference of known length.

A fixed budget truncates long answers (free-form responses, worked solutions), and a truncated
sample or prediction looks unlike its full-length reference, so consistency and text overlap end
up measuring length instead of content. The budget grows with the reference, between a floor
(short answers keep the budget they always had) and a cap (cost stays bounded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

GROWTH = 1.5  # room for a correct answer worded longer than the reference
SLACK = 8  # and for a few tokens of preamble


def token_budget(reference_tokens: int, floor: int, cap: int) -> int:
    """max(floor, min(cap, 1.5 * reference tokens + 8)); `cap` 0 means a fixed budget of `floor`."""
    if floor < 1 or cap < 0 or reference_tokens < 0:
        raise ValueError(f"need floor >= 1, cap >= 0 and reference_tokens >= 0, got {floor}, {cap}, {reference_tokens}")
    if cap and cap < floor:
        raise ValueError(f"the token cap ({cap}) is below the floor ({floor})")
    if not cap:
        return floor
    return max(floor, min(cap, math.ceil(GROWTH * reference_tokens) + SLACK))


def token_budgets(reference_tokens: Sequence[int], floor: int, cap: int) -> list[int]:
    """`token_budget` for each reference."""
    return [token_budget(n, floor, cap) for n in reference_tokens]


TYPICAL_QUANTILE = 0.9  # of the kept responses' lengths: how long a good answer in this data may run


def typical_floor(kept_tokens: Sequence[int], floor: int, cap: int) -> int:
    """A sampling floor for Auto-Correct from the data's kept responses: the budget of their 90th-percentile
    length, never below `floor`.

    Why: a row's budget follows its removed response, but a removed response is often the wrong length for a
    good answer: an evasive template, a cut-off text, another instruction's answer. On 300 free-form rows,
    56 of the 60 removed rows had samples cut off at 32-52 tokens, and a cut-off sample is never a candidate.
    Short-answer data keeps `floor` (its kept answers need fewer tokens than that)."""
    if not kept_tokens or not cap:
        return floor
    return token_budget(int(np.quantile(np.asarray(kept_tokens), TYPICAL_QUANTILE)), floor, cap)
