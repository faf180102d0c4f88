"""Auto-Correct's sampler on development rows (issue 31, item 2): does nucleus sampling end the runaway samples?

On the 300-row free-form trial, 52 of the 60 removed rows had a sample cut off at its budget, and a larger
budget does not help (`benchmarks/scale/correct_budget.py`): about a third of the 135M model's samples at
temperature 1 never end. Pure sampling draws from the whole tail of the distribution, which is what turns a
small model's text incoherent (Holtzman et al. 2020); a nucleus (`correct.top_p`) cuts that tail.

For each development set this trains the filtered model on the rows the filter keeps (the lowest-scored 20%
removed, as the pipeline does) and runs the pipeline's own Auto-Correct (`correction.correct_rows` with
params.yaml's `correct` block, its sampling floor from `correction.with_data_floor`) on the removed rows once
per candidate `top_p`, then reports what `evaluate` would: rows with a sample cut off at its budget,
replacements, their precision against the clean response (`evaluation.correction_scores`) and clean rows
damaged. Which rows are removed: free-form sets by their stored components recombined with today's free-form
preset (`dev_lengths.stored_sets`); the 1,000-row SQuAD-N set by the rows its stored Auto-Correct evidence
was recorded for (`dev.py`, the lowest 20% of its stored scores). Nothing is rescored.

Rule, written before any candidate was measured: take the largest `top_p` below 1 with a sample cut off on at
most 5% of the free-form sets' removed rows (the issue's target), or, if none reaches it, the one with the
fewest such rows provided it at least halves them; and only if, pooled over the sets with a clean answer,
it damages no more clean rows than `top_p: 1` does. Otherwise the default stays 1.

    .venv/bin/python benchmarks/curation/dev_sampling.py           # run (about 35 minutes on 2 cores; resumable)
    .venv/bin/python benchmarks/curation/dev_sampling.py --report  # the numbers, also to dev_sampling_results.json
    .venv/bin/python benchmarks/curation/dev_sampling.py --table   # DEVELOPMENT.md's table, from that file
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from cells import load_params, spec_train_config, train_config
from dev import DEV_SETS, DEV_SETS_POWERED, dev_rows
from dev_lengths import NAME as SHORT_SET
from dev_lengths import _dev_rows, rows_and_labels, stored_sets
from harness import Cache
from specs import HERE

from clearcurate.cache import source_fingerprint
from clearcurate.config import FilterConfig
from clearcurate.core.curation import split_by_threshold, threshold
from clearcurate.core.evaluation import correction_scores
from clearcurate.core.presets import applied
from clearcurate.core.records import Record, write_json
from clearcurate.correction import CORRECTION_MODULES, correct_rows, with_data_floor
from clearcurate.llm.factory import load_lm
from clearcurate.llm.lora import attach_lora, train_lora
from clearcurate.pipeline import setup_logging
from clearcurate.provenance import code_fingerprint
from clearcurate.scoring import ScoreConfig, confidences

log = logging.getLogger("dev-sampling")

CANDIDATES = (1.0, 0.95, 0.9, 0.8)
FREE_FORM = ("dev-dolly-n-20", SHORT_SET, "dev-gsm8k-n-20")
POWERED = "dev-squad-n-20-1k"
TARGET_ROWS_CUT = 0.05
STORE = HERE / "raw" / "dev-sampling"
RESULTS = HERE / "dev_sampling_results.json"


def code() -> str:
    """The fingerprint of the code a result records: this script and its import closure."""
    return code_fingerprint([Path(__file__)], local=[HERE])[0][:16]


def evidence_code() -> str:
    """What a stored result depends on, and so is keyed by: the pipeline's Auto-Correct and training code (this
    script's reporting can change without new model work)."""
    return source_fingerprint((*CORRECTION_MODULES, "clearcurate.llm.lora"))[:16]


