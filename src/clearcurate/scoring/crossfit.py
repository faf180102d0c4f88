"""Cross-fit folds: the rows are split into K folds, and a LoRA adapter trained on the other folds samples and
scores each fold's rows, so no row is scored by a model that saw it (confident learning's out-of-sample scores).
Fold adapters are cached and reused while their training rows barely change; `on_engine` runs every row's
model work on an engine (a Ray cluster) with the same keys and seeds as this process.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from clearcurate.cache import ScoreCache, digest
from clearcurate.config import LoraTrainConfig, ScoreConfig
from clearcurate.core import confidence as cf
from clearcurate.core import presets
from clearcurate.core.records import Record
from clearcurate.llm.base import ChatLM, Engine, RowsFailed
from clearcurate.llm.hf import LocalLM
from clearcurate.scoring.reflection import reflection_keys
from clearcurate.scoring.samples import paper_prompts, sample_cache_keys, sample_raw
from clearcurate.scoring.store import code_version, store_row

log = logging.getLogger(__name__)


# A cached fold adapter keeps scoring new rows while its training rows and the current other-fold
# rows differ by at most this share; beyond it the fold model is retrained (and its rows rescored).
FOLD_REUSE_TOLERANCE = 0.1


def fold_of(row_id: str, folds: int) -> int:
    """Stable fold assignment from the id, so adding rows never reshuffles existing ones."""
    return int(hashlib.sha256(row_id.encode("utf-8")).hexdigest(), 16) % folds


def fold_assignment(rows: Sequence[Record], cfg: ScoreConfig) -> list[int]:
    """Each row's fold: from its id, or (`score.fold_by`) from a field, so that rows sharing it (the same
    prompt answered several times) share a fold and none is scored by a model that saw the others."""
    if cfg.fold_by == "id":
        return [fold_of(r["id"], cfg.folds) for r in rows]
    missing = [r["id"] for r in rows if not isinstance(r.get(cfg.fold_by), str)]
    if missing:
        raise ValueError(f"score.fold_by: {len(missing)} rows have no text field {cfg.fold_by!r}, e.g. {missing[:3]}")
    return [fold_of(f"{cfg.fold_by}:{r[cfg.fold_by]}", cfg.folds) for r in rows]


def repeated_prompts(rows: Sequence[Record]) -> int:
    """Rows whose prompt another row also has: with folds by id, their fold model saw the same prompt."""
    counts = Counter(r["prompt"] for r in rows)
    return sum(n for n in counts.values() if n > 1)


@dataclass
class Fold:
    """One cross-fit fold: its held-out rows, its training rows and where its adapter is cached."""

    number: int
    held: list[int]
    train: list[Record]
    slot: str
    train_rows: list[str]  # per-row content hashes (the adapter's reuse check)
    adapter: Path | None = None  # the cached adapter, once there is one
    gen_prompts: list[str] = field(default_factory=list)
    trained: bool = False  # by this run (else found in the cache)


def folds_of(
    lm: ChatLM, rows: Sequence[Record], cfg: ScoreConfig, fold_cfg: LoraTrainConfig, cache: ScoreCache, model_id: str
) -> list[Fold]:
    """The folds that have rows to score, each with its cached adapter if one fits (`ScoreCache.fold_adapter`)."""
    weights = presets.component_weights(cfg)
    if not any(weights.get(c, 0) > 0 for c in cf.FOLD_COMPONENTS):
        return []  # nothing to score with a fold model
    assignment = fold_assignment(rows, cfg)
    out = []
    for f in range(cfg.folds):
        held = [i for i, x in enumerate(assignment) if x == f]
        if not held:
            continue
        train = [rows[i] for i, x in enumerate(assignment) if x != f]
        slot = f"fold{f + 1}of{cfg.folds}-{digest(model_id, code_version(), asdict(fold_cfg))[:16]}"
        train_rows = [digest(r["id"], r["prompt"], r["response"]) for r in train]
        fold = Fold(f, held, train, slot, train_rows, cache.fold_adapter(slot, train_rows, FOLD_REUSE_TOLERANCE))
        fold.gen_prompts = [lm.chat(rows[i]["prompt"]) for i in held]
        out.append(fold)
    return out


def fold_config(cfg: ScoreConfig, train_cfg: LoraTrainConfig) -> LoraTrainConfig:
    # Fold models train for a fixed number of epochs: fitting longer lets them learn the noisy
    # rows too, and detection drops (measured AUROC 0.85 after one epoch, 0.73 after two).
    return replace(train_cfg, epochs=cfg.fold_epochs, max_steps=0)


def fold_keys(fold: Fold, rows: Sequence[Record], cfg: ScoreConfig, budgets: Sequence[int], model_id: str) -> list[str]:
    """Sample keys of a fold's held-out rows, under its adapter."""
    assert fold.adapter is not None
    held_rows = [rows[i] for i in fold.held]
    return sample_cache_keys(digest(model_id, fold.adapter.name), cfg, True, fold.gen_prompts, held_rows, [budgets[i] for i in fold.held])


