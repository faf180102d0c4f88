"""From stored samples and log-probabilities to components, and from components to a confidence: no model work,
so the benchmark recombines stored rows with it when a preset changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from clearcurate.config import ScoreConfig
from clearcurate.core import confidence as cf
from clearcurate.core import defects, presets
from clearcurate.core.presets import DEFECT_PENALTY, PRESETS
from clearcurate.core.records import Record
from clearcurate.scoring.similarity import Similarity


def likelihood(
    response_logprob: float, response_tokens: int, sample_logprobs: Sequence[float | None], sample_tokens: Sequence[int], cfg: ScoreConfig
) -> float:
    """The likelihood component: the response against the best sample, in totals or per token (`cfg.likelihood_per`)."""
    pairs = [(lp, n) for lp, n in zip(sample_logprobs, sample_tokens) if lp is not None]
    if cfg.likelihood_per == "token":
        best = max(cf.token_rate(lp, n) for lp, n in pairs)
        return cf.likelihood_ratio(cf.token_rate(response_logprob, response_tokens), best, cfg.likelihood_scale)
    return cf.likelihood_ratio(response_logprob, max(lp for lp, _ in pairs), cfg.likelihood_scale)


def component_records(
    rows: Sequence[Record], raw: Sequence[Record], cfg: ScoreConfig, similarity: Similarity, count: Callable[[Sequence[str]], list[int]]
) -> list[Record]:
    """Consistency (and likelihood and length, where the given response was scored) from the raw samples.

    `count` gives token counts for raw results stored before they carried them (text + end of turn).
    With k = 0 there are no samples: relevance only, where the given response was scored.
    """
    if cfg.k == 0:
        return [_relevance(r, cfg) for r in raw] if raw else [{} for _ in rows]
    answers = [[cf.extract_answer(t) for t in r["texts"]] for r in raw]
    flat_a = [a for ans in answers for a in ans]
    flat_r = [row["response"] for row, ans in zip(rows, answers) for _ in ans]
    sims = similarity(flat_a, flat_r).reshape(len(rows), cfg.k)
    results = []
    for i, (row, r) in enumerate(zip(rows, raw)):
        ems = [cf.exact_match(a, row["response"]) for a in answers[i]]
        part = {
            "consistency": cf.observed_consistency(list(sims[i]), ems, cfg.alpha),
            "samples": answers[i],
            "sample_similarity": [round(float(s), 4) for s in sims[i]],
            "sample_logprobs": r["sample_logprobs"],
        }
        if r["response_logprob"] is not None:
            # Per token (free form), a long response is compared with the samples' rate, not their (shorter) total.
            sample_tokens = r.get("sample_tokens") or [n + 1 for n in count(r["texts"])]
            response_tokens = r.get("response_tokens") or count([row["response"]])[0] + 1
            part["likelihood"] = likelihood(r["response_logprob"], response_tokens, r["sample_logprobs"], sample_tokens, cfg)
            part["length"] = cf.length_agreement(response_tokens, sample_tokens, cfg.length_scale)
            part["response_logprob"] = r["response_logprob"]
            part["best_sample_logprob"] = max(lp for lp in r["sample_logprobs"] if lp is not None)
            part["sample_tokens"] = sample_tokens
        results.append({**part, **_relevance(r, cfg)})
    return results


def _relevance(raw: Record, cfg: ScoreConfig) -> Record:
    """How much the prompt raises the response's likelihood under the fold model (with its inputs), where it was scored."""
    if raw.get("response_logprob_alone") is None:
        return {}
    return {"relevance": cf.relevance(raw["response_logprob"], raw["response_logprob_alone"], raw["response_tokens"], cfg.relevance_scale),
            "response_logprob": raw["response_logprob"], "response_logprob_alone": raw["response_logprob_alone"],
            "response_tokens": raw["response_tokens"]}


def group_field_candidates(rows: Sequence[Record]) -> dict[str, dict[str, int]]:
    """Fields that look like a row's kind or source (every row has a text value, and at least two
    values cover MIN_GROUP_ROWS rows each), with their value counts: what `score.group_by` could
    name. A set that mixes kinds of response needs it (docs/scoring.md), and nothing else tells."""
    skip = {"id", "prompt", "response"}
    found: dict[str, dict[str, int]] = {}
    for name in sorted(set(rows[0]) - skip) if rows else ():
        values = [row.get(name) for row in rows]
        if not all(isinstance(v, str) and v.strip() for v in values):
            continue
        counts = Counter(values)
        if sum(n >= cf.MIN_GROUP_ROWS for n in counts.values()) >= 2 and len(counts) <= len(rows) // cf.MIN_GROUP_ROWS:
            found[name] = dict(counts.most_common())
    return found


def row_groups(rows: Sequence[Record], field: str) -> list[str | None]:
    """Each row's `score.group_by` value as a group label (None where the row lacks it). A field no
    row has is an error: a typo must not silently fit one trend for everything."""
    groups = [None if row.get(field) is None else str(row[field]) for row in rows]
    if rows and all(g is None for g in groups):
        raise ValueError(f"score.group_by: no row has a field {field!r} (fields of the first row: {sorted(rows[0])})")
    return groups


def confidences(
    records: Sequence[Record], cfg: ScoreConfig, preset: str, *, length_spread: bool = False
) -> list[tuple[float, dict[str, float]]]:
    """Each row's confidence from its stored components, with the length-adjusted values the preset
    weighs (`Preset.length_adjusted`, over all these rows together, or per `group` with
    `score.group_by`) and the defect penalty applied (`defects`; records stored before the defect
    checks existed carry only their `arithmetic` share, the first check).

    No model work: the benchmark recomputes stored rows with it when a preset changes. `cfg` has the
    preset applied (`presets.applied`). `length_spread`: `confidence.length_adjusted`'s `spread`, which
    dev_lengths.py measured and no preset takes (it cost Dolly-N 0.075 AUROC).
    """
    weights = presets.component_weights(cfg)
    numeric = [{k: v for k, v in r.items() if isinstance(v, float)} for r in records]
    adjusted: list[dict[str, float]] = [{} for _ in records]
    if preset in PRESETS and PRESETS[preset].length_adjusted:
        for name in (k for k, w in weights.items() if w):
            have = [i for i, num in enumerate(numeric) if name in num]
            lengths = [records[i]["response_tokens"] for i in have]
            groups = [records[i].get("group") for i in have] if cfg.group_by is not None else None
            for i, value in zip(have, cf.length_adjusted([numeric[i][name] for i in have], lengths, groups, spread=length_spread)):
                adjusted[i][name] = value
    out = []
    for record, num, adj in zip(records, numeric, adjusted):
        active = {k: w for k, w in weights.items() if k != "reflection" or k in num}  # an unparsed reflection drops out
        if not any(active.values()):
            raise ValueError(f"row {record['id']}: no component to score it with (reflection unparsed, k = 0)")
        out.append((cf.penalized(cf.combine({**num, **adj}, active), defects.is_defective(record), DEFECT_PENALTY), adj))
    return out
