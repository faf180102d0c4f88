"""The benchmark's runs over its cells: which rows each method keeps (the filter stage's thresholds and keep
rule), the cells to compute for each set (`cells.Bench`), and what they say together: detection metrics,
paired comparisons with CIs, Auto-Correct's counts, stale marks. Also the archive the cells are stored in.

Nothing here is in a cell's code fingerprint (`cells.current_code`): it decides which rows a cell trains
on, and a cell's key names those rows, so a change here makes other cells, never wrong ones; the numbers
computed here from stored cells are recomputed by every report.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
import platform
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from cells import JUDGE_OF, ORDER_ABLATION, Bench
from specs import FIXED_QUANTILE, LOWER_IS_BETTER, PRIMARY, PRIMARY_LEVEL, STALE, DatasetSpec, build, shown

from clearcurate.cache import digest
from clearcurate.core import confidence as cf
from clearcurate.core import presets
from clearcurate.core.curation import auto_statistic, keep_mask, threshold
from clearcurate.core.evaluation import (
    correction_scores,
    detection_scores,
    paired_bootstrap,
    same_answer,
    verdict,
)
from clearcurate.core.outcomes import Outcome
from clearcurate.core.records import Record
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.models import native_bf16
from clearcurate.scoring import ScoreConfig, likelihood
from clearcurate.scoring.similarity import get_similarity

log = logging.getLogger("benchmark")
HERE = Path(__file__).resolve().parent


class Cache:
    """JSON results keyed by what produced them; a rerun skips every finished piece of work.

    A result named `<set>/<item>` lives in `<root>/<set>.json.gz`, one compressed archive per set
    (item -> value), so the committed evidence is a few files, not hundreds. Writes are atomic and
    made under a lock, re-reading the archive first: workers sharing a cache (--only-seeds) lose
    none of each other's results. Read-only (--report-only), a miss is None instead of new work,
    so a report can be rebuilt from whatever has finished.
    """

    def __init__(self, root: Path, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only
        self.writes = 0  # results stored by this process: a run that stores none did no work
        self._sets: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {}  # set -> (archive's stamp, items)
        root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(*parts: Any) -> str:
        return digest(*parts)[:20]

    def _path(self, group: str) -> Path:
        return self.root / f"{group}.json.gz"

    def entries(self, group: str) -> dict[str, Any]:
        """Every stored item of one set, re-read when another process has written the archive since."""
        path = self._path(group)
        stamp = self._stamp(path)
        if group not in self._sets or self._sets[group][0] != stamp:
            self._sets[group] = (stamp, json.loads(gzip.decompress(path.read_bytes())) if stamp else {})
        return self._sets[group][1]

    @staticmethod
    def _stamp(path: Path) -> tuple[int, ...]:
        """Changes with every write: each is a new file renamed into place."""
        if not path.exists():
            return ()
        st = path.stat()
        return st.st_mtime_ns, st.st_ino, st.st_size

    def groups(self) -> list[str]:
        return sorted(p.name.removesuffix(".json.gz") for p in self.root.glob("*.json.gz"))

    def get(self, name: str) -> Any:
        group, item = name.split("/")
        return self.entries(group).get(item)

    def put(self, name: str, value: Any) -> Any:
        return self.update(name, lambda _: value)

    def update(self, name: str, change: Callable[[Any], Any]) -> Any:
        """Store `change(stored value or None)`, read and written under the cache's lock."""
        group, item = name.split("/")
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            items = dict(self.entries(group))
            items[item] = value = change(items.get(item))
            data = gzip.compress(json.dumps(dict(sorted(items.items())), ensure_ascii=False).encode(), mtime=0)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{group}.", suffix=".tmp")
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would make a shared cache private
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, self._path(group))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._sets[group] = (self._stamp(self._path(group)), items)
        self.writes += 1
        return value

    def fetch(self, name: str, compute: Callable[[], Any]) -> Any:
        """The cached value, else (unless read-only) compute and store it."""
        if (hit := self.get(name)) is not None or self.read_only:
            return hit
        return self.put(name, compute())


