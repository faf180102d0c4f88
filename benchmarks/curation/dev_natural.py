"""Development measurement on errors a model made: rows whose noisy responses are wrong answers
written by a language model, not built by a rule.

The rule-built sets (another question's solution, one altered step, another span of the paragraph)
say little about what real datasets hold: answers distilled from a model that got them wrong. Each
set here has the questions and noisy positions of one of dev.py's sets (rows no benchmark uses);
each noisy row gets an answer the bundled SmolLM2-135M-Instruct writes itself (two of the set's
clean rows as examples for GSM8K; for SQuAD, where the base model answers in sentences, a LoRA
adapter trained on the set's clean rows), at temperature 0.7, kept only when it is wrong: a worked
solution whose `#### N` is not the right number; a SQuAD answer that is a span of the paragraph but
not the right one (a real reader's mistake). A row the writer never gets wrong (4 or 8 draws)
keeps its clean response, so a set may hold fewer than 20 noisy rows. The writer is the scorer's own model,
so this is the case of data distilled from the model being fine-tuned, the hardest one for any
likelihood signal: the model finds its own text likely.

It scores each set with every component (crossfit, as the pipeline does) and prints, as JSON (also
to `dev_natural_results.json`): each component's AUROC, each preset's confidence (the arithmetic
check included), and how many rows the arithmetic check flags.

    .venv/bin/python benchmarks/curation/dev_natural.py            # write and score (about 20 min on 2 cores; resumable)
    .venv/bin/python benchmarks/curation/dev_natural.py --report --params benchmarks/curation/settings_before_issue30.yaml
        # the numbers, from stored results: they were written and scored with those settings (today's train settings
        # key other answers and scores, which a run without --report would make)
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
from dataclasses import dataclass
from typing import Any

from cells import train_config, train_key_values
from dev import DEV_SETS, dev_cli, dev_rows, refuse_other_settings, score_key
from harness import Cache
from sklearn.metrics import roc_auc_score
from specs import HERE

from clearcurate.core import presets
from clearcurate.core.evaluation import final_number, normalize_answer, same_answer
from clearcurate.core.presets import PRESETS, preset_for
from clearcurate.core.records import Record, write_json
from clearcurate.llm.factory import load_lm
from clearcurate.llm.lora import LoraTrainConfig
from clearcurate.scoring import ScoreConfig, confidences, score_rows
from clearcurate.scoring.similarity import get_similarity

log = logging.getLogger("dev-natural")

@dataclass(frozen=True)
class Writer:
    """Who writes a set's wrong answers: the base model with two of the set's clean rows as examples
    (GSM8K: it follows the worked format), or a LoRA adapter trained on the set's clean rows with
    params.yaml's `train` (SQuAD: the base model answers in sentences, a fine-tuned reader in spans)."""

    source: str  # the dev.py set whose questions and noisy positions it takes
    max_tokens: int
    draws: int
    tuned: bool = False


SETS = {"dev-gsm8k-model-20": Writer("dev-gsm8k-n-20", 200, 4), "dev-squad-model-20": Writer("dev-squad-n-20", 32, 8, tuned=True)}
SHOTS, TEMPERATURE = 2, 0.7
COMPONENTS = ("consistency", "likelihood", "relevance", "length", "fluency")


def source(name: str) -> Any:
    return next(s for s in DEV_SETS if s.name == SETS[name].source)


def wrong(text: str, row: Record, clean: str) -> bool:
    """A mistake a real answerer could make: a worked solution that commits to a wrong number, or a
    span of the row's own paragraph that is not the right answer."""
    if not text or same_answer(text, clean):
        return False
    if "####" in clean:
        return "####" in text and final_number(text) is not None
    return normalize_answer(text) in normalize_answer(row["prompt"])


def written(lm: Any, rows: list[Record], labels: dict[str, Record], writer: Writer, train_cfg: LoraTrainConfig) -> dict[str, str]:
    """A wrong answer for each noisy row, by `writer`: draw j uses seed j, until the answer is wrong."""
    clean = [r for r in rows if not labels[r["id"]]["noisy"]]
    if writer.tuned:
        adapted, _ = lm.new_adapter(clean, train_cfg, desc="writer")
        with lm.using(adapted):
            return _draw(lm, rows, labels, writer, shots=[])
    return _draw(lm, rows, labels, writer, shots=[(r["prompt"], r["response"]) for r in clean[:SHOTS]])


