"""Development measurement on errors a model made: GSM8K rows whose noisy responses are wrong worked
solutions written by a language model, not built by a rule.

The rule-built sets (another question's solution, one altered step) say little about what real
datasets hold: answers distilled from a model that got them wrong. This set has the questions and
noisy positions of dev.py's `dev-gsm8k-n-20` (GSM8K training questions no benchmark uses); each
noisy row gets a solution the bundled SmolLM2-135M-Instruct writes itself (two of the set's clean
rows as examples, temperature 0.7), kept only when it ends in `#### N` with a wrong N (up to four
draws). The writer is the scorer's own model, so this is the case of data distilled from the model
being fine-tuned, the hardest one for any likelihood signal: the model finds its own text likely.

It scores the set with every component (crossfit, as the pipeline does) and prints, as JSON (also to
`dev_natural_results.json`): each component's AUROC, each preset's confidence (the arithmetic check
included), and how many rows the arithmetic check flags.

    .venv/bin/python benchmarks/curation/dev_natural.py            # write and score (about 12 min on 2 cores; resumable)
    .venv/bin/python benchmarks/curation/dev_natural.py --report   # the numbers, from stored results
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from dev import DEV_SETS, dev_cli, dev_rows, score_key
from run import HERE, Cache, train_config
from sklearn.metrics import roc_auc_score

from clearcurate.evaluation import final_number
from clearcurate.llm.factory import load_lm
from clearcurate.presets import PRESETS
from clearcurate.records import Record, write_json
from clearcurate.scoring import ScoreConfig, confidences, score_rows
from clearcurate.similarity import get_similarity

log = logging.getLogger("dev-natural")

NAME = "dev-gsm8k-model-20"
SOURCE = next(s for s in DEV_SETS if s.name == "dev-gsm8k-n-20")
SHOTS, DRAWS, TEMPERATURE, MAX_TOKENS = 2, 4, 0.7, 200
COMPONENTS = ("consistency", "likelihood", "relevance", "length", "fluency")


def written(lm: Any, rows: list[Record], labels: dict[str, Record]) -> dict[str, str]:
    """A wrong worked solution by the model for each noisy row: draw j uses seed j, until its final number is wrong."""
    shots = [(r["prompt"], r["response"]) for r in rows if not labels[r["id"]]["noisy"]][:SHOTS]
    todo = [r for r in rows if labels[r["id"]]["noisy"]]
    out: dict[str, str] = {}
    for draw in range(DRAWS):
        outs = lm.sample([lm.chat(r["prompt"], history=shots) for r in todo], n=1, temperature=TEMPERATURE,
                         max_new_tokens=MAX_TOKENS, seed=draw, desc=f"write (draw {draw + 1})")
        left = []
        for row, sampled in zip(todo, outs):
            text = sampled.generations[0].text.strip()
            number = final_number(text)
            if "####" in text and number is not None and number != final_number(labels[row["id"]]["clean_response"]):
                out[row["id"]] = text
            else:
                left.append(row)
        todo = left
        log.info("draw %d: %d wrong solutions, %d rows left", draw + 1, len(out), len(todo))
        if not todo:
            break
    if todo:
        raise RuntimeError(f"no wrong solution in {DRAWS} draws for {[r['id'] for r in todo]}")
    return out


def natural_set(cache: Cache, params: dict[str, Any], lm: Any | None) -> tuple[list[Record], dict[str, Record]]:
    """The rows (noisy ones answered by the model) and their labels; the solutions are written once and stored."""
    rows, labels = dev_rows(SOURCE)
    key = f"{NAME}/written-{cache.key(rows, params['model']['name'], SHOTS, DRAWS, TEMPERATURE, MAX_TOKENS)}"
    solutions = cache.get(key) if lm is None else cache.fetch(key, lambda: written(lm, rows, labels))
    if solutions is None:
        raise SystemExit(f"{NAME}: no stored solutions; run without --report first")
    return [{**r, "response": solutions.get(r["id"], r["response"])} for r in rows], labels


def score_cfg(params: dict[str, Any]) -> ScoreConfig:
    """Every component computed (each with a share), as the pipeline samples GSM8K: 128 tokens up to the cap."""
    return ScoreConfig(**{**params["score"], "max_new_tokens": SOURCE.max_new_tokens, "weights": dict.fromkeys(COMPONENTS, 0.2)})


def report(rows: list[Record], labels: dict[str, Record], scored: list[Record], params: dict[str, Any]) -> dict[str, Any]:
    y = [0 if labels[r["id"]]["noisy"] else 1 for r in rows]
    out: dict[str, Any] = {"rows": len(rows), "noisy": len(y) - sum(y),
                           "component_auroc": {c: round(float(roc_auc_score(y, [s[c] for s in scored])), 3) for c in COMPONENTS}}
    base = ScoreConfig(**{**params["score"], "max_new_tokens": SOURCE.max_new_tokens})
    out["preset_auroc (arithmetic check included)"] = {
        name: round(float(roc_auc_score(y, [c for c, _ in confidences(scored, base.with_preset(name), name)])), 3) for name in PRESETS
    }
    flags = [s.get("arithmetic") is not None and s["arithmetic"] < 1 for s in scored]
    out["arithmetic_check_flags"] = {"noisy": sum(f for f, c in zip(flags, y) if not c), "clean": sum(f for f, c in zip(flags, y) if c)}
    return out


def main(argv: list[str] | None = None) -> int:
    args, params, typed, cache, model_dir = dev_cli(__doc__, argv)
    lm = None if args.report else load_lm(typed, model_dir)
    rows, labels = natural_set(cache, params, lm)
    cfg, train_cfg = score_cfg(params), train_config(params["train"])
    name = f"{NAME}/score-{score_key(cache, rows, cfg, train_cfg)}"
    if lm is None:
        scored = cache.get(name)
    else:
        scored = cache.fetch(name, lambda: score_rows(lm, rows, cfg, get_similarity(cfg.similarity), train_cfg))
    if scored is None:
        raise SystemExit(f"{NAME}: no stored scores; run without --report first")
    measured = report(rows, labels, scored, params)
    write_json(HERE / "dev_natural_results.json", measured)
    print(json.dumps(measured, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
