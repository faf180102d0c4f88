"""Scoring throughput through the OpenAI-compatible backend at 1, 4 and 16 requests in flight.

Starts the local OpenAI-compatible server (`clearcurate.llm.local_server`) in a separate process,
so this process's CPU time is the client's alone, and scores the same rows with the paper
recipe at each concurrency, without the cache. `--latency` adds a delay per request outside
the server's model lock: it stands in for a remote endpoint's network and queueing, which is
what concurrency hides. The design goal is that throughput follows the server, not our client:
the client's own CPU time per request should stay small and flat as concurrency grows.

    .venv/bin/python benchmarks/openai_concurrency.py                  # tiny model, 0.25 s latency
    .venv/bin/python benchmarks/openai_concurrency.py --model-dir models/base --latency 0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from clearcurate.config import OpenAIConfig, load_file
from clearcurate.data.noisy_data import SQUAD_SOURCE, SquadNConfig, build_squad_n
from clearcurate.llm.openai_api import OpenAIChatLM
from clearcurate.pipeline import setup_logging
from clearcurate.scoring import score_rows
from clearcurate.scoring.similarity import get_similarity

log = logging.getLogger("openai_concurrency")
KEY = "sk-benchmark-local"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url.replace("/v1", "/_control/stats"), timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the local server at {url} did not come up in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per request outside the model lock")
    parser.add_argument("--model-dir", type=Path, default=None, help="a prepared model (default: the tiny test model)")
    parser.add_argument("--source", default=str(SQUAD_SOURCE), help="flat SQuAD v1.1 JSONL (default: the bundled copy)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    setup_logging()
    rows, _, _ = build_squad_n(args.source, SquadNConfig(n_train=args.rows, n_test=1))
    cfg = replace(load_file(args.params).score, recipe="paper", weights={}, k=3, max_new_tokens=16, fewshot=1)
    similarity = get_similarity(cfg.similarity)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            from clearcurate.llm.models import convert_to_safetensors

            model_dir = convert_to_safetensors("tiny", Path(tmp) / "tiny", seed=0)
        port = _free_port()
        env = {**os.environ, "CLEARCURATE_SERVER_KEY": KEY}
        server = subprocess.Popen(
            [sys.executable, "-m", "clearcurate.llm.local_server", "--model-dir", str(model_dir), "--model-name", "bench",
             "--port", str(port), "--latency", str(args.latency), "--api-key-env", "CLEARCURATE_SERVER_KEY"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/v1"
        results = []
        try:
            _wait(url)
            os.environ["OPENAI_API_KEY"] = KEY
            for concurrency in args.concurrency:
                api = OpenAIConfig(base_url=url, model="bench", max_concurrency=concurrency, timeout_s=120)
                lm = OpenAIChatLM(api, show_progress=False)
                cpu, wall = time.process_time(), time.perf_counter()
                score_rows(lm, rows, cfg, similarity)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                results.append({
                    "concurrency": concurrency, "rows_per_s": round(len(rows) / wall, 3), "wall_s": round(wall, 2),
                    "requests": lm.usage.requests, "client_cpu_ms_per_request": round(1000 * cpu / lm.usage.requests, 2),
                })
                log.info("concurrency %d: %s", concurrency, results[-1])
        finally:
            server.terminate()
            server.wait(timeout=30)
    base = results[0]["rows_per_s"]
    for r in results:
        r["speedup_vs_first"] = round(r["rows_per_s"] / base, 2)
    print(json.dumps({"rows": args.rows, "latency_s": args.latency, "model": str(args.model_dir or "tiny"), "results": results}, indent=2))


if __name__ == "__main__":
    main()
