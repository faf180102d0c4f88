"""`clearcurate diff` on a large dataset: two real commits of a DVC-tracked JSONL file.

Builds a throwaway git + DVC repository with N rows (SQuAD-shaped prompts, a response and a
confidence each), commits it, then adds, removes, rewrites and rescores a known number of rows
and commits again. Times `clearcurate diff` (the real command, as a user runs it) for each
output format, and checks that the counts are exactly the planted ones.

    .venv/bin/python benchmarks/diff_speed.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def _write(path: Path, rows: dict[str, dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows.values()), encoding="utf-8")


def _commit(repo: Path, message: str) -> str:
    _run(["dvc", "add", "-q", "data/train.jsonl"], repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-q", "-m", message], repo)
    return _run(["git", "rev-parse", "HEAD"], repo).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000, help="rows added, removed, rewritten and rescored, each")
    args = parser.parse_args()
    rng = random.Random(0)
    words = "the of and a in to is was for on as with by he at from his an were are which this".split()

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        _run(["git", "init", "-q"], repo)
        _run(["dvc", "init", "-q"], repo)
        (repo / "data").mkdir()
        rows = {f"r{i}": {"id": f"r{i}", "prompt": text(60), "response": text(12), "confidence": rng.random()} for i in range(args.rows)}
        _write(repo / "data/train.jsonl", rows)
        first = _commit(repo, "v1")
        ids = list(rows)
        rng.shuffle(ids)
        k = args.changes
        removed, rewritten, rescored = ids[:k], ids[k : 2 * k], ids[2 * k : 3 * k]
        for i in removed:
            del rows[i]
        for i in rewritten:
            rows[i]["response"] = rows[i]["response"] + " " + text(3)
        for i in rescored:
            rows[i]["confidence"] = min(1.0, rows[i]["confidence"] + 0.1)
        for j in range(k):
            rows[f"new{j}"] = {"id": f"new{j}", "prompt": text(60), "response": text(12), "confidence": rng.random()}
        _write(repo / "data/train.jsonl", rows)
        second = _commit(repo, "v2")
        size_mb = (repo / "data/train.jsonl").stat().st_size / 1e6
        timings = {}
        for fmt in ("json", "text", "markdown"):
            start = time.perf_counter()
            out = _run(["clearcurate", "diff", first, second, "data/train.jsonl", "--format", fmt], repo)
            timings[fmt] = round(time.perf_counter() - start, 2)
            if fmt == "json":
                summary = json.loads(out)["summary"]
        expected = {"rows_a": args.rows, "rows_b": args.rows, "added": k, "removed": k, "response_changed": k, "confidence_changed": k}
        if summary != expected:
            raise SystemExit(f"wrong counts: {summary} != {expected}")
        print(json.dumps({"rows": args.rows, "file_mb": round(size_mb, 1), "changes_each": k,
                          "seconds_per_format": timings, "counts_exact": True}, indent=2))


if __name__ == "__main__":
    main()
