"""The free-form development sets scored end to end as the pipeline scores them: params.yaml's `score`
settings as they are (`weights: auto`), through `score_rows`, with a fresh model cache.

`dev_freeform.py` chooses the preset from stored components; this checks that the pipeline's own path
gives what the choice promised (AUROC on Dolly-N, |Spearman(length, confidence)| on the clean sets)
and measures what it costs per row. Development rows only. Prints JSON (also to
`dev_defaults_results.json`); each run rescores (about 5 minutes a set on 2 CPU cores).

    .venv/bin/python benchmarks/curation/dev_defaults.py            # rescore (about 5 minutes a set)
    .venv/bin/python benchmarks/curation/dev_defaults.py --report   # print the stored results; run nothing
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from typing import Any

import torch
from cells import train_config
from dev import dev_cli
from dev_freeform import SETS, rows_of
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from specs import HERE

from clearcurate.cache import ScoreCache, model_fingerprint
from clearcurate.config import ScoreConfig
from clearcurate.core.records import write_json
from clearcurate.llm.factory import load_lm
from clearcurate.scoring import score_rows
from clearcurate.scoring.similarity import get_similarity

RESULTS = HERE / "dev_defaults_results.json"


def main(argv: list[str] | None = None) -> int:
    args, params, typed, _, model_dir = dev_cli(__doc__, argv)
    if args.report:  # this script's measurement is the rescoring itself: --report prints the stored one
        print(RESULTS.read_text(encoding="utf-8"))
        return 0
    lm = load_lm(typed, model_dir)
    cfg = ScoreConfig(**params["score"])
    out: dict[str, Any] = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
                           "score": params["score"], "sets": {}}
    if args.only is not None and RESULTS.exists():  # --only redoes some sets: keep the others' results
        out["sets"] = json.loads(RESULTS.read_text())["sets"]
    for spec in SETS:
        if args.only is not None and spec.name not in args.only:
            continue
        rows, labels = rows_of(spec)
        with tempfile.TemporaryDirectory(prefix="dev-defaults-") as tmp:  # nothing reused: the cost is the whole cost
            start = time.perf_counter()
            scored = score_rows(lm, rows, cfg, get_similarity(cfg.similarity), train_config(params["train"]),
                                cache=ScoreCache(tmp), model_id=model_fingerprint(model_dir))
            seconds = time.perf_counter() - start
        conf = [r["confidence"] for r in scored]
        y = [0 if labels[r["id"]]["noisy"] else 1 for r in rows]
        res: dict[str, Any] = {"rows": len(rows), "preset": scored[0]["weights_preset"], "seconds": round(seconds, 1),
                               "seconds_per_row": round(seconds / len(rows), 2),
                               "spearman_length_confidence": round(float(spearmanr([len(r["response"]) for r in rows], conf).statistic), 3)}
        if 0 < sum(y) < len(y):
            res["auroc"] = round(float(roc_auc_score(y, conf)), 3)
        out["sets"][spec.name] = res
        print(json.dumps({spec.name: res}), flush=True)
    write_json(RESULTS, out)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