def _draw(lm: Any, rows: list[Record], labels: dict[str, Record], writer: Writer, shots: list[tuple[str, str]]) -> dict[str, str]:
    todo = [r for r in rows if labels[r["id"]]["noisy"]]
    draws = writer.draws
    out: dict[str, str] = {}
    for draw in range(draws):
        outs = lm.sample([lm.chat(r["prompt"], history=shots) for r in todo], n=1, temperature=TEMPERATURE,
                         max_new_tokens=writer.max_tokens, seed=draw, desc=f"write (draw {draw + 1})")
        left = []
        for row, sampled in zip(todo, outs):
            text = sampled.generations[0].text.strip()
            if wrong(text, row, labels[row["id"]]["clean_response"]):
                out[row["id"]] = text
            else:
                left.append(row)
        todo = left
        log.info("draw %d: %d wrong solutions, %d rows left", draw + 1, len(out), len(todo))
        if not todo:
            break
    if not out:
        raise RuntimeError(f"the writer gave no wrong answer in {draws} draws")
    if todo:  # a question the writer always gets right is not one it would have got wrong: the row stays clean
        log.info("%d noisy rows keep their clean response: no wrong answer in %d draws", len(todo), draws)
    return out


def natural_set(name: str, cache: Cache, params: dict[str, Any], lm: Any | None) -> tuple[list[Record], dict[str, Record]]:
    """The rows (noisy ones answered by the model) and their labels; the answers are written once and stored."""
    rows, labels = dev_rows(source(name))
    writer, train_cfg = SETS[name], train_config(params["train"])
    how = [SHOTS, writer.draws, TEMPERATURE, writer.max_tokens, *([train_key_values(train_cfg)] if writer.tuned else [])]
    key = f"{name}/written-{cache.key(rows, params['model']['name'], *how)}"
    answers = cache.get(key) if lm is None else cache.fetch(key, lambda: written(lm, rows, labels, writer, train_cfg))
    if answers is None:
        refuse_other_settings([name] if cache.entries(name) else [], "dev_natural.py")
        raise SystemExit(f"{name}: no stored answers; run without --report first")
    labels = {i: {**label, "noisy": i in answers} for i, label in labels.items()}
    return [{**r, "response": answers.get(r["id"], r["response"])} for r in rows], labels


def score_cfg(name: str, params: dict[str, Any]) -> ScoreConfig:
    """Every component computed (each with a share), with the source set's sample budget."""
    return ScoreConfig(**{**params["score"], "max_new_tokens": source(name).max_new_tokens, "weights": dict.fromkeys(COMPONENTS, 0.2)})


def report(rows: list[Record], labels: dict[str, Record], scored: list[Record], params: dict[str, Any],
           max_new_tokens: int = 128) -> dict[str, Any]:
    y = [0 if labels[r["id"]]["noisy"] else 1 for r in rows]
    out: dict[str, Any] = {"rows": len(rows), "noisy": len(y) - sum(y),
                           "component_auroc": {c: round(float(roc_auc_score(y, [s[c] for s in scored])), 3) for c in COMPONENTS}}
    base = ScoreConfig(**{**params["score"], "max_new_tokens": max_new_tokens})
    out["preset_auroc (arithmetic check included)"] = {
        name: round(float(roc_auc_score(y, [c for c, _ in confidences(scored, presets.applied(base, name), name)])), 3) for name in PRESETS
    }
    # What `score.weights: auto` would pick for these rows (records count the end of turn in response_tokens).
    out["auto_preset"] = preset_for(statistics.median(s["response_tokens"] - 1 for s in scored))
    flags = [s.get("arithmetic") is not None and s["arithmetic"] < 1 for s in scored]
    out["arithmetic_check_flags"] = {"noisy": sum(f for f, c in zip(flags, y) if not c), "clean": sum(f for f, c in zip(flags, y) if c)}
    return out


def measure(name: str, cache: Cache, params: dict[str, Any], lm: Any | None) -> dict[str, Any]:
    """One set: written (or read), scored (or read) and reported."""
    rows, labels = natural_set(name, cache, params, lm)
    cfg, train_cfg = score_cfg(name, params), train_config(params["train"])
    key = f"{name}/score-{score_key(cache, rows, cfg, train_cfg)}"
    if lm is None:
        scored = cache.get(key)
    else:
        scored = cache.fetch(key, lambda: score_rows(lm, rows, cfg, get_similarity(cfg.similarity), train_cfg))
    if scored is None:
        refuse_other_settings([name] if cache.entries(name) else [], "dev_natural.py")
        raise SystemExit(f"{name}: no stored scores; run without --report first")
    return report(rows, labels, scored, params, source(name).max_new_tokens)


def main(argv: list[str] | None = None) -> int:
    args, params, typed, cache, model_dir = dev_cli(__doc__, argv)
    lm = None if args.report else load_lm(typed, model_dir)
    names = [n for n in SETS if args.only is None or n in args.only]
    measured = {name: measure(name, cache, params, lm) for name in names}
    if args.only is None:  # the committed file always holds every set
        write_json(HERE / "dev_natural_results.json", measured)
    print(json.dumps(measured, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
