"""Plot data for `dvc plots`: what the curation did, as small JSON tables DVC renders and diffs.

Pure functions over the stage outputs, so the numbers behind a plot are testable without DVC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clearcurate import outcomes
from clearcurate.outcomes import Outcome
from clearcurate.records import Record


def confidence_histogram(scored: Sequence[Record], outcome: Mapping[str, str], bins: int = 20) -> list[dict[str, float]]:
    """Rows per confidence bin, split by final outcome (kept / corrected / removed).

    Corrected rows were removed by the filter and then rewritten, so kept vs the other two is
    the filter's cut, and corrected vs removed is Auto-Correct's.
    """
    counts = {o.value: [0] * bins for o in (Outcome.KEPT, Outcome.CORRECTED, Outcome.REMOVED)}
    for row in scored:
        name = outcome.get(row["id"])
        if name in counts:
            index = min(int(float(row["confidence"]) * bins), bins - 1)
            counts[name][index] += 1
    return [
        {"confidence": round((i + 0.5) / bins, 6), **{name: counts[name][i] for name in counts}}
        for i in range(bins)
    ]


def outcome_counts(entries: Sequence[Record]) -> list[dict[str, int | str]]:
    """Rows per curation outcome, every outcome listed (0 when none), in a fixed order."""
    return [{"outcome": name, "rows": n} for name, n in outcomes.outcome_counts(entries).items()]
