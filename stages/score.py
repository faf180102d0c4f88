"""DVC stage `score`: BSDetector confidence for every training row (see clearcurate.scoring)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from clearcurate.cache import ScoreCache, cache_dir, model_fingerprint
from clearcurate.expectations import scored_suite
from clearcurate.llm.openai_api import api_metrics
from clearcurate.pipeline import BASE_MODEL_DIR, api_budget, backend, gate, load_lm, openai_params, setup_logging, stage_params
from clearcurate.records import read_jsonl, write_json, write_jsonl
from clearcurate.scoring import ScoreConfig, score_rows
from clearcurate.similarity import get_similarity
from clearcurate.training import LoraTrainConfig

log = logging.getLogger("score")


def main() -> None:
    setup_logging()
    params = stage_params("score")
    cfg = ScoreConfig.from_params(params["score"])
    rows = read_jsonl("data/prepared/train.jsonl")
    if backend(params["model"]) == "openai" and cfg.recipe != "paper":
        raise SystemExit("score: recipe crossfit trains LoRA fold models locally; with model.backend: openai use score.recipe: paper")
    lm = load_lm(params["model"], openai_params=openai_params(params))
    cache = ScoreCache(cache_dir())
    log.info("per-row results are cached in %s (delete it to clear)", cache.root)
    start = time.perf_counter()
    with api_budget("score"):
        scored = score_rows(
            lm, rows, cfg, get_similarity(cfg.similarity), LoraTrainConfig.from_params(params["train"]),
            cache=cache, model_id=model_fingerprint(BASE_MODEL_DIR),
        )
    seconds = time.perf_counter() - start
    names = ("consistency", "reflection", "likelihood", "relevance", "length")
    components = [c for c in names if scored and all(c in s for s in scored)]
    optional = [c for c in names if c not in components and any(c in s for s in scored)]
    frame = pd.DataFrame({col: [s.get(col) for s in scored] for col in ("id", "confidence", *components, *optional)})
    gate("score", "scored", frame, scored_suite([r["id"] for r in rows], components, optional), params)
    write_jsonl("data/scored/train.jsonl", scored)
    conf = np.array([s["confidence"] for s in scored])
    write_json(
        "metrics/score.json",
        {
            "rows": len(scored),
            "recipe": cfg.recipe,
            "weights_preset": scored[0]["weights_preset"] if scored else None,  # score.weights: auto picks by answer length
            "confidence_mean": float(conf.mean()),
            "confidence_median": float(np.median(conf)),
            "seconds": round(seconds, 1),
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "rows_per_second": round(len(scored) / seconds, 3),
            "reflection_unparsed": sum(int(s.get("reflection_unparsed", 0)) for s in scored),
            **api_metrics(lm),
        },
    )
    log.info(
        "scored %d rows in %.0f s (median confidence %.3f); cache hits %s, misses %s",
        len(scored), seconds, float(np.median(conf)), cache.hits, cache.misses,
    )


if __name__ == "__main__":
    main()
