"""DVC stage `filter` (Auto-Filter): keep rows with confidence >= gamma, write the rest as removed.

gamma is fixed, a quantile of the scores, or (quantile: auto) the quantile at the noisy share
estimated from the scores themselves; the estimate goes to metrics/filter.json.
"""

from __future__ import annotations

import logging

from clearcurate.curation import auto_statistic, split_by_threshold, threshold
from clearcurate.expectations import outcome_frame, outcome_suite, validate
from clearcurate.outcomes import Outcome
from clearcurate.pipeline import setup_logging, stage_args, stage_params
from clearcurate.records import read_jsonl, write_json, write_jsonl

log = logging.getLogger("filter")


def main() -> None:
    args = stage_args(__doc__, "train", "scored", "kept", "removed", "validation", "metrics")
    setup_logging()
    p = stage_params("filter")
    cfg = p.filter
    rows = read_jsonl(args.train)
    scores = {s["id"]: s for s in read_jsonl(args.scored)}
    missing = [r["id"] for r in rows if r["id"] not in scores]
    if missing:
        raise RuntimeError(f"{args.scored} lacks {len(missing)} ids, e.g. {missing[:3]}: rerun score")
    confidence = {r["id"]: float(scores[r["id"]]["confidence"]) for r in rows}
    cut = threshold(list(confidence.values()), cfg, auto_statistic([scores[r["id"]] for r in rows]))
    gamma = cut.gamma
    if cut.estimated_noise_share is not None:
        log.info("estimated noisy share %.3f (quantile: auto): removing the lowest-scored rows up to it", cut.estimated_noise_share)
    kept_ids, removed_ids = split_by_threshold(confidence, gamma)
    kept, removed = set(kept_ids), set(removed_ids)
    outcomes = [{"id": r["id"], "outcome": Outcome.KEPT if r["id"] in kept else Outcome.REMOVED} for r in rows]
    suite = outcome_suite([r["id"] for r in rows], gamma, p.validate)
    validate("filtered", outcome_frame(outcomes, confidence, gamma), suite, p.validate, args.validation)
    write_jsonl(args.kept, (r for r in rows if r["id"] in kept))
    write_jsonl(
        args.removed,
        ({**r, "confidence": confidence[r["id"]], "reason": f"confidence < gamma {gamma:.4f}"} for r in rows if r["id"] in removed),
    )
    estimate = {} if cut.estimated_noise_share is None else {"estimated_noise_share": cut.estimated_noise_share}
    write_json(args.metrics, {"gamma": gamma, "threshold": cut.method, **estimate, "kept": len(kept), "removed": len(removed)})
    log.info("gamma %.4f: kept %d, removed %d of %d rows", gamma, len(kept), len(removed), len(rows))


if __name__ == "__main__":
    main()
