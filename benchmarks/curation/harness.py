"""The benchmark's work: one loaded base model scores, filters, corrects and fine-tunes against a cache of
JSON results, calling the pipeline's own functions for every decision and number: thresholds, corrections,
training (`fine_tune`, as the train stages), answers and metrics (as the evaluate stage).

Every stored result records the fingerprint of the code that made it (`clearcurate.provenance`: this module
and everything it imports). A result of other code is stale: a run recomputes it, and a report shows its
numbers marked stale and gives no verdict from it.
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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import baselines
import numpy as np
import yaml
from specs import FIXED_QUANTILE, LOWER_IS_BETTER, PRIMARY, PRIMARY_LEVEL, STALE, DatasetSpec, build, shown

from clearcurate import config as params_mod
from clearcurate.answers import BASE, answer_all, test_rows
from clearcurate.cache import ScoreCache, digest
from clearcurate.core import confidence as cf
from clearcurate.core import presets
from clearcurate.core.curation import auto_statistic, keep_mask, redecide, threshold
from clearcurate.core.evaluation import (
    HELDOUT,
    correction_scores,
    detection_scores,
    paired_bootstrap,
    per_question_scores,
    same_answer,
    verdict,
    with_uncertainty,
)
from clearcurate.core.outcomes import Outcome
from clearcurate.core.records import Record
from clearcurate.correction import correct_rows, evidence_settings
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.lora import LoraTrainConfig
from clearcurate.provenance import SRC, code_fingerprint
from clearcurate.scoring import ScoreConfig, confidences, likelihood, score_rows, stored_settings
from clearcurate.scoring.similarity import get_similarity

log = logging.getLogger("benchmark")
HERE = Path(__file__).resolve().parent


def current_code() -> tuple[str, dict[str, str]]:
    """The fingerprint of the code a cell runs: this module and its import closure (the benchmark's siblings
    and the package's modules), and the model loading `run.py` does through `clearcurate.llm.factory`, with each
    file's hash. Not run.py itself: it schedules cells and writes the report, which changes no cell."""
    return code_fingerprint([HERE / "harness.py", SRC / "clearcurate" / "llm" / "factory.py"], local=[HERE])

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

# Auto-Correct variants: the judge each correct method uses; the order variants are the position-bias ablation.
JUDGE_OF = {"clear_correct": "agreement", "clear_correct_pairwise": "pairwise"}
ORDER_ABLATION = ("candidate_a", "candidate_b")


def load_params(path: Path, batch_size: int | None = None) -> tuple[dict[str, Any], params_mod.Params]:
    """params.yaml validated whole (a typo or a bad value stops the run before any work), and its
    values as written: cache keys are digests of those, so a finished cell keeps its key when the
    code's types change (e.g. `epochs: 1` stays 1, not 1.0)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if batch_size:
        raw["model"]["batch_size"] = batch_size
    try:
        return raw, params_mod.parse(raw, str(path))
    except params_mod.ParamsError as err:
        raise SystemExit(str(err)) from None


def train_config(values: dict[str, Any]) -> LoraTrainConfig:
    """`train` as written in params.yaml (see `load_params`); unknown keys still fail."""
    return LoraTrainConfig(**{**values, "target_modules": tuple(values["target_modules"])})


# Settings added after cells were stored, at the value that reproduces how those cells were made: left out of
# cell keys at that value (as `clearcurate.scoring.store.ADDED_AT` does for scoring), so that the settings file
# cells were made with (LEGACY_SETTINGS) still finds them.
TRAIN_ADDED_AT = {"precision": "fp32"}  # issue 30: training was float32 before train.precision
# Training settings that change memory and speed, not what a model learns (up to float rounding, as `--batch-size`
# does for inference): never in a cell's key. The code fingerprint still marks every cell made before they existed.
TRAIN_SPEED_ONLY = ("max_batch_tokens",)
CORRECT_ADDED_AT = {"max_new_tokens_cap": 0,  # issue 31: Auto-Correct's budget was fixed before its cap
                    "top_p": 1.0}  # issue 31: its samples came from the whole distribution before correct.top_p
# params.yaml as it was when the cells stored before issue 30 were made (877b02a), with the added settings at their old
# behaviour: `--report-only` finds a set's cells under these when it has none under today's, and marks them stale.
LEGACY_SETTINGS = HERE / "settings_before_issue30.yaml"


def keyed(values: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """A config's values as a cell key names them: settings added later are left out at their old value."""
    return {k: v for k, v in values.items() if not (k in added and v == added[k])}


def train_key_values(cfg: LoraTrainConfig) -> dict[str, Any]:
    """The training settings a cell's key names: all but `TRAIN_SPEED_ONLY`, and `TRAIN_ADDED_AT` at their old value."""
    shown = keyed({f.name: getattr(cfg, f.name) for f in fields(cfg)}, TRAIN_ADDED_AT)
    return {k: v for k, v in shown.items() if k not in TRAIN_SPEED_ONLY}


def train_key_text(cfg: LoraTrainConfig) -> str:
    """The training config as score keys have always named it (its dataclass repr), less what `train_key_values` leaves out."""
    shown = train_key_values(cfg)
    return f"{type(cfg).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def spec_train_config(spec: DatasetSpec, train_cfg: LoraTrainConfig) -> LoraTrainConfig:
    """The budget a set's models train with: its own step count where it names one (larger sets need more steps)."""
    return replace(train_cfg, max_steps=spec.max_steps) if spec.max_steps else train_cfg


class Bench:
    """Holds the one loaded base model and runs scorers and fine-tunings against the cache."""

    def __init__(
        self, lm: LocalLM | None, params: dict[str, Any], cache: Cache, model_name: str, seeds: int,
        rows_cache: ScoreCache | None = None, model_id: str = "", only_seeds: Sequence[int] | None = None,
        legacy: bool = False,
    ) -> None:
        self.lm = lm
        self.legacy = legacy  # reads cells made under LEGACY_SETTINGS: every one is stale, whatever its code
        self.only_seeds = None if only_seeds is None else set(only_seeds)  # parallel workers each take some seeds
        self.cache = cache
        self.rows_cache = rows_cache  # per-row samples and fold adapters: a long scoring run resumes mid-way
        self.model_id = model_id
        self.model_name = model_name
        self.seeds = seeds
        self.train_cfg = train_config(params["train"])  # as written: its values are cache keys (see `load_params`)
        self.score_params = params["score"]
        self.eval_cap = int(params["evaluate"]["max_new_tokens_cap"])  # answers as long as the reference needs, at most this
        self.code, self.code_files = current_code()
        typed = params_mod.parse(params, "params")  # the stages' own configs (correct's beta is score.beta, as there)
        self.filter_cfg = typed.filter
        self.correct_cfg = typed.correct_config()

    def seeds_for(self, spec: DatasetSpec) -> int:
        return spec.seeds or self.seeds

    def seeds_to_train(self, spec: DatasetSpec) -> list[int]:
        """The seeds this process trains: all of the set's, or those asked for that the set has."""
        return [s for s in range(self.seeds_for(spec)) if self.only_seeds is None or s in self.only_seeds]

    # ---- scoring -------------------------------------------------------------------------
    def score_params_for(self, spec: DatasetSpec) -> dict[str, Any]:
        """params.yaml's `score`, with the set's `fold_by` where it names one (a set with several answers per prompt)."""
        return {**self.score_params, **({"fold_by": spec.fold_by} if spec.fold_by else {})}

    def score_config(self, spec: DatasetSpec, recipe: str) -> ScoreConfig:
        params = {**self.score_params_for(spec), "recipe": recipe, "max_new_tokens": spec.max_new_tokens}
        if recipe == "paper":
            params["weights"] = {}  # the paper's beta * O + (1 - beta) * S
        return ScoreConfig(**params)

    def score(self, spec: DatasetSpec, scorer: str, train: list[Record]) -> dict[str, Any] | None:
        """Per-row scores (higher = cleaner) of one scorer, with its wall time. CLEAR's confidences are
        recomputed from the stored components with the current presets, so a preset chosen after the
        work was stored (on development sets) applies without new model calls."""
        stored_with = stored_settings(self.score_params_for(spec))  # what only recombines is recombined below, not rescored
        key = self.cache.key(self.model_name, train, stored_with, train_key_text(self.train_cfg), spec.max_new_tokens)
        result = self.fetch(f"{spec.name}/score-{scorer}-{key}", lambda: self._score(spec, scorer, train))
        if result is None or scorer != "clear":
            return result
        preset = result["records"][0].get("weights_preset", "short")  # stored before presets existed: today's short one
        cfg = presets.applied(self.score_config(spec, "crossfit"), preset)
        return {**result, "scores": [c for c, _ in confidences(result["records"], cfg, preset)]}

    def _score(self, spec: DatasetSpec, scorer: str, train: list[Record]) -> dict[str, Any]:
        log.info("%s: scoring with %s", spec.name, scorer)
        start, hits = time.perf_counter(), sum(self.rows_cache.hits.values()) if self.rows_cache else 0
        if scorer in ("clear", "paper"):
            cfg = self.score_config(spec, "crossfit" if scorer == "clear" else "paper")
            records = score_rows(self.lm, train, cfg, get_similarity(cfg.similarity), self.train_cfg,
                                 cache=self.rows_cache, model_id=self.model_id)
            scores = [r["confidence"] for r in records]
        elif scorer == "rating":
            scores = baselines.direct_rating(self.lm, train)
            records = [{"rating": s} for s in scores]
        else:
            records = baselines.perplexity_scores(self.lm, train)
            scores = [r["neg_loss" if scorer == "perplexity" else "neg_ifd"] for r in records]
        # Rows read from the scoring cache (an interrupted run's work) make `seconds` less than the work took.
        cached = (sum(self.rows_cache.hits.values()) if self.rows_cache else 0) - hits
        return {"scores": scores, "records": records, "seconds": time.perf_counter() - start, "cache_hits": cached}

    # ---- provenance ------------------------------------------------------------------------
    def fetch(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """A stored result with `stale` (made by other code) added, or (unless read-only) a new one of this code.
        A stale result is recomputed and replaced when the run may work; a report shows it, marked."""
        hit = self.cache.get(name)
        if hit is not None and (hit.get("code") == self.code or self.cache.read_only):
            return self.marked(hit)
        if self.cache.read_only:
            return None
        return self.marked(self.store(name, compute()))

    def marked(self, result: dict[str, Any]) -> dict[str, Any]:
        """A stored result under today's names, with `stale`: made by other code than this."""
        return {**_current_names(result), "stale": self.legacy or result.get("code") != self.code}

    def store(self, name: str, value: dict[str, Any]) -> dict[str, Any]:
        """Store `value` with this code's fingerprint; the set's archive keeps each fingerprint's file hashes
        once, so a later report can say which files changed since."""
        group = name.split("/")[0]
        if self.cache.get(f"{group}/code-{self.code}") is None:
            self.cache.put(f"{group}/code-{self.code}", self.code_files)
        return self.cache.put(name, {**value, "code": self.code})

    # ---- fine-tuning and evaluation: the train and evaluate stages' own calls ------------------
    def evaluate(self, spec: DatasetSpec, test: list[Record], model: str = BASE, adapters: dict[str, str] | None = None) -> dict[str, Any]:
        """The evaluate stage's answers and metrics for one model (the base model, or a loaded adapter), with
        the per-question scores the paired bootstrap needs. The answer budget is the stage's rule with the
        set's `max_new_tokens` as its floor (the stage's is `evaluate.max_new_tokens`)."""
        rows = test_rows(self.lm, test, spec.max_new_tokens, self.eval_cap)
        answers = answer_all(self.lm, None, rows, [model], True, adapters or {})
        texts, nll = [a[model]["text"] for a in answers], [a[model]["nll"] for a in answers]
        per_question = per_question_scores(texts, test, nll)
        return {**with_uncertainty(per_question), "per_question": per_question}

    def base_scores(self, spec: DatasetSpec, test: list[Record]) -> dict[str, Any] | None:
        name = f"{spec.name}/base-{self.cache.key(self.model_name, test, spec.max_new_tokens)}"
        return self.fetch(name, lambda: self.evaluate(spec, test))

    def train_cfg_for(self, spec: DatasetSpec, seed: int) -> LoraTrainConfig:
        return replace(spec_train_config(spec, self.train_cfg), seed=seed)

    def train_key(self, rows: list[Record], test: list[Record], seed: int, spec: DatasetSpec) -> str:
        content = [(r["id"], r["prompt"], r["response"]) for r in rows]
        train = train_key_values(self.train_cfg_for(spec, seed))
        return self.cache.key(self.model_name, content, test, train, spec.max_new_tokens)

    def finetune(
        self, spec: DatasetSpec, rows: list[Record], test: list[Record], seed: int, then: Callable[[], Any] | None = None
    ) -> dict[str, Any]:
        """Train an adapter on `rows` as the train stages do (`fine_tune`, written to a folder), load it as the
        evaluate stage does and evaluate it; optionally run `then` with it in use. The base model is back after."""
        cfg = self.train_cfg_for(spec, seed)
        with tempfile.TemporaryDirectory(prefix="bench-adapter-") as folder:
            self.lm.fine_tune(rows, cfg, folder, f"{spec.name} seed {seed}")
            trained = json.loads((Path(folder) / "train_log.json").read_text(encoding="utf-8"))
            self.lm.load_adapters({"trained": folder})
            try:
                scores = self.evaluate(spec, test, "trained", {"trained": folder})
                extra = then() if then is not None else None  # evaluate left the adapter in use
            finally:
                self.lm.drop_adapters()
        return {"rows": len(rows), "train_seconds": trained["seconds"], "steps": trained["steps"], **scores, "extra": extra}

    def cell(self, spec: DatasetSpec, rows: list[Record], test: list[Record], seed: int) -> dict[str, Any] | None:
        name = f"{spec.name}/train-{self.train_key(rows, test, seed, spec)}"
        return self.fetch(name, lambda: self.finetune(spec, rows, test, seed))

    def filter_and_correct(
        self, spec: DatasetSpec, kept: list[Record], removed: list[Record], test: list[Record], seed: int, variants: Sequence[str]
    ) -> tuple[dict[str, Any] | None, dict[str, list[Record]] | None]:
        """The CLEAR Auto-Filter model, and Auto-Correct's decisions with it for each judge variant.

        A variant is a judge (agreement, pairwise: both orders) or a fixed-slot pairwise judge
        (candidate_a, candidate_b: the position-bias ablation). The filtered model proposes and,
        for the agreement judge, samples: it never trained on the removed rows. The stored evidence
        does not depend on eta (its key leaves eta out); the decisions are taken at params' eta on reading.
        """
        key = self.train_key(kept, test, seed, spec)
        fname = f"{spec.name}/train-{key}"
        evidence = keyed(evidence_settings(self.correct_cfg), CORRECT_ADDED_AT)
        cname = f"{spec.name}/correct-{self.cache.key(key, removed, evidence, list(variants))}"
        filtered, corrections = self.cache.get(fname), self.cache.get(cname)
        made_here = all(c is not None and c.get("code") == self.code for c in (filtered, corrections))
        if not made_here and not self.cache.read_only:  # made together: one stale (or missing) means both are redone
            def correct() -> dict[str, list[Record]]:
                out = {}
                for variant in variants:
                    judge = "agreement" if variant == "agreement" else "pairwise"
                    order = variant if variant in ORDER_ABLATION else "both"
                    cfg = replace(self.correct_cfg, judge=judge, order=order, max_new_tokens=spec.max_new_tokens, seed=seed)
                    out[variant] = correct_rows(self.lm, removed, cfg)
                return out

            filtered = self.finetune(spec, kept, test, seed, then=correct)
            corrections = {"variants": filtered.pop("extra")}
            filtered, corrections = self.store(fname, filtered), self.store(cname, corrections)
            made_here = True
        if filtered is None or corrections is None:  # read-only, not run yet
            return (None if filtered is None else self.marked(filtered)), None
        # Stored before cells knew their code, the judges' decisions were the whole item.
        by_variant = corrections.get("variants", corrections)
        eta = self.correct_cfg.eta
        return ({**self.marked(filtered), "stale": not made_here},
                {variant: [redecide(d, eta) for d in decisions] for variant, decisions in by_variant.items()})


def _current_names(result: dict[str, Any]) -> dict[str, Any]:
    """A result under today's metric names: cells stored before the benchmark used the evaluate stage's
    metrics called held-out loss `heldout_nll` (kept readable, marked stale, until rerun)."""
    if "heldout_nll" not in result:
        return result
    renamed = {HELDOUT if k == "heldout_nll" else k: v for k, v in result.items()}
    if "per_question" in result:
        renamed["per_question"] = {HELDOUT if k == "heldout_nll" else k: v for k, v in result["per_question"].items()}
    return renamed


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

    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
               f"Python {platform.python_version()}, model on {_device_name(lm)}")

    def add(previous: dict[str, Any] | None) -> dict[str, Any]:
        previous = previous or {"wall_seconds": 0.0, "machines": []}
        return {"wall_seconds": previous["wall_seconds"] + seconds, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "machines": sorted({*previous["machines"], machine})}

    cache.update(meta_name, add)
