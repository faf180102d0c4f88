"""Peak memory and wall time of `prepare`, `filter` and `clearcurate diff` on synthetic rows (issue 15, item 5).

For each size, a throwaway git + DVC project gets N synthetic instruction rows (prompts of
300-600 characters, responses of 50-400, unique ids, with planted duplicate ids, duplicate
contents, invalid JSON and empty responses, so quarantine is exercised) and 1,000 test rows.
Then, each as its own process, as DVC would run it:

1. `prepare` (the real stage: converts the bundled SmolLM2, counts every row's tokens);
2. `filter` at quantile 0.2, on a synthesized `data/scored/train.jsonl` whose records have what
   `score` writes (confidence, every component, k = 5 samples with their similarities, log-probs
   and token counts, reflection probabilities), so filter reads records of the real size;
3. `dvc commit` and `git commit`, then `filter` again at quantile 0.3;
4. `clearcurate diff HEAD workspace --stage filter` (the decisions that flipped) and
   `clearcurate diff HEAD workspace data/filtered/kept.jsonl` (the row diff).

Each process's peak RSS comes from `wait4` (its own and its waited-for children's maximum
resident set); a process whose tree grows beyond --max-rss-gb is killed, and the run stops
there, so a run that does not scale cannot take a shared machine down. Prints JSON.

    .venv/bin/python benchmarks/scale/memory.py --rows 10000 100000 1000000   # about 45 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[2]
TEST_ROWS = 1_000
WORDS = ("the of and a in to is was for on as with by he at from his an were are which this that be it not or have "
         "one had but what all when there can more if no out so said up its about into than them only other new some "
         "could time these two may then first any my now such like our over man me even most made after also did many "
         "before must through back years where much your way well down should because each just those people how too "
         "little state good very make world still own see men work long get here between both life being under never").split()
log = logging.getLogger("memory")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


class TooBig(RuntimeError):
    """A stage's process tree grew beyond the allowed resident memory and was killed."""


def _corpus(rng: random.Random, chars: int = 2_000_000) -> str:
    """A long run of random words; rows are slices of it, so generating a million rows takes seconds."""
    words: list[str] = []
    size = 0
    while size < chars:
        w = rng.choice(WORDS)
        words.append(w)
        size += len(w) + 1
    return " ".join(words)


def _text(rng: random.Random, corpus: str, lo: int, hi: int) -> str:
    n = rng.randint(lo, hi)
    start = rng.randrange(len(corpus) - n)
    return corpus[start:start + n].strip() or "x"


def write_raw(path: Path, rows: int, rng: random.Random, corpus: str) -> dict[str, int]:
    """`rows` source lines: 1 in 100 repeats an earlier id, 1 in 100 repeats an earlier row's content under a
    new id, 1 in 1,000 is invalid JSON, 1 in 1,000 has an empty response. Returns the planted counts."""
    planted = {"duplicate_id": 0, "duplicate_content": 0, "unparseable": 0, "empty_field": 0}
    earlier: list[tuple[str, str, str]] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for i in tqdm(range(rows), desc=f"raw rows {path.name}", unit="row", mininterval=5, disable=rows < 100_000):
            if i % 100 == 37 and earlier:
                row_id, prompt, response = earlier[rng.randrange(len(earlier))]
                line = json.dumps({"id": row_id, "prompt": prompt, "response": response})
                planted["duplicate_id"] += 1
            elif i % 100 == 73 and earlier:
                _, prompt, response = earlier[rng.randrange(len(earlier))]
                line = json.dumps({"id": f"r{i:07d}", "prompt": prompt, "response": response})
                planted["duplicate_content"] += 1
            elif i % 1000 == 511:
                line = '{"id": "broken", "prompt": "unterminated'
                planted["unparseable"] += 1
            elif i % 1000 == 911:
                line = json.dumps({"id": f"r{i:07d}", "prompt": _text(rng, corpus, 300, 600), "response": "  "})
                planted["empty_field"] += 1
            else:
                row = (f"r{i:07d}", f"Question {i}: {_text(rng, corpus, 300, 600)}", _text(rng, corpus, 50, 400))
                if len(earlier) < 1000:
                    earlier.append(row)
                line = json.dumps({"id": row[0], "prompt": row[1], "response": row[2]})
            fh.write(line + "\n")
    return planted


