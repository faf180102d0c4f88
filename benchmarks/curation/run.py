"""Does curation work? CLEAR against the alternatives a user would try, on data with known noise.

Reproduces the CLEAR paper's setup at CPU scale: SQuAD-N and GSM8K-N (20% noise, plus a 0% and
a 40% control), one base model for everything, and every curated set fine-tuned with the same
LoRA budget (`train` in params.yaml) over several seeds. Detection scores: CLEAR (the pipeline's
default crossfit recipe), the paper's base-model recipe, direct 1-5 rating (AlpaGasus),
perplexity and IFD (Superfiltering). Downstream: no curation, a random filter, rating, IFD,
CLEAR Auto-Filter, CLEAR Auto-Filter + Auto-Correct, and the oracle filter; the non-CLEAR filters
remove as many rows as CLEAR's filter, so only *which* rows are removed differs.

Every result (a scorer on a dataset, a model trained on a curated set with a seed) is stored
under raw/results/ as JSON, so an interrupted run resumes where it stopped, and the committed raw
results are the evidence behind the report. The report (RESULTS.md, results.json, results.png)
is written from them after every dataset.

    .venv/bin/python benchmarks/curation/run.py            # full run (about 2 hours on 2 cores)
    .venv/bin/python benchmarks/curation/run.py --quick    # small version, minutes
    .venv/bin/python benchmarks/curation/run.py --report-only   # rebuild the report from raw/
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from clearcurate import baselines
from clearcurate import confidence as cf
from clearcurate.cache import digest
from clearcurate.correction import correct_rows
from clearcurate.curation import CORRECTED, FilterConfig, split_by_threshold, threshold
from clearcurate.evaluation import (
    detection_scores,
    final_number,
    final_number_scores,
    squad_scores,
)
from clearcurate.llm import models
from clearcurate.llm.hf import LocalLM
from clearcurate.noisy_data import (
    Gsm8kNConfig,
    SquadNConfig,
    build_gsm8k_n,
    build_squad_n,
)
from clearcurate.pipeline import load_lm, setup_logging
from clearcurate.records import Record, write_json
from clearcurate.scoring import ScoreConfig, score_rows
from clearcurate.similarity import get_similarity
from clearcurate.training import LoraTrainConfig, attach_lora, train_lora

log = logging.getLogger("benchmark")
HERE = Path(__file__).resolve().parent
SCORERS = ("clear", "paper", "rating", "perplexity", "ifd")
METHODS = ("none", "random", "rating", "ifd", "clear_filter", "clear_correct", "oracle")
METHOD_LABELS = {
    "none": "No curation",
    "random": "Random filter (same count)",
    "rating": "Direct rating 1-5 (AlpaGasus)",
    "ifd": "IFD (Superfiltering)",
    "clear_filter": "CLEAR Auto-Filter",
    "clear_correct": "CLEAR Auto-Filter + Auto-Correct",
    "oracle": "Oracle filter",
}
SCORER_LABELS = {
    "clear": "CLEAR (crossfit, pipeline default)",
    "paper": "CLEAR paper recipe (base model)",
    "rating": "Direct rating 1-5 (AlpaGasus)",
    "perplexity": "Perplexity of the response",
    "ifd": "IFD (Superfiltering)",
}


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark dataset and which downstream methods it trains."""

    name: str
    kind: str  # squad | gsm8k
    noise_rate: float
    n_train: int
    n_test: int
    max_new_tokens: int  # for sampling while scoring and for decoding test answers
    methods: tuple[str, ...]
    ablations: bool = False


def plan(quick: bool) -> list[DatasetSpec]:
    """The full benchmark, or a small one that runs in minutes."""
    if quick:
        return [
            DatasetSpec("squad-n-20", "squad", 0.2, 20, 8, 16, METHODS, ablations=True),
            DatasetSpec("gsm8k-n-20", "gsm8k", 0.2, 20, 8, 32, ("none", "clear_filter", "oracle")),
        ]
    return [
        DatasetSpec("squad-n-20", "squad", 0.2, 100, 90, 32, METHODS, ablations=True),
        DatasetSpec("squad-n-0", "squad", 0.0, 100, 90, 32, ("none", "clear_filter", "clear_correct")),
        DatasetSpec("gsm8k-n-20", "gsm8k", 0.2, 100, 50, 128, ("none", "clear_filter", "clear_correct", "oracle"), ablations=True),
        DatasetSpec("squad-n-40", "squad", 0.4, 100, 90, 32, ("none", "clear_filter", "clear_correct", "oracle")),
    ]


