"""What scoring caches and how its keys are made: a result is reused only by the code and settings that made it.

Every cached sample, reflection and fold adapter is keyed by `code_version()` (SCORING_VERSION and a
hash of the source of `SCORING_MODULES`), the model and the row. Settings that only recombine stored
components (`RECOMBINE_ONLY`) stay out of stored results' keys.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence

from tqdm.auto import tqdm

from clearcurate.cache import ScoreCache, source_fingerprint
from clearcurate.core.records import Record

log = logging.getLogger(__name__)


# Part of every scoring-cache key (samples, reflections, fold adapter slots), with a hash of the
# source of the modules that compute what is cached: a cache written by other scoring code (an
# older or newer commit) is never reused. Bump it by hand when a change outside these modules
# (a library upgrade, say) changes cached results.
SCORING_VERSION = 2  # 2: samples seeded per row (prompt), not per chunk


# What produces the cached samples, reflection probabilities and fold adapters. scoring/combine.py,
# confidence.py and similarity.py are not here: they only combine cached values into components
# (after the cache), so changing them re-runs from the cache instead of sampling every row again.
SCORING_MODULES = (
    "clearcurate.scoring",
    "clearcurate.scoring.store",
    "clearcurate.scoring.samples",
    "clearcurate.scoring.reflection",
    "clearcurate.scoring.crossfit",
    "clearcurate.core.prompts",
    "clearcurate.core.budget",
    "clearcurate.llm.lora",
    "clearcurate.llm.base",
    "clearcurate.llm.hf",
    "clearcurate.llm.models",
    "clearcurate.llm.openai_api",
    "clearcurate.llm.openai_api.client",
    "clearcurate.llm.openai_api.retry",
    "clearcurate.llm.openai_api.usage",
)


@functools.cache
def _scoring_source() -> str:
    return source_fingerprint(SCORING_MODULES)


def code_version() -> str:
    """The scoring code's version in cache keys: SCORING_VERSION and the source hash of SCORING_MODULES."""
    return f"{SCORING_VERSION}-{_scoring_source()[:16]}"


def cached_rows(
    keys: Sequence[str],
    kind: str,
    cache: ScoreCache,
    compute: Callable[[list[int]], list[Record]],
    chunk: int,
    desc: str,
    show_progress: bool,
) -> list[Record]:
    """Per-row results: cached ones are read, the rest computed a chunk at a time and stored as each finishes.

    Storing per chunk is what makes a killed run resumable: at most one chunk of work is lost.
    """
    out: list[Record | None] = [cache.get(kind, k) for k in keys]
    todo = [i for i, v in enumerate(out) if v is None]
    if len(todo) < len(keys):
        log.info("%s: %d of %d rows from the cache, %d to compute", desc, len(keys) - len(todo), len(keys), len(todo))
    with tqdm(total=len(todo), desc=desc, unit="row", disable=not show_progress or not todo, leave=False) as bar:
        for start in range(0, len(todo), chunk):
            idx = todo[start : start + chunk]
            for i, value in zip(idx, compute(idx), strict=True):
                out[i] = value
                store_row(cache, kind, keys[i], value)
            bar.update(len(idx))
    return out  # type: ignore[return-value]


def store_row(cache: ScoreCache, kind: str, key: str, value: Record) -> None:
    """Cache one row's result, except an unparsed API reflection (None): that is asked again next run."""
    if None not in value.get("reflection_probs", ()):
        cache.put(kind, key, value)


# Score settings that change only how stored components combine (`confidences`), never a row's model
# work: keys of stored scoring results leave them out, so changing one recombines instead of rescoring.
RECOMBINE_ONLY = ("group_by", "defects")


# Settings added after results were stored, at the value that reproduces what was stored before they
# existed: left out of stored results' keys at that value, so those results stay found.
ADDED_AT = {"fold_by": "id"}


def stored_settings(settings: Mapping[str, object]) -> dict[str, object]:
    """The score settings a stored result's key names: all but `RECOMBINE_ONLY` and the `ADDED_AT` ones at their old behaviour."""
    return {k: v for k, v in settings.items() if k not in RECOMBINE_ONLY and not (k in ADDED_AT and v == ADDED_AT[k])}