UNCHOSEN = ("none", "oracle", "oracle_correct")  # methods whose rows no score chooses

def removal_sets(
    train: list[Record], labels: dict[str, Record], scores: dict[str, list[float]], gammas: dict[str, float], seed: int,
    defective: Sequence[int] = (),
) -> dict[str, set[str]]:
    """Ids each filter method removes: CLEAR by its thresholds and the filter stage's keep rule, the others the
    same number of lowest-scored rows as CLEAR's fixed-quantile filter, the oracles exactly the noisy rows."""
    ids = [r["id"] for r in train]

    def clear_removes(gamma: float) -> list[str]:
        return [i for i, keep in zip(ids, keep_mask(np.asarray(scores["clear"]), gamma, defective)) if not keep]

    clear_removed, auto_removed = clear_removes(gammas["clear_filter"]), clear_removes(gammas["clear_filter_auto"])
    n = len(clear_removed)

    def lowest(values: list[float]) -> set[str]:
        return {ids[i] for i in np.argsort(values, kind="stable")[:n]}

    oracle = {i for i in ids if labels[i]["noisy"]}
    return {
        "none": set(),
        "random": set(random.Random(f"random-filter-{seed}").sample(ids, n)),
        **{name: lowest(scores[name]) for name in ("rating", "ifd") if name in scores},
        "clear_filter": set(clear_removed),
        "clear_filter_auto": set(auto_removed),
        "oracle": oracle,
        "oracle_correct": oracle,
    }


def calls_per_row(scorer: str, score_cfg: ScoreConfig, samples: int | None = None) -> str:
    """Model work per row (forward = one prompt pass, generation = one sampled answer): from the
    configuration, or for CLEAR the samples its stored rows hold (a preset that weighs no sampled
    component samples nothing)."""
    k = score_cfg.k if samples is None else samples
    return {
        "clear": f"{(score_cfg.folds - 1) * score_cfg.fold_epochs:g} training passes + {k} generations + 3 forwards",
        "paper": f"{k} generations + 2 forwards",
        "rating": "1 forward",
        "perplexity": "2 forwards",
        "ifd": "2 forwards",
    }[scorer]