def build(spec: DatasetSpec, data_root: Path) -> tuple[list[Record], list[Record], dict[str, Record]]:
    """Train rows, clean test rows and noise labels (by id), built by the library's seeded builders."""
    if spec.kind == "squad":
        cfg = SquadNConfig(n_train=spec.n_train, n_test=spec.n_test, noise_rate=spec.noise_rate)
        train, test, labels = build_squad_n(data_root / "squad-v1.1-dev" / "dev.jsonl", cfg)
    else:
        cfg_g = Gsm8kNConfig(n_train=spec.n_train, n_test=spec.n_test, noise_rate=spec.noise_rate)
        train, test, labels = build_gsm8k_n(data_root / "gsm8k" / "train.jsonl", data_root / "gsm8k" / "test.jsonl", cfg_g)
    return train, test, {label["id"]: label for label in labels}


def task_metric(spec: DatasetSpec) -> Callable[[Sequence[str], Sequence[Sequence[str]]], dict[str, float]]:
    return squad_scores if spec.kind == "squad" else final_number_scores


def same_answer(spec: DatasetSpec, new: str, clean: str) -> bool:
    """Whether a corrected response matches the clean target (SQuAD: exact match; GSM8K: final number)."""
    if spec.kind == "squad":
        return bool(cf.exact_match(new, clean))
    return final_number(new) is not None and final_number(new) == final_number(clean)


class Cache:
    """JSON results keyed by what produced them; a rerun skips every finished piece of work.

    Read-only (--report-only), a miss is None instead of new work, so a report can be rebuilt
    from whatever has finished.
    """

    def __init__(self, root: Path, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only
        root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(*parts: Any) -> str:
        return digest(*parts)[:20]

    def get(self, name: str) -> Any:
        path = self.root / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, name: str, value: Any) -> Any:
        write_json(self.root / f"{name}.json", value)
        return value

    def fetch(self, name: str, compute: Callable[[], Any]) -> Any:
        """The cached value, else (unless read-only) compute and store it."""
        if (hit := self.get(name)) is not None or self.read_only:
            return hit
        return self.put(name, compute())


