"""DVC stage `correct` (Auto-Correct): propose new responses for removed rows, keep only confident fixes.

The judge (`correct.judge`) is described in clearcurate.correction; every decision keeps its
evidence in the changes file (replacements) and the decisions file (all of them); the ledger
(clearcurate.core.outcomes) accounts for every source row of the training split. The evidence is cached
per row without eta (clearcurate.correction.cached_decisions), so another `correct.eta` re-decides
without model work.
With `engine: ray` the model work (proposals and judging) runs in blocks of removed rows on a Ray
cluster's actors, each holding the base model and the filtered adapter, with the local engine's
decisions; a row that fails there is removed, with the error as its reason. The ledger, the gates
and the files are made here either way.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

from clearcurate.cache import ScoreCache, cache_dir
from clearcurate.core.curation import uncorrectable
from clearcurate.core.outcomes import Outcome, ledger, outcome_counts, quarantine_ledger_id
from clearcurate.core.records import Record, iter_jsonl, read_jsonl, write_json, write_jsonl
from clearcurate.correction import cached_decisions, correct, with_data_floor
from clearcurate.data.expectations import outcome_columns, outcome_suite, validate
from clearcurate.pipeline import setup_logging, stage_args, stage_params
from clearcurate.runtime import sessions

log = logging.getLogger("correct")


def main() -> None:
    args = stage_args(
        __doc__, "train", "quarantine", "kept", "removed", "filter_metrics", "base", "scorer", "adapter",
        "curated", "changes", "decisions", "outcomes", "validation", "metrics",
    )
    setup_logging()
    p = stage_params("correct")
    kept_ids = [r["id"] for r in iter_jsonl(args.kept)]  # the kept rows themselves stream into the curated file
    removed = read_jsonl(args.removed)  # Auto-Correct's model work needs these rows
    # The sampling floor follows the data's kept answers (counted with the model's tokenizer, no weights loaded).
    cfg = with_data_floor(p.correct_config(), sessions.tokenizer_only(p, args.base), iter_jsonl(args.kept))
    if cfg.max_new_tokens > p.correct.max_new_tokens:
        log.info("samples get at least %d tokens: the kept responses' typical length (correct.max_new_tokens: %d)",
                 cfg.max_new_tokens, p.correct.max_new_tokens)
    cache = ScoreCache(cache_dir())
    judge_from = args.scorer if cfg.judge == "pairwise" else None  # the pairwise judge is the scorer, when params name another model
    usage: dict[str, Any] = {}  # a remote API's calls and tokens, when this run made any

    def work(rows: Sequence[Record]) -> list[Record]:
        """The model work for rows without cached evidence (the model is loaded only if there are any)."""
        with sessions.trained_model(p, "correct", args.base, args.adapter, judge_from) as session:
            try:
                return correct(session.lm, session.engine, rows, cfg, args.adapter, judge=session.judge)
            finally:
                usage.update(session.usage())

    # A row whose prompt is at fault (a defect check said so) is decided without model work; the rest are Auto-Correct's.
    fixed = {r["id"]: d for r in removed if (d := uncorrectable(r)) is not None}
    models_id = sessions.correction_models_id(args.base, args.adapter, judge_from)
    tried = iter(cached_decisions([r for r in removed if r["id"] not in fixed], cfg, cache, models_id, work))
    decisions = [{**(fixed.get(r["id"]) or next(tried)), "filter_reason": r["reason"]} for r in removed]
    if failed := [d for d in decisions if "error" in d]:
        log.warning("Auto-Correct failed on %d rows, which stay removed with the error as their reason: %s", len(failed),
                    "; ".join(f"{d['id']}: {d['error']}" for d in failed[:5]))
    by_id = {d["id"]: d for d in decisions}
    corrected = [{**{k: v for k, v in r.items() if k not in ("confidence", "reason", "defects")}, "response": by_id[r["id"]]["new"]}
                 for r in removed if by_id[r["id"]]["outcome"] == Outcome.CORRECTED]
    quarantined = [q for q in iter_jsonl(args.quarantine) if q["split"] == "train"]

    def entries() -> Iterator[Record]:
        return ledger(({"id": i} for i in kept_ids), decisions, quarantined)

    # Gate before anything is written: every source row exactly once, corrections only below gamma.
    gamma = float(json.loads(args.filter_metrics.read_text(encoding="utf-8"))["gamma"])
    upstream = [r["id"] for r in iter_jsonl(args.train)] + [quarantine_ledger_id(q) for q in quarantined]
    scores = {r["id"]: float(r["confidence"]) for r in removed}
    ids, outcomes = [], []
    for e in entries():
        ids.append(e["id"])
        outcomes.append(e["outcome"].value)
    frame = outcome_columns(ids, outcomes, [scores.get(i, math.nan) for i in ids], gamma, input_ids=upstream,
                            removed_for_defect={r["id"] for r in removed if r.get("defects")})
    validate("curated", frame, outcome_suite(len(upstream), gamma, p.validate), p.validate, args.validation)
    del ids, outcomes, upstream, frame
    write_jsonl(args.curated, chain(iter_jsonl(args.kept), corrected))
    write_jsonl(args.changes, (d for d in decisions if d["outcome"] == Outcome.CORRECTED))
    write_jsonl(args.decisions, decisions)
    write_jsonl(args.outcomes, entries())
    counts = outcome_counts(entries())
    unparsed = sum(bool(d.get("judge_unparsed")) for d in decisions)
    if fixed:
        log.info("%d removed rows have a defect of their prompt: Auto-Correct leaves them removed", len(fixed))
    replaced = counts[Outcome.CORRECTED.value]
    write_json(args.metrics, {
        **counts, "judge": cfg.judge, "eta": cfg.eta, "given": len(decisions),
        "replaced_share": replaced / len(decisions) if decisions else None,
        "max_confidence": max((d["confidence"] for d in decisions), default=None),
        "judge_unparsed": unparsed, "failed": len(failed), "cached": cache.hits.get("correction", 0),
        # rows with a sample cut off at its budget (agreement judge): such a sample can never be the candidate
        "truncated_rows": sum(bool(d.get("truncated_samples")) for d in decisions),
        "prompt_at_fault": len(fixed), "sample_floor": cfg.max_new_tokens, **usage,
    })
    log.info("outcomes: %s; Auto-Correct (%s judge) replaced %d of %d removed rows", counts, cfg.judge, replaced, len(decisions))


if __name__ == "__main__":
    main()