def ablations(
    spec_name: str, train: list[Record], labels: dict[str, Record], clear: dict[str, Any], paper: dict[str, Any] | None,
    score_cfg: ScoreConfig,
) -> list[dict[str, Any]]:
    """Detection AUROC of CLEAR variants recomputed from the stored samples (no new model calls except embeddings)."""
    from sklearn.metrics import roc_auc_score

    y = [0 if labels[r["id"]]["noisy"] else 1 for r in train]
    if len(set(y)) < 2:
        return []
    records = clear["records"]
    # Results stored before presets existed were scored with the weights that are now the short preset.
    score_cfg = presets.applied(score_cfg, records[0].get("weights_preset", "short"))
    weights = presets.component_weights(score_cfg)
    rows_out: list[dict[str, Any]] = []

    def auc(values: list[float]) -> float:
        return float(roc_auc_score(y, values))

    def variant(k: int, alpha: float, sims: list[list[float]] | None = None) -> list[float]:
        out = []
        for i, (row, rec) in enumerate(zip(train, records)):
            comps = {c: rec[c] for c in ("reflection", "relevance") if c in rec}  # reflection: computed only where weighted
            if k > 0:
                s = (sims[i] if sims is not None else rec["sample_similarity"])[:k]
                ems = [cf.exact_match(a, row["response"]) for a in rec["samples"][:k]]
                comps["consistency"] = cf.observed_consistency(s, ems, alpha)
                tokens = rec.get("sample_tokens") or [1] * len(rec["samples"])  # per-response results need no counts
                comps["likelihood"] = likelihood(rec["response_logprob"], rec.get("response_tokens", 1), rec["sample_logprobs"][:k],
                                                 tokens[:k], score_cfg)
            w = {n: v for n, v in weights.items() if n in comps}
            out.append(cf.combine(comps, w))
        return out

    sampled = "samples" in records[0]  # a preset that weighs no sampled component samples nothing to ablate
    if not sampled:
        log.info("%s: CLEAR sampled nothing (preset %s): no ablations of samples, alpha or similarity",
                 spec_name, records[0].get("weights_preset"))
    for k in (0, 3, score_cfg.k) if sampled else ():
        rows_out.append({"ablation": "samples k", "setting": f"k={k}", "auroc": auc(variant(k, score_cfg.alpha))})
    for alpha in (0.0, 0.5, score_cfg.alpha, 1.0) if sampled else ():
        rows_out.append(
            {"ablation": "alpha (similarity vs exact match)", "setting": f"alpha={alpha:g}", "auroc": auc(variant(score_cfg.k, alpha))}
        )
    if sampled:
        rows_out.append({"ablation": "similarity", "setting": "token_f1", "auroc": auc(variant(score_cfg.k, score_cfg.alpha))})
    try:
        embed = get_similarity("embedding") if sampled else None
    except RuntimeError as err:  # the embedding model is an optional package; rebuild with --report-only where it is
        log.warning("%s: embedding ablation left out: %s", spec_name, err)
        embed = None
    if embed is not None:
        flat = embed(
            [a for rec in records for a in rec["samples"]], [row["response"] for row, rec in zip(train, records) for _ in rec["samples"]]
        )
        sims = flat.reshape(len(train), -1).tolist()
        rows_out.append(
            {"ablation": "similarity", "setting": "embedding (MiniLM)", "auroc": auc(variant(score_cfg.k, score_cfg.alpha, sims))}
        )
    for label, recs in (("crossfit components", records), *((("paper recipe", paper["records"]),) if paper else ())):
        if "reflection" not in recs[0]:
            continue  # scored with weights that give reflection none, so it was not computed
        for beta in (0.0, 0.3, 0.5, 0.7, 1.0):
            vals = [beta * r["consistency"] + (1 - beta) * r["reflection"] for r in recs]
            rows_out.append({"ablation": f"beta, O and S only ({label})", "setting": f"beta={beta:g}", "auroc": auc(vals)})
    components = ("consistency", "reflection", "likelihood", "relevance")
    for comp in (c for c in components if c in records[0]):
        rows_out.append({"ablation": "single component (crossfit)", "setting": comp, "auroc": auc([r[comp] for r in records])})
    return rows_out