def write_scored(prepared: Path, out: Path, rng: random.Random, corpus: str) -> int:
    """A score record for every prepared row, with the fields and sizes `score` writes (crossfit, k = 5)."""
    count = 0
    with prepared.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as fh:
        for line in tqdm(src, desc="scored records", unit="row", mininterval=5):
            row_id = json.loads(line)["id"]
            samples = [_text(rng, corpus, 20, 200) for _ in range(5)]
            logprobs = [round(-rng.uniform(5, 80), 4) for _ in samples]
            comps = {k: round(rng.random(), 6) for k in ("reflection", "consistency", "likelihood", "length", "relevance")}
            record = {
                "id": row_id, "confidence": rng.betavariate(5, 2), "weights_preset": "free_form", **comps,
                "samples": samples, "sample_similarity": [round(rng.random(), 4) for _ in samples], "sample_logprobs": logprobs,
                "response_logprob": round(-rng.uniform(5, 120), 4), "best_sample_logprob": max(logprobs),
                "sample_tokens": [rng.randint(5, 60) for _ in samples], "response_logprob_alone": round(-rng.uniform(10, 150), 4),
                "response_tokens": rng.randint(10, 100), "reflection_probs": [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]], "fold": count % 2,
            }
            fh.write(json.dumps(record) + "\n")
            count += 1
    return count


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (from /proc), 0 once it is gone."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def measure(name: str, cmd: list[str], cwd: Path, max_rss: int, stdout: Path | None = None) -> dict:
    """Run `cmd` as its own process group; its peak RSS (wait4), wall time and the load average around it."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "CLEARCURATE_PROGRESS": "0"}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with (stdout or Path(os.devnull)).open("w") as out, tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=errors, start_new_session=True)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if _tree_rss(proc.pid) > max_rss:
                os.killpg(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                raise TooBig(f"{name}: resident memory passed {max_rss / 2**30:.1f} GB; killed")
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            errors.seek(0)
            raise RuntimeError(f"{name} failed ({' '.join(cmd)}):\n{errors.read().decode(errors='replace')[-3000:]}")
    result = {"stage": name, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "wall_s": round(time.perf_counter() - start, 1),
              "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    log.info("%s", result)
    return result


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", *args], cwd=cwd, check=True, capture_output=True)


def _dvc(cwd: Path, *args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, check=True, capture_output=True)


def make_project(project: Path) -> None:
    """git + DVC with the real prepare and filter stages (their data deps only; the code is this checkout's)."""
    real = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stages = {}
    for name in ("prepare", "filter"):
        stage = dict(real[name])
        stage["cmd"] = " ".join(stage["cmd"].split()).replace("python stages/", f"{sys.executable} {ROOT}/stages/")
        stage["deps"] = [d for d in stage["deps"] if not d.startswith(("stages/", "src/", "reports/"))]
        stage["outs"] = [o for o in stage["outs"] if o != "models/base"]  # the converted model: not worth caching here
        stages[name] = stage
    project.mkdir(parents=True, exist_ok=True)
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(train="data/raw/train.jsonl", test="data/raw/test.jsonl")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / ".gitignore").write_text("/models/\n")
    _git(project, "init", "-q")
    _dvc(project, "init", "-q")
    _dvc(project, "config", "cache.type", "hardlink,copy")  # a million rows: do not copy gigabytes into the cache


def set_quantile(project: Path, quantile: float) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["filter"]["quantile"] = quantile
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run_size(rows: int, workdir: Path, max_rss: int) -> dict:
    """Every measured step at one size, in a fresh project under `workdir`."""
    rng = random.Random(rows)
    corpus = _corpus(rng)
    project = workdir / f"rows-{rows}"
    make_project(project)
    planted = write_raw(project / "data/raw/train.jsonl", rows, rng, corpus)
    write_raw(project / "data/raw/test.jsonl", TEST_ROWS, random.Random(1), corpus)
    steps = [measure("prepare", _stage_cmd(project, "prepare"), project, max_rss)]
    prepare_metrics = json.loads((project / "metrics/prepare.json").read_text())
    (project / "data/scored").mkdir(parents=True, exist_ok=True)
    scored = write_scored(project / "data/prepared/train.jsonl", project / "data/scored/train.jsonl", rng, corpus)
    _dvc(project, "add", "-q", "data/scored/train.jsonl")
    steps.append(measure("filter", _stage_cmd(project, "filter"), project, max_rss))
    first = json.loads((project / "metrics/filter.json").read_text())
    _dvc(project, "commit", "-q", "-f", "prepare", "filter")
    _git(project, "add", "dvc.yaml", "dvc.lock", "params.yaml", ".gitignore", "data/scored/train.jsonl.dvc", "data/scored/.gitignore",
         "data/.gitignore", "data/raw", ".dvc/config", ".dvcignore", "metrics")
    _git(project, "commit", "-q", "-m", "filter at quantile 0.2")
    set_quantile(project, 0.3)
    steps.append(measure("filter (rerun at quantile 0.3)", _stage_cmd(project, "filter"), project, max_rss))
    second = json.loads((project / "metrics/filter.json").read_text())
    clearcurate = str(Path(sys.executable).parent / "clearcurate")
    stage_diff = project / "diff_stage.txt"
    diff = [clearcurate, "diff", "HEAD", "workspace"]
    steps.append(measure("diff --stage filter", [*diff, "--stage", "filter"], project, max_rss, stage_diff))
    steps.append(measure("diff kept.jsonl", [*diff, "data/filtered/kept.jsonl"], project, max_rss, project / "diff_rows.txt"))
    flipped = first["kept"] - second["kept"]
    head = stage_diff.read_text().splitlines()
    if f"kept -> removed: {flipped}" not in " ".join(head[:12]):
        raise RuntimeError(f"diff --stage filter did not report {flipped} flipped rows:\n" + "\n".join(head[:12]))
    return {
        "rows": rows, "planted": planted, "quarantined": prepare_metrics["train"]["quarantined"],
        "prepared": prepare_metrics["train"]["rows"], "scored": scored, "kept_at_0.2": first["kept"], "kept_at_0.3": second["kept"],
        "raw_mb": round((project / "data/raw/train.jsonl").stat().st_size / 1e6, 1),
        "scored_mb": round((project / "data/scored/train.jsonl").stat().st_size / 1e6, 1), "steps": steps,
    }


