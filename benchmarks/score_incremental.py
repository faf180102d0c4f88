"""Incremental scoring: how much a rerun costs after adding rows, measured in one run.

Scores N SQuAD-N rows with an empty cache (the full run), then the same N rows plus `--added`
new ones with that cache (the incremental run), and prints both wall times, their ratio and the
cache's hit/miss counts. The ratio is the point: absolute times depend on the machine.

    .venv/bin/dvc repro prepare   # writes models/base
    .venv/bin/python benchmarks/score_incremental.py --rows 100 --added 10
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from clearcurate.cache import ScoreCache, model_fingerprint
from clearcurate.config import load_file
from clearcurate.data.noisy_data import SQUAD_SOURCE, SquadNConfig, build_squad_n
from clearcurate.llm.factory import load_lm
from clearcurate.pipeline import setup_logging
from clearcurate.scoring import score_rows
from clearcurate.scoring.similarity import get_similarity

log = logging.getLogger("score_incremental")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100, help="rows of the full run")
    parser.add_argument("--added", type=int, default=10, help="rows added for the incremental run")
    parser.add_argument("--source", default=str(SQUAD_SOURCE), help="flat SQuAD v1.1 JSONL (default: the bundled copy)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--base", type=Path, default=Path("models/base"), help="the prepared base model (dvc repro prepare)")
    args = parser.parse_args()
    for needed in (Path(args.source), args.params, args.base / "config.json"):
        if not needed.exists():
            parser.error(f"{needed} not found (run from the repository root after `dvc repro prepare`)")
    setup_logging()
    p = load_file(args.params)
    rows, _, _ = build_squad_n(args.source, SquadNConfig(n_train=args.rows + args.added, n_test=1))
    cfg, train_cfg = p.score, p.train
    lm = load_lm(p, args.base)
    model_id = model_fingerprint(args.base)
    similarity = get_similarity(cfg.similarity)
    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        for name, subset in (("full", rows[: args.rows]), ("incremental", rows)):
            cache = ScoreCache(tmp)
            start = time.perf_counter()
            score_rows(lm, subset, cfg, similarity, train_cfg, cache=cache, model_id=model_id)
            timings[name] = {"rows": len(subset), "seconds": round(time.perf_counter() - start, 1),
                             "hits": cache.hits, "misses": cache.misses}
    timings["ratio_incremental_to_full"] = round(timings["incremental"]["seconds"] / timings["full"]["seconds"], 3)
    print(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
