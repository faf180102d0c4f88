"""DVC stage `correct` (Auto-Correct): propose new responses for removed rows, keep only confident fixes.

The judge (`correct.judge`) is described in clearcurate.correction; every decision keeps its
evidence in data/curated/changes.jsonl (replacements) and decisions.jsonl (all of them).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from clearcurate.correction import CorrectConfig, correct_rows
from clearcurate.curation import CORRECTED, KEPT, REMOVED
from clearcurate.expectations import QUARANTINED, ValidateConfig, outcome_frame, outcome_suite
from clearcurate.llm.openai_api import api_metrics
from clearcurate.pipeline import api_budget, gate, load_lm, openai_params, setup_logging, stage_params
from clearcurate.records import read_jsonl, write_json, write_jsonl

log = logging.getLogger("correct")


def main() -> None:
    setup_logging()
    params = stage_params("correct")
    kept = read_jsonl("data/filtered/kept.jsonl")
    removed = read_jsonl("data/filtered/removed.jsonl")
    lm = load_lm(params["model"], adapter_dir="models/filtered", openai_params=openai_params(params))
    cfg = CorrectConfig(**params["correct"], beta=float(params["score"]["beta"]))
    with api_budget("correct"):
        decisions = correct_rows(lm, removed, cfg)
    by_id = {d["id"]: d for d in decisions}
    corrected = [{**{k: v for k, v in r.items() if k not in ("confidence", "reason")}, "response": by_id[r["id"]]["new"]}
                 for r in removed if by_id[r["id"]]["outcome"] == CORRECTED]
    outcomes = [{"id": r["id"], "outcome": KEPT, "reason": "confidence >= gamma"} for r in kept]
    outcomes += [{k: d[k] for k in ("id", "outcome", "reason", "confidence")} for d in decisions]
    # Rows that never got past prepare are accounted for too: one ledger for every source row.
    # Their ledger id is file:line (a quarantined duplicate shares its id with a prepared row).
    quarantined = [
        {"id": f"{q['source']}:{q['line']}", "outcome": QUARANTINED, "reason": q["reason"], "row_id": q["id"]}
        for q in read_jsonl("data/prepared/quarantine.jsonl")
        if q["split"] == "train"
    ]
    outcomes += quarantined
    # Gate before anything is written: every source row exactly once, corrections only below gamma.
    gamma = float(json.loads(Path("metrics/filter.json").read_text(encoding="utf-8"))["gamma"])
    upstream = [r["id"] for r in read_jsonl("data/prepared/train.jsonl")] + [q["id"] for q in quarantined]
    scores = {r["id"]: float(r["confidence"]) for r in removed}
    suite = outcome_suite(upstream, gamma, ValidateConfig.from_params(params["validate"]))
    gate("correct", "curated", outcome_frame(outcomes, scores, gamma), suite, params)
    write_jsonl("data/curated/train.jsonl", [*kept, *corrected])
    write_jsonl("data/curated/changes.jsonl", (d for d in decisions if d["outcome"] == CORRECTED))
    write_jsonl("data/curated/decisions.jsonl", decisions)
    write_jsonl("data/curated/outcomes.jsonl", outcomes)
    counts = {o: sum(x["outcome"] == o for x in outcomes) for o in (KEPT, CORRECTED, REMOVED, QUARANTINED)}
    unparsed = sum(bool(d.get("judge_unparsed")) for d in decisions)
    replaced = counts[CORRECTED]
    write_json("metrics/correct.json", {
        **counts, "judge": cfg.judge, "eta": cfg.eta, "given": len(decisions),
        "replaced_share": replaced / len(decisions) if decisions else None,
        "max_confidence": max((d["confidence"] for d in decisions), default=None),
        "judge_unparsed": unparsed, **api_metrics(lm),
    })
    log.info("outcomes: %s; Auto-Correct (%s judge) replaced %d of %d removed rows", counts, cfg.judge, replaced, len(decisions))


if __name__ == "__main__":
    main()
