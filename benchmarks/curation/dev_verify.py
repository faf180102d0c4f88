"""Development measurements for the arithmetic check (`clearcurate.core.verify`): does it catch wrong
worked solutions without flagging right ones, and how should it enter the confidence?

No model calls: every number comes from source rows and the stored results of `dev.py` and
`dev_freeform.py`. Rows come from the development pools only (GSM8K training questions no
benchmark trains on, Dolly's dev pool); GSM8K's test split is never read. Prints JSON (also to
`dev_verify_results.json`):

- how often the check flags clean GSM8K solutions and clean Dolly responses (false flags);
- how often it catches solutions with one altered step, and solutions written by a model: the
  135M fold models' own samples on the dev sets whose final number is wrong;
- the AUROC of each preset's confidence on every dev set with each way of applying the check.

    .venv/bin/python benchmarks/curation/dev_verify.py
"""

from __future__ import annotations

import json
import logging
import random
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from dev import DEV_SETS, dev_cli, dev_rows
from dev_freeform import COMPONENTS, SETS, component_matrix, labelled_sets, rows_of, variants
from harness import Cache
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from specs import HERE

from clearcurate.core import confidence as cf
from clearcurate.core import verify
from clearcurate.core.presets import DEFECT_PENALTY, PRESETS, preset_for
from clearcurate.core.records import write_json
from clearcurate.data.noisy_data import GSM8K_TRAIN_SOURCE, alter_step, gsm8k_final_answer, gsm8k_rows
from clearcurate.llm import models

log = logging.getLogger("dev-verify")

# How a failed check could lower the confidence (share = the share of calculations that hold).
GATES: dict[str, Callable[[float], float]] = {
    "none": lambda share: 1.0,
    "x share": lambda share: share,
    "x share^2": lambda share: share**2,
    "x 0.5 if any fails": lambda share: 0.5 if share < 1 else 1.0,
    "x 0.1 if any fails": lambda share: 0.1 if share < 1 else 1.0,
}


def flagged(texts: list[str]) -> dict[str, Any]:
    """How many texts have a calculation, and how many have one that does not hold."""
    shares = [verify.arithmetic(t) for t in texts]
    checked = [s for s in shares if s is not None]
    failing = sum(s < 1 for s in checked)
    return {"texts": len(texts), "with_calculations": len(checked), "flagged": failing, "flagged_share": round(failing / len(texts), 4)}


def benchmark_gsm8k_ids() -> set[str]:
    """GSM8K training rows some dev or benchmark set uses: excluded from the clean pool so that
    it stays disjoint from every benchmark's training rows."""
    ids: set[str] = set()
    for spec in DEV_SETS:
        if spec.kind == "gsm8k":
            rows, _ = dev_rows(spec)
            ids |= {r["id"] for r in rows}
    return ids


def model_written(cache: Cache, golds: dict[str, str]) -> list[str]:
    """Worked solutions the 135M fold models wrote for dev questions (stored samples) that end in a
    wrong final number: what a model's wrong solutions look like."""
    out = []
    for group in (g for g in cache.groups() if g.startswith("dev-gsm8k-")):
        for name, records in sorted(cache.entries(group).items()):
            for record in records if name.startswith("score-") else ():
                samples = record["samples"] if isinstance(record["samples"], list) else json.loads(record["samples"])
                for text in samples:
                    if "####" in text and record["id"] in golds and gsm8k_final_answer(text) != golds[record["id"]]:
                        out.append(text)
    return out


def preset_confidence(records: list[Any], rows: list[Any], tokenizer: Any, preset_name: str) -> list[float]:
    """A preset's confidence (before the arithmetic check) of stored rows, as scoring combines it."""
    preset = PRESETS[preset_name]
    recs = variants(records, rows, tokenizer)[f"likelihood per {preset.likelihood_per}, relevance per token"]
    return list(component_matrix(recs, preset.length_adjusted) @ np.array([preset.weights.get(c, 0.0) for c in COMPONENTS]))


def gate_aurocs(tokenizer: Any, params: dict[str, Any], cache: Any) -> dict[str, Any]:
    """AUROC (noisy sets) and Spearman(length, confidence) (clean sets) of the preset each set gets,
    with each gate; and of every preset with the library's gate."""
    sets = labelled_sets(params, cache)
    out: dict[str, Any] = {}
    for name, (rows, labels, scored) in sets.items():
        preset_name = preset_for(float(np.median([r.get("response_tokens") or len(r["samples"][0].split()) for r in scored])))
        base = preset_confidence(scored, rows, tokenizer, preset_name)
        shares = [verify.arithmetic(row["response"]) for row in rows]
        y = [0 if labels[row["id"]]["noisy"] else 1 for row in rows]
        res: dict[str, Any] = {"preset": preset_name, "rows_flagged": sum(s is not None and s < 1 for s in shares),
                               "noisy_rows_flagged": sum(s is not None and s < 1 and not t for s, t in zip(shares, y))}
        if 0 < sum(y) < len(y):  # every preset here, checked as scoring checks (x DEFECT_PENALTY on a failed calculation)
            res["every preset, library gate"] = {
                other: round(float(roc_auc_score(y, [cf.penalized(c, s is not None and s < 1, DEFECT_PENALTY) for c, s in
                                                     zip(preset_confidence(scored, rows, tokenizer, other), shares)])), 3)
                for other in PRESETS}
        for gate, fn in GATES.items():
            conf = [c * (fn(s) if s is not None else 1.0) for c, s in zip(base, shares)]
            if 0 < sum(y) < len(y):
                res[gate] = round(float(roc_auc_score(y, conf)), 3)
            else:
                res[gate] = {"spearman_length": round(float(spearmanr([len(r["response"]) for r in rows], conf).statistic), 3)}
        out[name] = res
    return out


def report(params: dict[str, Any], cache: Any, tokenizer: Any) -> dict[str, Any]:
    used = benchmark_gsm8k_ids()
    source = [r for r in gsm8k_rows(GSM8K_TRAIN_SOURCE, "train") if r["id"] not in used]
    clean = [r["response"] for r in source]
    rng = random.Random(0)
    altered = [a for a in (alter_step(t, rng) for t in clean) if a is not None]
    golds = {r["id"]: gsm8k_final_answer(r["response"]) for r in gsm8k_rows(GSM8K_TRAIN_SOURCE, "train")}
    dolly = [r["response"] for spec in SETS if spec.kind == "dolly" for r in rows_of(spec)[0]]
    return {
        "clean GSM8K solutions (train split, no benchmark's rows)": flagged(clean),
        "clean Dolly responses (dev sets)": flagged(dolly),
        "GSM8K solutions with one step altered": flagged(altered),
        "wrong solutions written by the 135M fold models (stored dev samples)": flagged(model_written(cache, golds)),
        "confidence AUROC with each gate (noisy sets) / Spearman(length) (clean sets)": gate_aurocs(tokenizer, params, cache),
    }


def main(argv: list[str] | None = None) -> int:
    _, params, _, cache, model_dir = dev_cli(__doc__, [*(sys.argv[1:] if argv is None else argv), "--report"])
    _, tokenizer = models.load(model_dir)
    measured = report(params, cache, tokenizer)
    write_json(HERE / "dev_verify_results.json", measured)
    print(json.dumps(measured, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