def _stage_cmd(project: Path, stage: str) -> list[str]:
    return yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()


def hardware() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem / 2**20, 1), "python": platform.python_version()}


RESULTS = Path(__file__).resolve().parent / "memory_results.json"  # runs of three versions of the code: docs/scale.md's table
STEP_NAMES = {"prepare": "`prepare`", "filter": "`filter`", "filter (rerun at quantile 0.3)": "`filter`, rerun at quantile 0.3",
              "diff --stage filter": "`diff --stage filter`", "diff kept.jsonl": "`diff` of `kept.jsonl`"}


def table(results: dict) -> str:
    """docs/scale.md's table: each step's peak RSS (MB) under the code `before`, `after` and `now`, and the last run's
    wall time (s) and load average after it. The docs hold it as printed here; a test checks the two agree."""
    def steps(version: str) -> dict[tuple[int, str], dict]:
        return {(size["rows"], step["stage"]): step for size in results[version]["sizes"] for step in size["steps"]}

    before, after, now = steps("before"), steps("after"), steps("now")
    code = {v: results[v]["code"].split()[0] for v in ("before", "after")}
    lines = [f"| rows | step | RSS {code['before']} | RSS {code['after']} | RSS now | wall now | load now |",
             "|---|---|---|---|---|---|---|"]
    for (rows, stage), step in now.items():
        rss = [f"{old[(rows, stage)]['peak_rss_mb']:,.0f}" if (rows, stage) in old else "not run" for old in (before, after)]
        lines.append(f"| {rows:,} | {STEP_NAMES[stage]} | {' | '.join(rss)} | {step['peak_rss_mb']:,.0f} | {step['wall_s']:.0f} | "
                     f"{step['load_after']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", action="store_true", help=f"print docs/scale.md's table of the stored runs ({RESULTS.name}) and exit")
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--max-rss-gb", type=float, default=8.0, help="kill a stage whose processes grow beyond this, and stop")
    parser.add_argument("--workdir", type=Path, default=None, help="where the projects go (default: a temporary folder, removed after)")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(RESULTS.read_text(encoding="utf-8"))))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    result: dict = {"hardware": hardware(), "sizes": []}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for rows in args.rows:
            log.info("%d rows", rows)
            try:
                result["sizes"].append(run_size(rows, Path(tmp), int(args.max_rss_gb * 2**30)))
            except TooBig as err:
                result["stopped"] = f"{rows} rows: {err}"
                log.error("%s", result["stopped"])
                break
            finally:
                subprocess.run(["rm", "-rf", str(Path(tmp) / f"rows-{rows}")], check=False)
    ratio = {}
    by_size = {s["rows"]: {st["stage"]: st["peak_rss_mb"] for st in s["steps"]} for s in result["sizes"]}
    if 100_000 in by_size and 1_000_000 in by_size:
        ratio = {stage: round(by_size[1_000_000][stage] / mb, 2) for stage, mb in by_size[100_000].items() if stage in by_size[1_000_000]}
    result["rss_1m_over_100k"] = ratio
    result["peak_rss_mb_at_1m"] = max(by_size.get(1_000_000, {}).values(), default=None)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