def free_form_set(name: str, params: dict[str, Any], recs: list[Record]) -> tuple[list[Record], dict[str, Record], set[str]]:
    """(rows, labels by id, removed ids): removed as the pipeline's filter would, from the set's stored components `recs`."""
    rows, labels = rows_and_labels() if name == SHORT_SET else _dev_rows(name)
    cfg = applied(ScoreConfig(**params["score"]), "free_form")
    conf = {r["id"]: c for r, (c, _) in zip(recs, confidences(recs, cfg, "free_form"), strict=True)}
    _, removed = split_by_threshold(conf, threshold(list(conf.values()), FilterConfig(**params["filter"])).gamma)
    return rows, labels, set(removed)


def powered_set() -> tuple[list[Record], dict[str, Record], set[str]]:
    """The 1,000-row SQuAD-N development set and the rows its stored Auto-Correct evidence was recorded for."""
    spec = next(s for s in DEV_SETS_POWERED if s.name == POWERED)
    rows, labels = dev_rows(spec)
    entries = Cache(HERE / "raw" / "dev", read_only=True).entries(POWERED)
    stored = next(v for k, v in entries.items() if k.startswith("correct-") and not k.startswith("correct-k"))
    return rows, labels, {d["id"] for d in stored["agreement"]}


def run(params: dict[str, Any], typed: Any, names: list[str]) -> None:
    model_dir = HERE / "raw" / "models" / params["model"]["name"]
    lm = load_lm(typed, model_dir)
    cache = Cache(STORE)
    stored = stored_sets(params, lm.tokenizer) if set(names) & set(FREE_FORM) else {}  # read once for every set
    for name in names:
        rows, labels, removed_ids = powered_set() if name == POWERED else free_form_set(name, params, stored[name][0])
        removed = [r for r in rows if r["id"] in removed_ids]
        kept = [r for r in rows if r["id"] not in removed_ids]
        spec = next((s for s in [*DEV_SETS, *DEV_SETS_POWERED] if s.name == name), None)
        train_cfg = train_config(params["train"]) if spec is None else spec_train_config(spec, train_config(params["train"]))
        base_cfg = with_data_floor(typed.correct_config(), lm, kept)
        wanted = {tp: f"{name}/{Cache.key(evidence_code(), [r['id'] for r in removed], params['train'], asdict(base_cfg), tp)}"
                  for tp in CANDIDATES}
        missing = {tp: key for tp, key in wanted.items() if cache.get(key) is None}
        if not missing:
            continue
        log.info("%s: %d rows, %d removed; training the filtered model (%d steps)", name, len(rows), len(removed), train_cfg.max_steps)
        adapted = attach_lora(lm.model, train_cfg)
        train_lora(adapted, lm.tokenizer, kept, train_cfg, desc=f"{name} filtered")
        lm.model = adapted
        try:
            for tp, key in missing.items():
                cfg = replace(base_cfg, top_p=tp)
                decisions = correct_rows(lm, removed, cfg)
                cache.put(key, {"top_p": tp, "sample_floor": cfg.max_new_tokens, "code": code(), "evidence_code": evidence_code(),
                                "decisions": [{k: d[k] for k in ("id", "outcome", "new", "confidence", "agreement",
                                                                 "truncated_samples", "budget", "samples")} for d in decisions],
                                "labels": {i: {"noisy": bool(labels[i]["noisy"]), "clean_response": labels[i]["clean_response"]}
                                           for i in removed_ids if i in labels}})
                log.info("%s top_p %.2f: %s", name, tp, summary(cache.get(key)))
        finally:
            lm.model = adapted.unload()


def summary(stored: dict[str, Any]) -> dict[str, Any]:
    """What one candidate did on one set: cut-off samples, replacements and their quality."""
    decisions = stored["decisions"]
    cut = [d["truncated_samples"] for d in decisions]
    return {
        "removed_rows": len(decisions),
        "rows_with_a_sample_cut": sum(c > 0 for c in cut),
        "rows_with_every_sample_cut": sum(d["truncated_samples"] == len(d["samples"]) for d in decisions),
        "samples_cut": int(sum(cut)),
        "samples": sum(len(d["samples"]) for d in decisions),
        "median_sample_words": float(np.median([len(s.split()) for d in decisions for s in d["samples"]])),
        **correction_scores(decisions, stored["labels"]),
    }


