"""Scoring rows/s on one machine: the Ray engine with 1 and 2 workers, and the local engine with 1 and 2 torch
threads, on the same rows in one run (crossfit, the shipped score settings).

Every run scores the same rows from an empty row cache with the same fold adapters, trained once
beforehand (training is not timed: it is the same work on either engine). A Ray worker runs one torch
thread, so 2 workers on 2 cores compare fairly with 1 worker, and with the local engine at 1 and 2
threads. A Ray run's time includes starting its workers (each loads the model); `first_result_s` says
how much of it passed before the first block came back, `rows_per_second_after_first_result` what came after.
How busy the machine was: the load average before and after each run, and `free_cores_before`, the CPU
two busy processes got just before it (2.0 on an idle 2-core machine; with less, 2 workers cannot be
twice as fast as 1). Prints JSON on stdout (logs go to stderr).

    .venv/bin/python benchmarks/scale/ray_workers.py --rows 48   # about 10 minutes on 2 free CPU cores

Runs on a Ray cluster started here on 127.0.0.1 with every CPU, or on $RAY_ADDRESS when set.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import redirect_stdout
from pathlib import Path

import ray
import torch
from memory import cpu_model

from clearcurate.cache import ScoreCache, model_fingerprint
from clearcurate.config import LoraTrainConfig, ScoreConfig, load_file
from clearcurate.core.records import Record, read_jsonl
from clearcurate.engines.ray import RayEngine
from clearcurate.llm.factory import load_lm
from clearcurate.llm.models import convert_to_safetensors
from clearcurate.pipeline import setup_logging
from clearcurate.scoring import fold_adapters, score_rows
from clearcurate.scoring.similarity import get_similarity

log = logging.getLogger("ray_workers")


class Timed:
    """The Ray engine, noting when its rows come back, to tell worker start-up from scoring."""

    def __init__(self, engine: RayEngine) -> None:
        self.engine = engine
        self.called = 0.0
        self.arrivals: list[float] = []

    def train_folds(self, train_sets: Sequence[Sequence[Record]], cfg: LoraTrainConfig) -> list[dict[str, bytes]]:
        return self.engine.train_folds(train_sets, cfg)

    def run(self, tasks: Sequence[Record], cfg: ScoreConfig, adapters: Mapping[str, Path]) -> Iterator[Record]:
        self.called = time.perf_counter()
        for result in self.engine.run(tasks, cfg, adapters):
            self.arrivals.append(time.perf_counter())
            yield result

    def summary(self) -> dict[str, float | None]:
        """Seconds until the first block came back (workers starting, loading the model, one block), and the
        rows per second after it (the rows of that first block, arriving within 10 ms of it, not counted)."""
        first = self.arrivals[0]
        later = [t for t in self.arrivals if t - first > 0.01]
        return {"first_result_s": round(first - self.called, 1),
                "rows_per_second_after_first_result": round(len(later) / (later[-1] - first), 4) if later else None}


def _spin(seconds: float, shares: multiprocessing.Queue) -> None:
    wall, cpu = time.time(), time.process_time()
    while time.time() - wall < seconds:
        pass
    shares.put((time.process_time() - cpu) / (time.time() - wall))


def free_cores(seconds: float = 3.0) -> float:
    """How many CPU cores two busy processes get right now (2.0 on an idle 2-core machine): what two workers
    could use. On a shared machine other work takes its part, and no engine can scale past it."""
    shares: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_spin, args=(seconds, shares)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return round(sum(shares.get() for _ in procs), 2)


def measure(name: str, score, rows: list[Record], folds: Path, work: Path) -> dict:
    """One timed scoring run from an empty row cache holding only the shared fold adapters."""
    cache_dir = work / name
    shutil.copytree(folds, cache_dir / "folds")
    cache = ScoreCache(cache_dir)
    cores = free_cores()
    load_before = os.getloadavg()
    start = time.perf_counter()
    score(cache)
    seconds = time.perf_counter() - start
    assert cache.misses.get("samples") == len(rows), f"{name}: not every row was computed ({cache.misses})"
    log.info("%s: %d rows in %.1f s", name, len(rows), seconds)
    return {"run": name, "seconds": round(seconds, 1), "rows_per_second": round(len(rows) / seconds, 4), "free_cores_before": cores,
            "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in os.getloadavg()]}


RESULTS = Path(__file__).resolve().parent / "ray_workers_results.json"  # the run docs/scale.md's table shows


def table(results: dict) -> str:
    """docs/scale.md's table of a stored run: each engine's time and rate, a Ray run's start-up and rate after it,
    and how free the machine was. The docs hold it as printed here; a test checks the two agree."""
    lines = ["| run | seconds | rows/s | first block back after | rows/s after it | free cores | load average before / after |",
             "|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        if r["engine"] == "local":
            name, first, after = f"local engine, {r['threads']} torch thread{'s' * (r['threads'] > 1)}", "", ""
        else:
            name = f"Ray, {r['workers']} worker{'s' * (r['workers'] > 1)} of {r['threads_per_worker']} thread"
            first, after = f"{r['first_result_s']:.1f} s", f"{r['rows_per_second_after_first_result']:.3f}"
        rate = f"**{r['rows_per_second']:.3f}**" if r["rows_per_second"] == max(x["rows_per_second"] for x in results["runs"]) else \
            f"{r['rows_per_second']:.3f}"
        lines.append(f"| {name} | {r['seconds']:.1f} | {rate} | {first} | {after} | {r['free_cores_before']:.2f} | "
                     f"{r['load_average_before'][0]:.1f} / {r['load_average_after'][0]:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", action="store_true", help=f"print docs/scale.md's table of the stored run ({RESULTS.name}) and exit")
    parser.add_argument("--rows", type=int, default=48, help="rows scored by every run")
    parser.add_argument("--data", type=Path, default=Path("data/raw/train.jsonl"), help="rows with id, prompt, response")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="score and train settings")
    parser.add_argument("--base", type=Path, default=None, help="a prepared base model (default: model.name converted here)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to compare")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="local engine torch thread counts to compare")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(RESULTS.read_text(encoding="utf-8"))))
        return
    setup_logging()
    p = load_file(args.params)
    rows = read_jsonl(args.data)[: args.rows]
    cfg, train_cfg = p.score, p.train
    similarity = get_similarity(cfg.similarity)
    with tempfile.TemporaryDirectory(prefix="ray-workers-") as tmp, redirect_stdout(sys.stderr):  # the Trainer prints to stdout
        work = Path(tmp)
        base = args.base or convert_to_safetensors(p.model.name, work / "base", seed=p.model.seed)
        model_id = model_fingerprint(base)
        lm = load_lm(p, base)
        lm.show_progress = False
        log.info("training the fold adapters once, for every run")
        shared = ScoreCache(work / "shared")
        fold_adapters(lm, rows, cfg, train_cfg, shared, model_id)
        runs = []
        for threads in args.threads:
            torch.set_num_threads(threads)
            runs.append({"engine": "local", "threads": threads, **measure(
                f"local-{threads}-threads", lambda cache: score_rows(lm, rows, cfg, similarity, train_cfg, cache, model_id),
                rows, shared.root / "folds", work)})
        if not os.environ.get("RAY_ADDRESS"):  # a cluster of this machine, on loopback only
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.WARNING)
        for workers in args.workers:
            with RayEngine(base, model_id, p.model.batch_size, workers=workers, threads=1) as engine:
                timed = Timed(engine)
                result = measure(f"ray-{workers}-workers", lambda cache, t=timed: score_rows(
                    lm, rows, cfg, similarity, train_cfg, cache, model_id, engine=t), rows, shared.root / "folds", work)
                runs.append({"engine": "ray", "workers": workers, "threads_per_worker": 1, **result, **timed.summary()})
    rate = {(r["engine"], r.get("workers") or r.get("threads")): r["rows_per_second"] for r in runs}

    def two_over_one(engine: str) -> float | None:
        return round(rate[(engine, 2)] / rate[(engine, 1)], 3) if (engine, 1) in rate and (engine, 2) in rate else None

    out = {
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "torch": torch.__version__, "ray": ray.__version__},
        "model": p.model.name, "rows": len(rows), "k": cfg.k, "batch_size": p.model.batch_size, "recipe": cfg.recipe,
        "runs": runs,
        "ray_2_over_1_workers": two_over_one("ray"),
        "local_2_over_1_threads": two_over_one("local"),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
