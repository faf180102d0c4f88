"""How many tokens to generate: enough to be compared with a reference of known length.

A fixed budget truncates long answers (free-form responses, worked solutions), and a truncated
sample or prediction looks unlike its full-length reference, so consistency and text overlap end
up measuring length instead of content. The budget grows with the reference, between a floor
(short answers keep the budget they always had) and a cap (cost stays bounded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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
