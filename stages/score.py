"""DVC stage `score`: BSDetector confidence for every training row (see clearcurate.scoring)."""

from __future__ import annotations

import logging
import time
from collections import Counter

import numpy as np
import pandas as pd

from clearcurate.cache import FAILURES, ScoreCache, cache_dir
from clearcurate.core.records import read_jsonl, write_json, write_jsonl
from clearcurate.data.expectations import scored_suite, validate
from clearcurate.llm.base import RowsFailed
from clearcurate.pipeline import setup_logging, stage_args, stage_params
from clearcurate.runtime import sessions
from clearcurate.scoring import score_rows
from clearcurate.scoring.similarity import get_similarity

log = logging.getLogger("score")


def main() -> None:
    args = stage_args(__doc__, "train", "base", "scorer", "out", "validation", "metrics")
    setup_logging()
    p = stage_params("score")
    cfg = p.score
    rows = read_jsonl(args.train)
    cache = ScoreCache(cache_dir())
    log.info("per-row results are cached in %s (delete it to clear)", cache.root)
    start = time.perf_counter()
    with sessions.scoring(p, args.base, args.scorer) as session:
        try:
            scored = score_rows(session.lm, rows, cfg, get_similarity(cfg.similarity), p.train, cache=cache,
                                model_id=session.model_id, engine=session.engine)
        except RowsFailed as err:
            raise SystemExit(f"score: {err}. All are listed with their reasons in {cache.root / FAILURES}; every other row is "
                             "cached, so rerunning `dvc repro` computes only these") from None
    seconds = time.perf_counter() - start
    names = ("consistency", "reflection", "likelihood", "relevance", "length", "fluency")
    components = [c for c in names if scored and all(c in s for s in scored)]
    optional = [c for c in names if c not in components and any(c in s for s in scored)]
    frame = pd.DataFrame({col: [s.get(col) for s in scored] for col in ("id", "confidence", *components, *optional)})
    frame["id_in_input"] = frame["id"].isin({r["id"] for r in rows})
    validate("scored", frame, scored_suite(len(rows), components, optional), p.validate, args.validation)
    write_jsonl(args.out, scored)
    conf = np.array([s["confidence"] for s in scored])
    write_json(
        args.metrics,
        {
            "rows": len(scored),
            "recipe": cfg.recipe,
            "scorer": p.scorer.name or ("the model being trained" if not p.scorer.separate() else p.model.name),
            **session.placement,
            "weights_preset": scored[0]["weights_preset"] if scored else None,  # score.weights: auto picks by answer length
            "confidence_mean": float(conf.mean()),
            "confidence_median": float(np.median(conf)),
            "seconds": round(seconds, 1),
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "rows_per_second": round(len(scored) / seconds, 3),
            "reflection_unparsed": sum(int(s.get("reflection_unparsed", 0)) for s in scored),
            "rows_with_defects": sum(bool(s["defects"]) for s in scored),  # the filter removes them (clearcurate.core.defects)
            "defects": dict(sorted(Counter(d["check"] for s in scored for d in s["defects"]).items())),
            **session.usage(),
        },
    )
    log.info(
        "scored %d rows in %.0f s (median confidence %.3f); cache hits %s, misses %s",
        len(scored), seconds, float(np.median(conf)), cache.hits, cache.misses,
    )


if __name__ == "__main__":
    main()