def report() -> dict[str, Any]:
    cache = Cache(STORE, read_only=True)
    measured: dict[str, dict[str, Any]] = {}
    for name in cache.groups():
        for stored in cache.entries(name).values():
            if stored["evidence_code"] == evidence_code():
                measured.setdefault(f"top_p {stored['top_p']}", {})[name] = summary(stored)
    rule = __doc__.split("Rule, written before any candidate was measured: ")[1].split("\n\n")[0].replace("\n", " ")
    measured = dict(sorted(measured.items(), key=lambda item: -float(item[0].removeprefix("top_p "))))
    return {"code": code(), "evidence_code": evidence_code(), "rule": rule,
            "measured": measured, "decision": decide(measured)}


def decide(measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The rule in the module docstring, on the measured candidates."""
    def pooled(tp: float, key: str, sets: tuple[str, ...]) -> int:
        return sum(measured[f"top_p {tp}"][s][key] for s in sets if s in measured.get(f"top_p {tp}", {}))

    done = [tp for tp in CANDIDATES if all(s in measured.get(f"top_p {tp}", {}) for s in (*FREE_FORM, POWERED))]
    if 1.0 not in done:
        return {"chosen": None, "why": "top_p 1 (in use) is not measured on every set yet"}
    given = pooled(1.0, "removed_rows", FREE_FORM)
    share = {tp: pooled(tp, "rows_with_a_sample_cut", FREE_FORM) / given for tp in done}
    damaged = {tp: pooled(tp, "clean_damaged", (*FREE_FORM, POWERED)) for tp in done}
    safe = [tp for tp in done if tp < 1.0 and damaged[tp] <= damaged[1.0]]
    meets = [tp for tp in safe if share[tp] <= TARGET_ROWS_CUT]
    if meets:
        chosen, why = max(meets), "the largest top_p that meets the target without more damage"
    elif safe and share[best := min(safe, key=lambda tp: (share[tp], -tp))] <= share[1.0] / 2:
        chosen, why = best, "no candidate meets the target; the one with fewest rows cut halves them without more damage"
    else:
        chosen, why = 1.0, "no candidate meets the target or halves the rows cut without more damage"
    return {"rows_with_a_sample_cut_share (free-form sets)": {str(tp): round(v, 3) for tp, v in share.items()},
            "clean_rows_damaged (all sets)": {str(tp): v for tp, v in damaged.items()}, "chosen": chosen, "why": why}


def table(results: dict[str, Any]) -> str:
    """DEVELOPMENT.md's table, from the stored results (a test checks the page quotes it)."""
    lines = ["| dev set | top_p | removed rows with a sample cut | samples cut | replaced | right | clean rows damaged |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in (*FREE_FORM, POWERED):
        for name, by_set in results["measured"].items():
            if (m := by_set.get(s)) is not None:
                lines.append(f"| {s} | {name.removeprefix('top_p ')} | {m['rows_with_a_sample_cut']} of {m['removed_rows']} | "
                             f"{m['samples_cut']} of {m['samples']} | {m['replaced']} | {m['replaced_matching_clean']} | "
                             f"{m['clean_damaged']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="report the stored results (no model work)")
    parser.add_argument("--table", action="store_true", help="print DEVELOPMENT.md's table from dev_sampling_results.json")
    parser.add_argument("--only", nargs="+", default=[*FREE_FORM, POWERED], help="sets to run")
    parser.add_argument("--params", type=Path, default=HERE.parent.parent / "params.yaml")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(RESULTS.read_text(encoding="utf-8"))))
        return
    setup_logging()
    if not args.report:
        params, typed = load_params(args.params)
        run(params, typed, args.only)
    out = report()
    write_json(RESULTS, out)
    log.info("%s", out["decision"])


if __name__ == "__main__":
    main()