def run_dataset(bench: Bench, spec: DatasetSpec, data_root: Path) -> dict[str, Any] | None:
    """All scorers, filters, fine-tunings and ablations for one dataset (None: not scored yet, report-only)."""
    train, test, labels = build(spec, data_root)
    noisy = {i: bool(label["noisy"]) for i, label in labels.items()}
    scored = {s: bench.score(spec, s, train) for s in spec.scorers}
    if any(v is None for v in scored.values()):
        log.info("%s: not scored yet, left out of the report", spec.name)
        return None
    scores = {s: v["scores"] for s, v in scored.items()}
    ids = [r["id"] for r in train]
    # The filter stage's decisions: its thresholds (auto estimates the noisy share from the likelihood
    # log-ratio where the rows have it, as `stages/filter.py` does) and its keep rule (a row with a defect goes).
    clear_records = scored["clear"]["records"]
    auto = threshold(scores["clear"], replace(bench.filter_cfg, quantile="auto"), auto_statistic(clear_records))
    fixed = threshold(scores["clear"], replace(bench.filter_cfg, quantile=FIXED_QUANTILE))
    gammas = {"clear_filter": fixed.gamma, "clear_filter_auto": auto.gamma}
    defective = [i for i, r in enumerate(clear_records) if r.get("defects")]
    clear_cfg = bench.score_config(spec, "crossfit")
    seeds = bench.seeds_for(spec)

    detection = []
    removed_by_seed = {seed: removal_sets(train, labels, scores, gammas, seed, defective) for seed in range(seeds)}
    cut = removed_by_seed[0]
    for s in spec.scorers:
        n_cut = len(cut["clear_filter"])
        removed = cut["clear_filter"] if s == "clear" else {ids[i] for i in np.argsort(scores[s], kind="stable")[:n_cut]}
        det = detection_scores(dict(zip(ids, scores[s])), noisy, removed)
        detection.append({
            "scorer": s, "auroc": det.get("auroc"), "precision": det["filter_precision"], "recall": det["filter_recall"],
            "seconds": scored[s]["seconds"], "seconds_per_row": scored[s]["seconds"] / len(train), "stale": scored[s]["stale"],
            "cache_hits": scored[s].get("cache_hits"),  # None: stored before they were counted
            "calls_per_row": calls_per_row(s, clear_cfg, len(scored[s]["records"][0].get("samples", []))) if s == "clear"
            else calls_per_row(s, bench.score_config(spec, "paper")),
        })

    downstream: dict[str, list[dict[str, Any]]] = {m: [] for m in spec.methods}
    correction: dict[str, list[dict[str, Any]]] = {}
    by_id = {r["id"]: r for r in train}
    correct_methods = [m for m in spec.methods if m in JUDGE_OF]
    # Rows chosen by a stale score make a stale cell, whatever code trained on them (the count too: the others
    # remove as many rows as CLEAR's filter).
    chosen_stale = any(v["stale"] for v in scored.values())

    def add(method: str, result: dict[str, Any], *also_stale: bool, **extra: Any) -> None:
        stale = result["stale"] or any(also_stale) or (chosen_stale and method not in UNCHOSEN)
        downstream[method].append({**result, **extra, "stale": stale})

    for seed in bench.seeds_to_train(spec):
        sets = removed_by_seed[seed]
        for method in spec.methods:
            if method in JUDGE_OF:
                continue
            removed = sets[method]
            kept = [r for r in train if r["id"] not in removed]
            base = {"removed": len(removed), "removed_noisy": sum(noisy[i] for i in removed)}
            if method == "oracle_correct":  # the ceiling for Auto-Correct: every noisy row gets its clean response back
                rows = [{**r, "response": labels[r["id"]]["clean_response"]} if noisy[r["id"]] else r for r in train]
                if (result := bench.cell(spec, rows, test, seed)) is not None:
                    add(method, result, **{**base, "removed": 0}, seed=seed)
                continue
            if method != "clear_filter" or not correct_methods:
                if (result := bench.cell(spec, kept, test, seed)) is not None:
                    add(method, result, **base, seed=seed)
                continue
            variants = [JUDGE_OF[m] for m in correct_methods]
            if spec.ablations and seed == 0 and "clear_correct_pairwise" in correct_methods:
                variants += list(ORDER_ABLATION)
            removed_rows = [by_id[i] for i in ids if i in removed]
            filtered, corrections = bench.filter_and_correct(spec, kept, removed_rows, test, seed, variants)
            if filtered is not None:
                add(method, filtered, **base, seed=seed)
            if corrections is None:
                continue
            for variant, decisions in corrections.items():
                judged = {"seed": seed, **correction_scores(decisions, labels), **_judge_stats(decisions, labels),
                          "stale": filtered["stale"] or chosen_stale}
                correction.setdefault(variant, []).append(judged)
            for m in correct_methods:
                decisions = {d["id"]: d for d in corrections[JUDGE_OF[m]]}
                curated = kept + [
                    {**r, "response": decisions[r["id"]]["new"]} for r in removed_rows if decisions[r["id"]]["outcome"] == Outcome.CORRECTED
                ]
                if (result := bench.cell(spec, curated, test, seed)) is not None:
                    add(m, result, filtered["stale"], **base, seed=seed)  # its rows come from the judges' decisions too
    base_scores = bench.base_scores(spec, test) if test else None  # a detection-only set has no test rows
    cells = [*scored.values(), *(c for cs in downstream.values() for c in cs), *([base_scores] if base_scores else [])]
    return {
        "code": {"fingerprint": bench.code, "results": len(cells), "stale": sum(c["stale"] for c in cells),
                 "scores_stale": chosen_stale},
        "spec": asdict(spec),
        "gammas": gammas,
        "auto_estimated_noise_share": auto.estimated_noise_share,
        "base": base_scores,
        "detection": detection,
        "downstream": downstream,
        "paired": paired_differences(downstream),
        # Does correcting add anything to filtering? Same seeds, same questions.
        "correct_vs_filter": paired_differences({m: downstream.get(m, []) for m in ("clear_filter", "clear_correct")},
                                                reference="clear_filter").get("clear_correct"),
        "primary": {f"{method} vs {reference}": vs[method] for name, method, reference in PRIMARY if name == spec.name
                    and (vs := paired_differences({m: downstream.get(m, []) for m in (method, reference)}, reference, PRIMARY_LEVEL))},
        "correction": correction,
        "ablations": ablations(spec.name, train, labels, scored["clear"], scored.get("paper"), clear_cfg) if spec.ablations else [],
    }


