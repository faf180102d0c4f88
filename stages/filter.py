"""DVC stage `filter` (Auto-Filter): keep rows with confidence >= gamma and no defect, write the rest as removed.

gamma is fixed, a quantile of the scores, or (quantile: auto) the quantile at the noisy share
estimated from the scores themselves; the estimate goes to metrics/filter.json. A row that `score`
found a defect in (clearcurate.core.defects: a refusal, a placeholder, a cut-off response...) is removed
whatever its score, with the check's reason; metrics/filter.json counts removals by reason and by response length
(words: <= 8, 9-40, > 40), and warns when one length band's removed share dominates (`curation.LengthBands`).

The files stream: the scores and the training ids are read into arrays first, the decision is made
and validated on those, and a second pass over the training rows writes each to kept or removed,
so memory grows with the ids, not with the records (benchmarks/scale/memory.py).
"""

from __future__ import annotations

import logging
from collections import Counter

from clearcurate.core.curation import LengthBands, ScoreColumns, keep_mask, removal_reason, threshold
from clearcurate.core.outcomes import Outcome
from clearcurate.core.records import atomic_jsonl, iter_jsonl, progress, write_json
from clearcurate.data.expectations import outcome_columns, outcome_suite, validate
from clearcurate.pipeline import setup_logging, stage_args, stage_params

log = logging.getLogger("filter")


def main() -> None:
    args = stage_args(__doc__, "train", "scored", "kept", "removed", "validation", "metrics")
    setup_logging()
    p = stage_params("filter")
    cfg = p.filter
    scores = ScoreColumns.collect(progress(iter_jsonl(args.scored), "read scores"))
    ids = [r["id"] for r in progress(iter_jsonl(args.train), "read ids")]
    confidence, statistic, missing = scores.align(ids)
    defects = scores.defects_of(ids)
    del scores
    if missing:
        raise RuntimeError(f"{args.scored} lacks {len(missing)} ids, e.g. {missing[:3]}: rerun score")
    cut = threshold(confidence, cfg, statistic)
    gamma = cut.gamma
    if cut.estimated_noise_share is not None:
        log.info("estimated noisy share %.3f (quantile: auto): removing the lowest-scored rows up to it", cut.estimated_noise_share)
    kept = keep_mask(confidence, gamma, defects)
    outcomes = [Outcome.KEPT.value if k else Outcome.REMOVED.value for k in kept]
    frame = outcome_columns(ids, outcomes, confidence, gamma, input_ids=ids)
    validate("filtered", frame, outcome_suite(len(ids), gamma, p.validate), p.validate, args.validation)
    del outcomes, frame
    bands = LengthBands()
    with atomic_jsonl(args.kept) as kept_out, atomic_jsonl(args.removed) as removed_out:
        for k, row in enumerate(progress(iter_jsonl(args.train), "write kept and removed", total=len(ids))):
            bands.add(row["response"], not kept[k])
            if kept[k]:
                kept_out.write(row)
            else:
                found = defects.get(k, [])
                removed_out.write({**row, "confidence": float(confidence[k]), "reason": removal_reason(confidence[k], gamma, found),
                                   **({"defects": found} if found else {})})
    by_check = Counter(d["check"] for found in defects.values() for d in found)
    estimate = {} if cut.estimated_noise_share is None else {"estimated_noise_share": cut.estimated_noise_share}
    write_json(args.metrics, {"gamma": gamma, "threshold": cut.method, **estimate, "kept": kept_out.count, "removed": removed_out.count,
                              "removed_for_defects": len(defects), "removed_for_score": removed_out.count - len(defects),
                              "defects": dict(sorted(by_check.items())), "removed_by_length": bands.summary(),
                              "length_warning": (warning := bands.warning())})
    if warning:
        log.warning(warning)
    log.info("gamma %.4f: kept %d, removed %d of %d rows (%d for a defect: %s)", gamma, kept_out.count, removed_out.count, len(ids),
             len(defects), ", ".join(f"{n} {c}" for c, n in sorted(by_check.items())) or "none")


if __name__ == "__main__":
    main()