class Bench:
    """Holds the one loaded base model and runs scorers and fine-tunings against the cache."""

    def __init__(self, lm: LocalLM | None, params: dict[str, Any], cache: Cache, model_name: str, seeds: int) -> None:
        self.lm = lm
        self.cache = cache
        self.model_name = model_name
        self.seeds = seeds
        self.train_cfg = LoraTrainConfig.from_params(params["train"])
        self.score_params = params["score"]
        self.filter_cfg = FilterConfig(**params["filter"])
        self.eta = float(params["correct"]["eta"])

    # ---- scoring -------------------------------------------------------------------------
    def score_config(self, spec: DatasetSpec, recipe: str) -> ScoreConfig:
        params = {**self.score_params, "recipe": recipe, "max_new_tokens": spec.max_new_tokens}
        if recipe == "paper":
            params["weights"] = {}  # the paper's beta * O + (1 - beta) * S
        return ScoreConfig.from_params(params)

    def score(self, spec: DatasetSpec, scorer: str, train: list[Record]) -> dict[str, Any] | None:
        """Per-row scores (higher = cleaner) of one scorer, with its wall time."""
        key = self.cache.key(self.model_name, train, self.score_params, self.train_cfg, spec.max_new_tokens)
        return self.cache.fetch(f"{spec.name}/score-{scorer}-{key}", lambda: self._score(spec, scorer, train))

    def _score(self, spec: DatasetSpec, scorer: str, train: list[Record]) -> dict[str, Any]:
        log.info("%s: scoring with %s", spec.name, scorer)
        start = time.perf_counter()
        if scorer in ("clear", "paper"):
            cfg = self.score_config(spec, "crossfit" if scorer == "clear" else "paper")
            records = score_rows(self.lm, train, cfg, get_similarity(cfg.similarity), self.train_cfg)
            scores = [r["confidence"] for r in records]
        elif scorer == "rating":
            scores = baselines.direct_rating(self.lm, train)
            records = [{"rating": s} for s in scores]
        else:
            records = baselines.perplexity_scores(self.lm, train)
            scores = [r["neg_loss" if scorer == "perplexity" else "neg_ifd"] for r in records]
        return {"scores": scores, "records": records, "seconds": time.perf_counter() - start}

    # ---- fine-tuning and evaluation ------------------------------------------------------
    def evaluate(self, spec: DatasetSpec, test: list[Record]) -> dict[str, float]:
        texts = self.lm.greedy([self.lm.chat(r["prompt"]) for r in test], spec.max_new_tokens, desc="eval")
        return task_metric(spec)(texts, [r["answers"] for r in test])

    def base_scores(self, spec: DatasetSpec, test: list[Record]) -> dict[str, float] | None:
        name = f"{spec.name}/base-{self.cache.key(self.model_name, test, spec.max_new_tokens)}"
        return self.cache.fetch(name, lambda: self.evaluate(spec, test))

    def train_key(self, rows: list[Record], test: list[Record], seed: int, spec: DatasetSpec) -> str:
        content = [(r["id"], r["prompt"], r["response"]) for r in rows]
        return self.cache.key(self.model_name, content, test, asdict(self.train_cfg), seed, spec.max_new_tokens)

    def finetune(
        self, spec: DatasetSpec, rows: list[Record], test: list[Record], seed: int, then: Callable[[], Any] | None = None
    ) -> dict[str, Any]:
        """Train a fresh adapter on `rows` with the shared budget, evaluate it, optionally run `then` with it attached."""
        cfg = replace(self.train_cfg, seed=seed)
        adapted = attach_lora(self.lm.model, cfg)
        result = train_lora(adapted, self.lm.tokenizer, rows, cfg, desc=f"{spec.name} seed {seed}")
        self.lm.model = adapted
        try:
            scores = self.evaluate(spec, test)
            extra = then() if then is not None else None
        finally:
            self.lm.model = adapted.unload()  # back to the untouched base model
        return {"rows": len(rows), "train_seconds": result.seconds, "steps": result.steps, **scores, "extra": extra}

    def cell(self, spec: DatasetSpec, rows: list[Record], test: list[Record], seed: int) -> dict[str, Any] | None:
        name = f"{spec.name}/train-{self.train_key(rows, test, seed, spec)}"
        return self.cache.fetch(name, lambda: self.finetune(spec, rows, test, seed))

    def filter_and_correct(
        self, spec: DatasetSpec, kept: list[Record], removed: list[Record], test: list[Record], seed: int, orders: Sequence[str]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """CLEAR Auto-Filter model, Auto-Correct with it (one decision set per judge order), then retrain."""
        fname = f"{spec.name}/train-{self.train_key(kept, test, seed, spec)}"
        cname = f"{spec.name}/correct-{self.cache.key(self.train_key(kept, test, seed, spec), removed, self.eta, list(orders))}"
        filtered, corrections = self.cache.get(fname), self.cache.get(cname)
        if (filtered is None or corrections is None) and self.cache.read_only:
            return filtered, None
        if filtered is None or corrections is None:
            def correct() -> dict[str, list[Record]]:
                return {
                    order: correct_rows(
                        self.lm, removed, self.eta, float(self.score_params["beta"]), spec.max_new_tokens, seed=seed, order=order
                    )
                    for order in orders
                }

            filtered = self.finetune(spec, kept, test, seed, then=correct)
            corrections = filtered.pop("extra")
            self.cache.put(fname, filtered)
            self.cache.put(cname, corrections)
        decisions = {d["id"]: d for d in corrections["random"]}
        curated = kept + [{**r, "response": decisions[r["id"]]["new"]} for r in removed if decisions[r["id"]]["outcome"] == CORRECTED]
        corrected = self.cell(spec, curated, test, seed)
        return filtered, None if corrected is None else {**corrected, "corrections": corrections}


def removal_sets(
    spec: DatasetSpec, train: list[Record], labels: dict[str, Record], scores: dict[str, list[float]], gamma: float, seed: int
) -> dict[str, set[str]]:
    """Ids each filter method removes: CLEAR by its threshold, the others the same number of lowest-scored rows."""
    ids = [r["id"] for r in train]
    clear = dict(zip(ids, scores["clear"]))
    _, clear_removed = split_by_threshold(clear, gamma)
    n = len(clear_removed)

    def lowest(values: list[float]) -> set[str]:
        return {ids[i] for i in np.argsort(values, kind="stable")[:n]}

    return {
        "none": set(),
        "random": set(random.Random(f"random-filter-{seed}").sample(ids, n)),
        "rating": lowest(scores["rating"]),
        "ifd": lowest(scores["ifd"]),
        "clear_filter": set(clear_removed),
        "oracle": {i for i in ids if labels[i]["noisy"]},
    }


def calls_per_row(scorer: str, score_cfg: ScoreConfig) -> str:
    """Model work per row, from the configuration (forward = one prompt pass, generation = one sampled answer)."""
    k = score_cfg.k
    return {
        "clear": f"{(score_cfg.folds - 1) * score_cfg.fold_epochs:g} training passes + {k} generations + 3 forwards",
        "paper": f"{k} generations + 2 forwards",
        "rating": "1 forward",
        "perplexity": "2 forwards",
        "ifd": "2 forwards",
    }[scorer]


def ablations(spec_name: str, train: list[Record], labels: dict[str, Record], clear: dict[str, Any], paper: dict[str, Any], score_cfg: ScoreConfig) -> list[dict[str, Any]]:
    """Detection AUROC of CLEAR variants recomputed from the stored samples (no new model calls except embeddings)."""
    from sklearn.metrics import roc_auc_score

    y = [0 if labels[r["id"]]["noisy"] else 1 for r in train]
    if len(set(y)) < 2:
        return []
    weights = score_cfg.component_weights()
    records = clear["records"]
    rows_out: list[dict[str, Any]] = []

    def auc(values: list[float]) -> float:
        return float(roc_auc_score(y, values))

    def variant(k: int, alpha: float, sims: list[list[float]] | None = None) -> list[float]:
        out = []
        for i, (row, rec) in enumerate(zip(train, records)):
            comps = {"reflection": rec["reflection"]}
            if k > 0:
                s = (sims[i] if sims is not None else rec["sample_similarity"])[:k]
                ems = [cf.exact_match(a, row["response"]) for a in rec["samples"][:k]]
                comps["consistency"] = cf.observed_consistency(s, ems, alpha)
                best = max(rec["sample_logprobs"][:k])
                comps["likelihood"] = cf.likelihood_ratio(rec["response_logprob"], best, score_cfg.likelihood_scale)
            w = {n: v for n, v in weights.items() if n in comps}
            out.append(cf.combine(comps, w))
        return out

    for k in (0, 3, score_cfg.k):
        rows_out.append({"ablation": "samples k", "setting": f"k={k}", "auroc": auc(variant(k, score_cfg.alpha))})
    for alpha in (0.0, 0.5, score_cfg.alpha, 1.0):
        rows_out.append({"ablation": "alpha (similarity vs exact match)", "setting": f"alpha={alpha:g}", "auroc": auc(variant(score_cfg.k, alpha))})
    rows_out.append({"ablation": "similarity", "setting": "token_f1", "auroc": auc(variant(score_cfg.k, score_cfg.alpha))})
    try:
        embed = get_similarity("embedding")
    except RuntimeError as err:  # the embedding model is an optional package; rebuild with --report-only where it is
        log.warning("%s: embedding ablation left out: %s", spec_name, err)
    else:
        flat = embed([a for rec in records for a in rec["samples"]], [row["response"] for row, rec in zip(train, records) for _ in rec["samples"]])
        sims = flat.reshape(len(train), -1).tolist()
        rows_out.append({"ablation": "similarity", "setting": "embedding (MiniLM)", "auroc": auc(variant(score_cfg.k, score_cfg.alpha, sims))})
    for label, recs in (("crossfit components", records), ("paper recipe", paper["records"])):
        for beta in (0.0, 0.3, 0.5, 0.7, 1.0):
            vals = [beta * r["consistency"] + (1 - beta) * r["reflection"] for r in recs]
            rows_out.append({"ablation": f"beta, O and S only ({label})", "setting": f"beta={beta:g}", "auroc": auc(vals)})
    components = ("consistency", "reflection", "likelihood")
    for comp in components:
        rows_out.append({"ablation": "single component (crossfit)", "setting": comp, "auroc": auc([r[comp] for r in records])})
    return rows_out


def run_dataset(bench: Bench, spec: DatasetSpec, data_root: Path) -> dict[str, Any] | None:
    """All scorers, filters, fine-tunings and ablations for one dataset (None: not scored yet, report-only)."""
    train, test, labels = build(spec, data_root)
    noisy = {i: bool(label["noisy"]) for i, label in labels.items()}
    scored = {s: bench.score(spec, s, train) for s in SCORERS}
    if any(v is None for v in scored.values()):
        log.info("%s: not scored yet, left out of the report", spec.name)
        return None
    scores = {s: v["scores"] for s, v in scored.items()}
    ids = [r["id"] for r in train]
    gamma = threshold(scores["clear"], bench.filter_cfg)
    clear_cfg = bench.score_config(spec, "crossfit")

    detection = []
    removed_by_seed = {seed: removal_sets(spec, train, labels, scores, gamma, seed) for seed in range(bench.seeds)}
    cut = removed_by_seed[0]
    for s in SCORERS:
        removed = cut["clear_filter"] if s == "clear" else {ids[i] for i in np.argsort(scores[s], kind="stable")[: len(cut["clear_filter"])]}
        det = detection_scores(dict(zip(ids, scores[s])), noisy, removed)
        detection.append({
            "scorer": s, "auroc": det.get("auroc"), "precision": det["filter_precision"], "recall": det["filter_recall"],
            "seconds": scored[s]["seconds"], "seconds_per_row": scored[s]["seconds"] / len(train),
            "calls_per_row": calls_per_row(s, clear_cfg if s == "clear" else bench.score_config(spec, "paper")),
        })

    downstream: dict[str, list[dict[str, Any]]] = {m: [] for m in spec.methods}
    correction: list[dict[str, Any]] = []
    by_id = {r["id"]: r for r in train}
    for seed in range(bench.seeds):
        sets = removed_by_seed[seed]
        for method in spec.methods:
            if method == "clear_correct":
                continue
            removed = sets[method]
            kept = [r for r in train if r["id"] not in removed]
            if method == "clear_filter" and "clear_correct" in spec.methods:
                orders = ("random", "candidate_a", "candidate_b") if spec.ablations and seed == 0 else ("random",)
                filtered, corrected = bench.filter_and_correct(spec, kept, [by_id[i] for i in ids if i in removed], test, seed, orders)
                if filtered is not None:
                    downstream[method].append({**filtered, "removed": len(removed), "removed_noisy": sum(noisy[i] for i in removed)})
                if corrected is None:
                    continue
                corrections = corrected.pop("corrections")
                downstream["clear_correct"].append({**corrected, "removed": len(removed), "removed_noisy": sum(noisy[i] for i in removed)})
                for order, decisions in corrections.items():
                    replaced = [d for d in decisions if d["outcome"] == CORRECTED]
                    correction.append({
                        "seed": seed, "order": order, "candidates": len(decisions), "replaced": len(replaced),
                        "replaced_noisy": sum(noisy[d["id"]] for d in replaced),
                        "replaced_matching_clean": sum(same_answer(spec, d["new"], labels[d["id"]]["clean_response"]) for d in replaced),
                        "candidates_matching_clean": sum(same_answer(spec, d["new"], labels[d["id"]]["clean_response"]) for d in decisions),
                        "mean_preference": float(np.mean([d["judge_preference"] for d in decisions])) if decisions else None,
                        "max_confidence": max((d["confidence"] for d in decisions), default=None),
                    })
            else:
                result = bench.cell(spec, kept, test, seed)
                if result is not None:
                    downstream[method].append({**result, "removed": len(removed), "removed_noisy": sum(noisy[i] for i in removed)})
    return {
        "spec": asdict(spec),
        "gamma": gamma,
        "base": bench.base_scores(spec, test),
        "detection": detection,
        "downstream": downstream,
        "correction": correction,
        "ablations": ablations(spec.name, train, labels, scored["clear"], scored["paper"], clear_cfg) if spec.ablations else [],
    }


# ---- report ----------------------------------------------------------------------------------


def _stat(values: Sequence[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def verdicts(results: dict[str, Any]) -> list[str]:
    """The issue's targets, checked mechanically against the numbers in this report."""
    out = []
    for name, res in results["datasets"].items():
        det = {d["scorer"]: d["auroc"] for d in res["detection"] if d["auroc"] is not None}
        if "clear" in det and len(det) > 1:
            others = {s: a for s, a in det.items() if s != "clear"}
            best = max(others, key=others.get)
            ok = det["clear"] > others[best]
            out.append(f"{name}: CLEAR detection AUROC {det['clear']:.3f} {'beats' if ok else 'does NOT beat'} "
                       f"every other score (best other: {SCORER_LABELS[best]}, {others[best]:.3f}).")
        ds = res["downstream"]
        metric = "exact_match"
        stats = {m: _stat([c[metric] for c in cells]) for m, cells in ds.items() if cells}
        if {"none", "clear_filter"} <= stats.keys():
            (mn, sn), (mf, sf) = stats["none"], stats["clear_filter"]
            noise = res["spec"]["noise_rate"]
            if noise == 0:
                ok = abs(mf - mn) <= max(sn, sf) or mf >= mn
                out.append(f"{name}: no harm at 0% noise: filter {mf:.1f} ± {sf:.1f} vs none {mn:.1f} ± {sn:.1f} "
                           f"-> {'holds' if ok else 'does NOT hold'}.")
            else:
                ok = mf - sf > mn + sn
                out.append(f"{name}: Filter > No curation outside the seed spread: {mf:.1f} ± {sf:.1f} vs "
                           f"{mn:.1f} ± {sn:.1f} -> {'holds' if ok else 'does NOT hold'}.")
            if "clear_correct" in stats:
                mc, _ = stats["clear_correct"]
                out.append(f"{name}: Filter+Correct ≥ Filter: {mc:.1f} vs {mf:.1f} -> {'holds' if mc >= mf else 'does NOT hold'}.")
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["datasets"])
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 7), squeeze=False)
    for col, name in enumerate(names):
        res = results["datasets"][name]
        det = [d for d in res["detection"] if d["auroc"] is not None]
        ax = axes[0][col]
        ax.barh([SCORER_LABELS[d["scorer"]] for d in det], [d["auroc"] for d in det], color="tab:blue")
        if not det:  # a noise-free control has nothing to detect
            ax.text(0.5, 0.5, "no injected noise:\nAUROC undefined", ha="center", va="center", fontsize=9)
            ax.set_yticks([])
        ax.axvline(0.5, color="grey", linestyle=":")
        ax.set_xlim(0, 1)
        ax.set_title(f"{name}: detection AUROC", fontsize=9)
        ax.tick_params(labelsize=7)
        ax = axes[1][col]
        methods = [m for m, cells in res["downstream"].items() if cells]
        stats = [_stat([c["exact_match"] for c in res["downstream"][m]]) for m in methods]
        ax.barh([METHOD_LABELS[m] for m in methods], [s[0] for s in stats], xerr=[s[1] for s in stats], color="tab:green")
        ax.set_title(f"{name}: test exact match (mean ± sd over seeds)", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(results: dict[str, Any], out: Path) -> None:
    """RESULTS.md, results.json and results.png, generated from the numbers only."""
    write_json(out / "results.json", results)
    plot(results, out / "results.png")
    meta = results["meta"]
    lines = [
        "# Curation benchmark results",
        "",
        (
            f"Generated by `{meta['command']}` on {meta['date']} ({meta['machine']}); "
            f"total wall time {meta['wall_minutes']:.0f} min. Model: `{meta['model']}`. Seeds per cell: {meta['seeds']}. "
            "Do not edit by hand: rerun the command."
        ),
        "",
        (
            "Data (built by the seeded builders in `clearcurate.noisy_data` from `../shared/data`): SQuAD v1.1 dev "
            "(CC BY-SA 4.0; SQuAD-N replaces a response with another sentence of its paragraph, train and test split "
            "by article) and GSM8K (MIT; GSM8K-N swaps in another question's worked solution, test from GSM8K's test "
            "split)."
        ),
        "",
        (
            "Every curated set is fine-tuned with the same LoRA budget (`train` in params.yaml: "
            f"{meta['train']['max_steps']} steps of batch {meta['train']['batch_size']}), so curation changes what a "
            "model sees, not how long it trains. Non-CLEAR filters remove as many rows as CLEAR's filter (γ = "
            f"{meta['gamma_setting']}). Spread is the sample standard deviation over seeds (training seed; the random "
            "filter also redraws its rows). Scores are computed once per dataset (seed from params.yaml)."
        ),
        "",
        "![results](results.png)",
        "",
        "## Targets",
        "",
        *[f"- {v}" for v in verdicts(results)],
    ]
    if meta.get("missing"):
        lines += ["", f"Not run yet: {', '.join(meta['missing'])}. Rerun the command: finished work in raw/ is reused."]
    for name, res in results["datasets"].items():
        spec = res["spec"]
        metric = "SQuAD exact match / F1" if spec["kind"] == "squad" else "final-number exact match"
        lines += [
            "",
            f"## {name}",
            "",
            f"{spec['n_train']} training rows ({spec['noise_rate']:.0%} noisy), {spec['n_test']} clean test rows; "
            f"CLEAR threshold γ = {res['gamma']:.3f}. Base model without fine-tuning: {metric} "
            + (" / ".join(f"{v:.1f}" for v in res["base"].values()) if res["base"] else "not run yet") + ".",
            "",
            "Detection of the injected rows (precision/recall of the rows each score would remove):",
            "",
            "| score | AUROC | precision | recall | wall s | s/row | model calls per row |",
            "|---|---|---|---|---|---|---|",
        ]
        for d in res["detection"]:
            auroc = "n/a" if d["auroc"] is None else f"{d['auroc']:.3f}"
            lines.append(f"| {SCORER_LABELS[d['scorer']]} | {auroc} | {d['precision']:.2f} | {d['recall']:.2f} | "
                         f"{d['seconds']:.0f} | {d['seconds_per_row']:.2f} | {d['calls_per_row']} |")
        lines += ["", f"Downstream ({metric} on the clean test set):", "",
                  "| method | rows trained | removed (noisy) | test EM mean ± sd | per seed |" + (" test F1 mean ± sd |" if spec["kind"] == "squad" else ""),
                  "|---|---|---|---|---|" + ("---|" if spec["kind"] == "squad" else "")]
        for method, cells in res["downstream"].items():
            if not cells:
                continue
            em, em_sd = _stat([c["exact_match"] for c in cells])
            per_seed = ", ".join(f"{c['exact_match']:.0f}" for c in cells)
            row = (f"| {METHOD_LABELS[method]} | {cells[0]['rows']} | {cells[0]['removed']} ({cells[0]['removed_noisy']}) | "
                   f"{em:.1f} ± {em_sd:.1f} | {per_seed} |")
            if spec["kind"] == "squad":
                f1, f1_sd = _stat([c["f1"] for c in cells])
                row += f" {f1:.1f} ± {f1_sd:.1f} |"
            lines.append(row)
        if res["correction"]:
            lines += ["", "Auto-Correct (η = " + f"{meta['eta']}): candidates from the filtered model, judged by the base model:", "",
                      "| seed | judge order | candidates | replaced | replaced that were noisy | replaced matching the clean target | candidates matching the clean target | mean P(candidate better) | max confidence |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for c in res["correction"]:
                pref = "n/a" if c["mean_preference"] is None else f"{c['mean_preference']:.3f}"
                mx = "n/a" if c["max_confidence"] is None else f"{c['max_confidence']:.3f}"
                lines.append(f"| {c['seed']} | {c['order']} | {c['candidates']} | {c['replaced']} | {c['replaced_noisy']} | "
                             f"{c['replaced_matching_clean']} | {c['candidates_matching_clean']} | {pref} | {mx} |")
        if res["ablations"]:
            lines += ["", "Ablations (detection AUROC, recomputed from the stored CLEAR samples; defaults from params.yaml):", "",
                      "| ablation | setting | AUROC |", "|---|---|---|"]
            lines += [f"| {a['ablation']} | {a['setting']} | {a['auroc']:.3f} |" for a in res["ablations"]]
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _device_name(lm: LocalLM) -> str:
    import torch

    device = lm.device
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small datasets, one seed: minutes instead of hours")
    parser.add_argument("--model", default=None, help="model.name to benchmark (default: params.yaml's)")
    parser.add_argument("--seeds", type=int, default=None, help="training seeds per cell (default 3; 1 with --quick)")
    parser.add_argument("--only", nargs="*", default=None, help="dataset names to run (default: all in the plan)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="pipeline params: the settings benchmarked")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"), help="folder with squad-v1.1-dev/ and gsm8k/")
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md, results.json and results.png go")
    parser.add_argument("--cache", type=Path, default=HERE / "raw",
                        help="raw results of finished work (results/, committed for the full run) and the converted model (models/)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per forward pass (default: params.yaml's model.batch_size; e.g. 32 on a GPU); changes speed, not results")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from finished work; run nothing")
    args = parser.parse_args(argv)
    setup_logging()
    for needed in (args.params, args.data_root / "squad-v1.1-dev" / "dev.jsonl", args.data_root / "gsm8k" / "train.jsonl"):
        if not needed.exists():
            parser.error(f"{needed} not found (run from the repository root with ../shared beside it, or pass --data-root)")
    params = yaml.safe_load(args.params.read_text(encoding="utf-8"))
    if args.batch_size:
        params["model"]["batch_size"] = args.batch_size
    model_name = args.model or params["model"]["name"]
    seeds = args.seeds or (1 if args.quick else 3)
    specs = [s for s in plan(args.quick) if args.only is None or s.name in args.only]
    safe_name = model_name.replace("/", "_")
    cache = Cache(args.cache / "results" / ("quick" if args.quick else "full") / safe_name, read_only=args.report_only)
    lm = None
    if not args.report_only:  # one model load for the whole run
        model_dir = args.cache / "models" / safe_name
        if not (model_dir / "config.json").exists():
            models.convert_to_safetensors(model_name, model_dir, seed=int(params["model"].get("seed", 0)))
        lm = load_lm(params["model"], model_dir=model_dir)
    bench = Bench(lm, params, cache, model_name, seeds)
    command = " ".join(["python benchmarks/curation/run.py", *[a for a in (argv if argv is not None else sys.argv[1:]) if a != "--report-only"]])
    started = time.perf_counter()
    previous = cache.get("run_meta") or {"wall_seconds": 0.0}
    results: dict[str, Any] = {"datasets": {}}
    for spec in specs:
        outcome = run_dataset(bench, spec, args.data_root)
        if outcome is not None:
            results["datasets"][spec.name] = outcome
        if not args.report_only:  # where and when the work was done, kept with the raw results
            import torch

            previous = cache.put("run_meta", {
                "wall_seconds": previous["wall_seconds"] + time.perf_counter() - started,
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
                           f"Python {platform.python_version()}, model on {_device_name(lm)}",
            })
            started = time.perf_counter()
        if not results["datasets"]:
            continue
        results["meta"] = {
            "command": command, "date": previous.get("date", "n/a"), "machine": previous.get("machine", "n/a"),
            "wall_minutes": previous["wall_seconds"] / 60, "model": model_name, "seeds": seeds, "train": params["train"],
            "gamma_setting": params["filter"]["gamma"] if params["filter"].get("quantile") is None else f"quantile {params['filter']['quantile']}",
            "eta": bench.eta, "missing": [s.name for s in specs if s.name not in results["datasets"]],
        }
        args.out.mkdir(parents=True, exist_ok=True)
        report(results, args.out)
        log.info("%s done; report written to %s", spec.name, args.out / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
