"""The benchmark's cells: the code whose results are stored. One loaded base model scores rows, fine-tunes
adapters, evaluates them and corrects removed rows, calling the pipeline's own functions for every number
(`score_rows`, `fine_tune` as the train stages, answers and metrics as the evaluate stage, `correct_rows`).

Every stored result records the fingerprint of this module and its import closure (`clearcurate.provenance`),
and nothing else: which rows a set holds, which rows a filter removes, the statistics over cells and the
report are not here, because a cell's key already names its rows and settings, so changing them makes other
cells, not stale ones. A result of other code is stale: a run recomputes it, and a report shows its numbers
marked stale and gives no verdict from it.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import baselines
import yaml

from clearcurate import config as params_mod
from clearcurate.answers import BASE, answer_all, test_rows
from clearcurate.cache import ScoreCache
from clearcurate.core import presets
from clearcurate.core.curation import redecide
from clearcurate.core.evaluation import HELDOUT, per_question_scores, with_uncertainty
from clearcurate.core.records import Record
from clearcurate.correction import correct_rows, evidence_settings
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.lora import LoraTrainConfig
from clearcurate.provenance import SRC, code_fingerprint
from clearcurate.scoring import ScoreConfig, confidences, score_rows, stored_settings
from clearcurate.scoring.similarity import get_similarity

if TYPE_CHECKING:  # type hints only: not part of the cells' code (see `current_code`)
    from harness import Cache
    from specs import DatasetSpec

log = logging.getLogger("benchmark")
HERE = Path(__file__).resolve().parent


def current_code() -> tuple[str, dict[str, str]]:
    """The fingerprint of the code a cell runs: this module and its import closure (the benchmark's siblings
    and the package's modules), and the model loading `run.py` does through `clearcurate.llm.factory`, with each
    file's hash. Not harness.py nor run.py: they choose rows, schedule cells and summarise them, which changes
    no stored result (a cell's key names its rows and settings)."""
    return code_fingerprint([HERE / "cells.py", SRC / "clearcurate" / "llm" / "factory.py"], local=[HERE])

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
        # Perplexity and IFD come from the same two forward passes over a set's rows: made once, reported by both.
        self._base_reads: dict[str, tuple[list[Record], float]] = {}
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
        start, hits = time.perf_counter(), self._cache_hits()
        if scorer in ("perplexity", "ifd"):
            key = self.cache.key(self.model_name, train)
            if key not in self._base_reads:
                records = baselines.perplexity_scores(self.lm, train)
                self._base_reads[key] = records, time.perf_counter() - start
            records, seconds = self._base_reads[key]
            scores = [r["neg_loss" if scorer == "perplexity" else "neg_ifd"] for r in records]
            return {"scores": scores, "records": records, "seconds": seconds, "cache_hits": 0}
        if scorer in ("clear", "paper"):
            cfg = self.score_config(spec, "crossfit" if scorer == "clear" else "paper")
            records = score_rows(self.lm, train, cfg, get_similarity(cfg.similarity), self.train_cfg,
                                 cache=self.rows_cache, model_id=self.model_id)
            scores = [r["confidence"] for r in records]
        elif scorer == "rating":
            scores = baselines.direct_rating(self.lm, train)
            records = [{"rating": s} for s in scores]
        else:
            raise ValueError(f"unknown scorer {scorer!r}")
        # Rows read from the scoring cache (an interrupted run's work) make `seconds` less than the work took.
        return {"scores": scores, "records": records, "seconds": time.perf_counter() - start, "cache_hits": self._cache_hits() - hits}

    def _cache_hits(self) -> int:
        return sum(self.rows_cache.hits.values()) if self.rows_cache else 0

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