def fold_adapters(
    lm: ChatLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    train_cfg: LoraTrainConfig,
    cache: ScoreCache,
    model_id: str,
    engine: Engine | None = None,
) -> list[Fold]:
    """Every cross-fit fold with rows to score, each with its cached adapter: the missing ones are trained
    first, on `engine` (in parallel where it can) or here one at a time, and cached."""
    fold_cfg = fold_config(cfg, train_cfg)
    folds = folds_of(lm, rows, cfg, fold_cfg, cache, model_id)
    untrained = [fold for fold in folds if fold.adapter is None]
    if engine is not None and untrained:
        log.info("cross-fit: training %d fold adapters on the engine", len(untrained))
        for fold, files in zip(untrained, engine.train_folds([fold.train for fold in untrained], fold_cfg)):
            fold.adapter = cache.save_fold_adapter(fold.slot, fold.train_rows, functools.partial(_write_files, files))
    elif untrained:
        for fold in untrained:
            log.info("cross-fit fold %d/%d: train on %d rows, score %d", fold.number + 1, cfg.folds, len(fold.train), len(fold.held))
            adapted, _ = lm.new_adapter(fold.train, fold_cfg, desc=f"fold {fold.number + 1}/{cfg.folds}")
            fold.adapter = cache.save_fold_adapter(fold.slot, fold.train_rows, adapted.save_pretrained)
            lm.model = adapted.unload()  # training changed only the adapter: the base weights are as they were
    for fold in untrained:
        fold.trained = True
    return folds


def crossfit(
    lm: LocalLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    budgets: Sequence[int],
    train_cfg: LoraTrainConfig,
    cache: ScoreCache,
    model_id: str,
) -> tuple[list[Record], list[int | None]]:
    """Cross-fit samples in this process, one fold at a time, each with its adapter merged in."""
    raw: list[Record] = [{} for _ in rows]
    for fold in fold_adapters(lm, rows, cfg, train_cfg, cache, model_id):
        assert fold.adapter is not None
        keys = fold_keys(fold, rows, cfg, budgets, model_id)
        with ExitStack() as stack:
            if not cache.has_all("samples", keys):  # every held row cached: this fold needs no model
                if not fold.trained:
                    log.info("cross-fit fold %d/%d: reusing the cached adapter %s", fold.number + 1, cfg.folds, fold.adapter.name)
                stack.enter_context(lm.using(lm.open_adapter(fold.adapter)))  # the next fold starts from the base model
            fold_raw = sample_raw(lm, [rows[i] for i in fold.held], fold.gen_prompts, cfg, [budgets[i] for i in fold.held], True,
                                   keys, cache, f"{'sample' if cfg.k else 'score'} fold {fold.number + 1}")
        for i, r in zip(fold.held, fold_raw):
            raw[i] = r
    return raw, fold_assignment(rows, cfg)


def on_engine(
    engine: Engine,
    lm: ChatLM,
    rows: Sequence[Record],
    cfg: ScoreConfig,
    budgets: Sequence[int],
    train_cfg: LoraTrainConfig | None,
    cache: ScoreCache,
    model_id: str,
    parts: Sequence[str],
) -> tuple[list[Record], list[int | None], list[Record]]:
    """Samples and reflections of every row, the missing ones computed on `engine` and cached as its blocks finish.

    The keys, seeds and fold adapters are the local engine's, so either engine resumes the other's run.
    """
    n = len(rows)
    gen_prompts: list[str] = [""] * n
    sample_keys: list[str | None] = [None] * n
    adapter_of: list[str | None] = [None] * n
    adapters: dict[str, Path] = {}
    if cfg.recipe == "paper":
        folds: list[int | None] = [None] * n
        if cfg.k:
            gen_prompts = paper_prompts(lm, rows, cfg)
            sample_keys = list(sample_cache_keys(digest(model_id, "base"), cfg, False, gen_prompts, rows, budgets))
    else:
        for fold in fold_adapters(lm, rows, cfg, train_cfg, cache, model_id, engine):
            assert fold.adapter is not None
            adapters[fold.adapter.name] = fold.adapter
            for i, prompt, key in zip(fold.held, fold.gen_prompts, fold_keys(fold, rows, cfg, budgets, model_id)):
                gen_prompts[i], sample_keys[i], adapter_of[i] = prompt, key, fold.adapter.name
        folds = fold_assignment(rows, cfg)
    reflect_keys = reflection_keys(rows, model_id, parts)
    raw: list[Record | None] = [cache.get("samples", k) if k is not None else {} for k in sample_keys]
    reflections: list[Record | None] = [cache.get("reflection", k) if parts else {} for k in reflect_keys]
    tasks = [
        {"index": i, "prompt": rows[i]["prompt"], "response": rows[i]["response"], "gen_prompt": gen_prompts[i], "budget": budgets[i],
         "adapter": adapter_of[i], "with_likelihood": cfg.recipe == "crossfit", "sample": raw[i] is None, "reflect": reflections[i] is None}
        for i in range(n) if raw[i] is None or reflections[i] is None
    ]
    if len(tasks) < n:
        log.info("%d of %d rows from the cache, %d to compute", n - len(tasks), n, len(tasks))
    tasks.sort(key=lambda t: (t["adapter"] or "", -t["budget"], -len(t["gen_prompt"])))  # a block: one fold, similar lengths
    failures: dict[str, str] = {}
    with tqdm(total=len(tasks), desc="score", unit="row", disable=not lm.show_progress or not tasks) as bar:
        for result in engine.run(tasks, cfg, adapters):
            i = result["index"]
            if "samples" in result:
                raw[i] = result["samples"]
                store_row(cache, "samples", sample_keys[i], result["samples"])
            if "reflection" in result:
                reflections[i] = result["reflection"]
                store_row(cache, "reflection", reflect_keys[i], result["reflection"])
            if "error" in result:
                failures[rows[i]["id"]] = result["error"]
            bar.update(1)
    if failures:
        cache.record_failures(failures)
        raise RowsFailed(failures)
    return raw, folds, reflections  # type: ignore[return-value]


def _write_files(files: Mapping[str, bytes], folder: Path) -> None:
    """Write an adapter's files (as an engine returns them) into `folder`."""
    for name, data in files.items():
        (folder / name).write_bytes(data)
