"""Does the benchmark measure what the pipeline ships? After `make demo`, train the benchmark's cells on the
demo's own rows with params.yaml and compare them with the demo's metrics/evaluate.json (issue 29).

The demo's data is squad-n-20's: the benchmark's `none` cell of seed `train.seed` is the demo's `baseline`
model, a cell on the demo's kept rows is its `filtered` model, and one on its curated rows (kept and corrected)
its `corrected` model. Cells land in the benchmark's cache like any other (with today's code fingerprint).
Prints JSON and writes `same_as_demo_results.json`.

    make demo && .venv/bin/python benchmarks/curation/same_as_demo.py            # about 5 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from pathlib import Path

from cells import Bench, load_params
from harness import HERE, Cache
from specs import build, plan

from clearcurate.core.records import read_jsonl, write_json
from clearcurate.data.noisy_data import SOURCES
from clearcurate.llm.factory import load_lm
from clearcurate.pipeline import setup_logging

log = logging.getLogger("same-as-demo")
ROOT = HERE.parents[1]


def rows_of(records: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["id"], r["prompt"], r["response"]) for r in records]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=ROOT, help="a checkout where `make demo` has run (default: this one)")
    parser.add_argument("--cache", type=Path, default=HERE / "raw", help="the benchmark's cache (run.py's --cache)")
    args = parser.parse_args(argv)
    setup_logging()
    import torch

    params, typed = load_params(args.demo / "params.yaml")
    spec = next(s for s in plan(quick=False) if s.name == "squad-n-20")
    train, test, _ = build(spec, SOURCES)
    if rows_of(train) != rows_of(read_jsonl(args.demo / "data/prepared/train.jsonl")) or \
            rows_of(test) != rows_of(read_jsonl(args.demo / "data/prepared/test.jsonl")):
        raise SystemExit(f"{args.demo}: its prepared rows are not squad-n-20's (other data or params): nothing to compare")
    metrics = json.loads((args.demo / "metrics/evaluate.json").read_text(encoding="utf-8"))
    name = params["model"]["name"]
    bench = Bench(load_lm(typed, args.demo / "models/base"), params, Cache(args.cache / "results" / "full" / name.replace("/", "_")),
                  name, seeds=1)
    models = {"base": None, "baseline": train, "filtered": read_jsonl(args.demo / "data/filtered/kept.jsonl"),
              "corrected": read_jsonl(args.demo / "data/curated/train.jsonl")}  # kept rows and Auto-Correct's replacements
    out: dict = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
                            f"Python {platform.python_version()}", "code": bench.code, "models": {}}
    for model, rows in models.items():
        cell = bench.base_scores(spec, test) if rows is None else bench.cell(spec, rows, test, typed.train.seed)
        got = {k: cell[k] for k in metrics[model]}
        out["models"][model] = {"benchmark": got, "pipeline": metrics[model], "identical": got == metrics[model],
                                "max_relative_difference": max(abs(got[k] - v) / max(abs(v), 1e-12) for k, v in metrics[model].items())}
        log.info("%s: %s", model, "identical" if got == metrics[model] else f"differs: {got} vs {metrics[model]}")
    write_json(HERE / "same_as_demo_results.json", out)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