def _judge_stats(decisions: list[Record], labels: dict[str, Record]) -> dict[str, Any]:
    """What the judge saw: its mean preference and largest confidence (is eta ever reachable?), and
    on how many noisy rows its candidate was right, replaced or not: the most any eta could repair."""
    prefs = [d.get("judge_preference", d.get("likelihood_preference")) for d in decisions]
    prefs = [p for p in prefs if p is not None]
    noisy = [d for d in decisions if labels[d["id"]]["noisy"]]
    return {"mean_preference": float(np.mean(prefs)) if prefs else None,
            "max_confidence": max((d["confidence"] for d in decisions), default=None),
            "noisy_candidate_right": sum(bool(d.get("new")) and same_answer(d["new"], labels[d["id"]]["clean_response"]) for d in noisy)}


def paired_differences(
    downstream: dict[str, list[dict[str, Any]]], reference: str = "none", level: float = 0.95
) -> dict[str, dict[str, Any]]:
    """Every method against `reference` (No curation), paired by seed and test question, with a bootstrap CI at `level`;
    no verdict where a cell behind it is stale."""
    out: dict[str, dict[str, Any]] = {}
    ref = {c["seed"]: c for c in downstream.get(reference, [])}
    for method, cells in downstream.items():
        pairs = [(c, ref[c["seed"]]) for c in cells if method != reference and c["seed"] in ref]
        if not pairs:
            continue
        stale = any(c.get("stale") or n.get("stale") for c, n in pairs)
        res: dict[str, Any] = {"seeds": len(pairs), "level": level, "stale": stale}
        shared = set.intersection(*(set(c["per_question"]) & set(n["per_question"]) for c, n in pairs))
        for metric in sorted(shared, key=list(pairs[0][0]["per_question"]).index):
            a = np.array([c["per_question"][metric] for c, _ in pairs])
            b = np.array([n["per_question"][metric] for _, n in pairs])
            diff, lo, hi = paired_bootstrap(a, b, level=level)
            said = verdict(-hi, -lo) if metric in LOWER_IS_BETTER else verdict(lo, hi)  # "better" means lower loss
            said = STALE if stale else said
            res[metric] = {"diff": shown(metric, diff), "low": shown(metric, lo), "high": shown(metric, hi), "verdict": said}
        out[method] = res
    return out



def _device_name(lm: LocalLM) -> str:
    import torch

    device = lm.device
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def record_work(cache: Cache, meta_name: str, seconds: float, lm: LocalLM) -> None:
    """Add this process's work on a dataset (time, date, machine) to what its raw results record.
    Workers sharing a cache (--only-seeds) each add theirs (`Cache.update` holds the lock), so none
    is lost; their times add up (process time, more than the wall time of parallel work)."""
    import torch

    # Whether bf16 is native says which arithmetic `train.precision: auto` trained in: bf16 and fp32 give other numbers.
    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
               f"Python {platform.python_version()}, model on {_device_name(lm)}, native bf16 {'yes' if native_bf16(lm.device) else 'no'}")

    def add(previous: dict[str, Any] | None) -> dict[str, Any]:
        previous = previous or {"wall_seconds": 0.0, "machines": []}
        return {"wall_seconds": previous["wall_seconds"] + seconds, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "machines": sorted({*previous["machines"], machine})}

    cache.update(meta_name, add)
