"""Would a larger sample budget let Auto-Correct's samples finish? (issue 31, item 2)

On the 300-row free-form trial, 52 of the 60 removed rows had a sample cut off at its budget (161 tokens,
the kept responses' 90th percentile: `correction.with_data_floor`). This samples the same rows again as the
`correct` stage does (the filtered model, `lm.chat` prompts, params.yaml's `correct` k, temperature, top_p
and seed) once at the largest budget asked; a sample's tokens do not depend on its budget (`LocalLM.sample`),
so one run gives, for every smaller budget, which samples it would cut. Prints JSON.

    .venv/bin/python benchmarks/scale/stages.py --freeform 300 --keep /tmp/trial     # the trial, kept
    .venv/bin/python benchmarks/scale/correct_budget.py /tmp/trial/local/project --budgets 161 256 384 512
    .venv/bin/python benchmarks/scale/correct_budget.py /tmp/trial/local/project --temperature 0.7   # other samples
    .venv/bin/python benchmarks/scale/correct_budget.py /tmp/trial/local/project --top-p 0.8   # other samples
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from clearcurate.config import load_file
from clearcurate.core.records import read_jsonl
from clearcurate.llm import models
from clearcurate.llm.hf import LocalLM
from clearcurate.pipeline import setup_logging

log = logging.getLogger("correct_budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path, help="a project after `dvc repro correct` (e.g. a kept trial clone)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[161, 256, 384, 512])
    parser.add_argument("--temperature", type=float, default=None,
                        help="sample at this temperature instead of params.yaml's correct.temperature (other samples)")
    parser.add_argument("--top-p", type=float, default=None,
                        help="sample from this nucleus instead of params.yaml's correct.top_p (other samples)")
    args = parser.parse_args()
    setup_logging()
    project = args.project
    params = load_file(project / "params.yaml")
    cfg = replace(params.correct, **{k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p)) if v is not None})
    decisions = list(read_jsonl(project / "data" / "curated" / "decisions.jsonl"))
    removed = {r["id"]: r for r in read_jsonl(project / "data" / "filtered" / "removed.jsonl")}
    rows = [removed[d["id"]] for d in decisions]
    model, tokenizer = models.load(project / "models" / "base", adapter_dir=project / "models" / "filtered")
    lm = LocalLM(model, tokenizer, batch_size=params.model.batch_size)
    largest = max(args.budgets)
    log.info("sampling %d removed rows x %d at %d tokens", len(rows), cfg.k, largest)
    sampled = lm.sample([lm.chat(r["prompt"]) for r in rows], n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p,
                        max_new_tokens=largest, seed=cfg.seed, desc="propose")
    tokens = np.array([[g.n_tokens for g in s.generations] for s in sampled])
    same = sum(s.generations[0].text[:40] == d["samples"][0][:40] for s, d in zip(sampled, decisions))
    print(json.dumps({
        "project": str(project), "rows": len(rows), "samples": int(tokens.size), "k": cfg.k,
        "temperature": cfg.temperature, "top_p": cfg.top_p,
        "stage budgets": sorted({d["budget"] for d in decisions}),
        "first samples that begin as the stage's did": f"{same} of {len(rows)}",
        "finished samples' tokens (50th, 90th, 99th percentile)":
            [float(v) for v in np.percentile(finished, [50, 90, 99])] if len(finished := tokens[tokens < largest]) else None,
        "by budget": {b: {"samples cut": int((tokens >= b).sum()), "rows with a sample cut": int((tokens >= b).any(axis=1).sum())}
                      for b in sorted(args.budgets)},
    }, indent=1))


if __name__ == "__main__":
    main()
