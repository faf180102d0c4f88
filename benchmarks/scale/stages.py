"""Wall time and peak memory of every pipeline stage, each run alone as DVC runs it (issue 30), and what
larger data would cost at the measured rates.

A throwaway clone of this repository (its committed dvc.yaml, params.yaml, stages and demo data) runs
`dvc repro --single-item <stage>` for each stage in dvc.yaml's order, one process at a time, so each
stage's time is its own (the machine should be otherwise idle: the load average around each stage is
recorded). Peak RSS and wall time come from `memory.measure`. By default the data is the demo's (the
per-stage table of `make demo`); with `--rows N` it is N real rows built by the project's own commands:
half SQuAD-N (`clearcurate make-squad-n`, paragraphs of up to 1,000 words) and half GSM8K-N
(`clearcurate make-gsm8k-n`), each 20% noisy, tested on SQuAD-N's test questions; with `--freeform N`,
N free-form Dolly rows (issue 31's trial: one in six a short answer, 20% with a realistic defect).
Each run also records the filter's and Auto-Correct's metrics (`outcomes`).

With `--engine ray` the model work of `score`, `correct` and `evaluate` runs on a Ray cluster (one
worker per GPU; started on 127.0.0.1 by the stage when RAY_ADDRESS is unset). Each engine gets its own
clone, so every stage runs from scratch. `--project` gives the hours `score` would take for larger
data at the measured rows/s (it grows with the rows; `correct` grows with the removed share and
`evaluate` with the test set, so they are given per row too), and `--usd-per-hour` their cost.
Prints JSON on stdout.

    .venv/bin/python benchmarks/scale/stages.py                      # make demo's stages, about 10 min on 2 cores
    python3 benchmarks/scale/stages.py --rows 10000 --engine local ray --usd-per-hour 3.5   # on one GPU
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from memory import TooBig, cpu_model, measure

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
log = logging.getLogger("stages")
PROJECTED = (52_000, 1_000_000)  # Alpaca's size, and a million rows


def clone(work: Path) -> Path:
    """A clone of this checkout's committed state: what a user who clones the repository runs."""
    project = work / "project"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(project)], check=True)
    return project


def write_rows(project: Path, rows: int) -> dict[str, int]:
    """Replace the demo data with `rows` real rows (half SQuAD-N, half GSM8K-N) from the project's CLI."""
    cli = str(Path(sys.executable).parent / "clearcurate")
    squad, gsm = rows - rows // 2, rows // 2
    raw, labels = project / "data" / "raw", project / "data" / "labels"
    subprocess.run([cli, "make-squad-n", "--n-train", str(squad), "--max-context-words", "1000", "--max-questions-per-paragraph", "50",
                    "--out", str(raw), "--labels", str(labels / "noise_labels.jsonl")], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([cli, "make-gsm8k-n", "--n-train", str(gsm), "--n-test", "1", "--max-solution-words", "1000",
                        "--out", tmp, "--labels", f"{tmp}/labels.jsonl"], check=True, capture_output=True)
        for name, extra in (("raw/train.jsonl", f"{tmp}/train.jsonl"), ("labels/noise_labels.jsonl", f"{tmp}/labels.jsonl")):
            with (project / "data" / name).open("a", encoding="utf-8") as fh:
                fh.write(Path(extra).read_text(encoding="utf-8"))
    return {"squad_n": squad, "gsm8k_n": gsm}


def write_freeform_rows(project: Path, rows: int) -> dict[str, int]:
    """Replace the demo data with `rows` free-form Dolly rows (the development pool, one in six a short answer
    as in the 300-row Alpaca trial's 54 of 300, 20% given a realistic defect) and 60 clean test rows."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "curation"))
    from noisy_freeform import DOLLY_SOURCE, DollyNConfig, build_dolly_n

    from clearcurate.core.records import write_jsonl

    train, test, labels = build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=rows, n_test=60, pool="dev", short_rows=rows // 6))
    write_jsonl(project / "data" / "raw" / "train.jsonl", train)
    write_jsonl(project / "data" / "raw" / "test.jsonl", test)
    write_jsonl(project / "data" / "labels" / "noise_labels.jsonl", labels)
    return {"dolly_n_dev_pool": rows, "short_answers": rows // 6, "noisy": sum(label["noisy"] for label in labels)}


def set_params(project: Path, engine: str, batch_size: int | None, model: str | None) -> dict:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    params["engine"] = engine
    if model:
        params["model"]["name"] = model
    if batch_size:
        params["model"]["batch_size"] = batch_size
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")  # a throwaway clone: its comments may go
    return params


def run_stages(project: Path, only: list[str] | None, max_rss: int) -> list[dict]:
    """Each stage alone, in dvc.yaml's order, with the stage's own metrics file read back."""
    spec = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    dvc = str(Path(sys.executable).parent / "dvc")
    results = []
    for name, stage in spec.items():
        if only and name not in only:
            continue
        result = measure(name, [dvc, "repro", "--single-item", name], project, max_rss)
        for metrics in stage.get("metrics", []):
            path = project / next(iter(metrics) if isinstance(metrics, dict) else [metrics])
            if path.exists():
                own = json.loads(path.read_text(encoding="utf-8"))
                result["metrics"] = {k: v for k, v in own.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        results.append(result)
    return results


def outcomes(project: Path) -> dict:
    """What the run decided and measured: the filter's removals (by reason and response length), Auto-Correct's
    replacements, and `evaluate`'s detection, correction and model metrics."""
    out = {}
    for name in ("filter", "correct", "evaluate"):
        path = project / "metrics" / f"{name}.json"
        if path.exists():
            out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def projection(stages: list[dict], rows: int, usd_per_hour: float | None) -> dict:
    """Hours (and cost) for larger data at this run's rates, from each stage's wall time (model loading and the
    fold trainings included, so a small run overstates them): score per training row; correct per training row
    at this run's removed share; evaluate stays with the test set (its time does not grow with the rows)."""
    wall = {s["stage"]: s["wall_s"] for s in stages}
    out = {}
    for target in PROJECTED:
        hours = {name: round(wall[name] * target / rows / 3600, 2) for name in ("score", "correct") if name in wall}
        out[str(target)] = {"hours": hours, **({"usd": {k: round(h * usd_per_hour, 2) for k, h in hours.items()}} if usd_per_hour else {})}
    return out


def machine() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "gpu": gpu, "torch": torch.__version__, "python": platform.python_version()}


RESULTS = HERE / "stages_results.json"  # stored runs of the demo, {label: this script's JSON}: docs/scale.md's table


def table(results: dict[str, dict]) -> str:
    """A markdown table of stored runs side by side (first engine of each): every stage's wall time and peak RSS,
    and the total. docs/scale.md holds it as printed here; a test checks the two agree."""
    runs = {label: out["runs"][0] for label, out in results.items()}
    names = list(dict.fromkeys(s["stage"] for run in runs.values() for s in run["stages"]))
    head = "| stage | " + " | ".join(f"{label}: s | {label}: peak RSS MB" for label in runs) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(runs)]
    for name in names:
        cells = []
        for run in runs.values():
            stage = next((s for s in run["stages"] if s["stage"] == name), None)
            cells += [f"{stage['wall_s']:.0f}", f"{stage['peak_rss_mb']:,.0f}"] if stage else ["", ""]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    totals = [cell for run in runs.values() for cell in (f"**{run['total_wall_s']:.0f}**", "")]
    lines.append("| **total** | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", action="store_true", help=f"print the markdown table of the stored runs ({RESULTS.name}) and exit")
    parser.add_argument("--rows", type=int, default=0, help="training rows (default 0: the demo's data as committed)")
    parser.add_argument("--freeform", type=int, default=0, help="free-form training rows instead (Dolly, 1 in 6 a short answer)")
    parser.add_argument("--engine", nargs="+", default=["local"], choices=("local", "ray"), help="engines to time, each in its own clone")
    parser.add_argument("--stages", nargs="+", default=None, help="only these stages (default: every stage of dvc.yaml)")
    parser.add_argument("--batch-size", type=int, default=None, help="model.batch_size (default: params.yaml's; e.g. 32 on a GPU)")
    parser.add_argument("--model", default=None, help="model.name (default: params.yaml's; `tiny` tries the script in a minute)")
    parser.add_argument("--usd-per-hour", type=float, default=None, help="the machine's price, for the projected cost")
    parser.add_argument("--max-rss-gb", type=float, default=20.0, help="kill a stage whose process tree grows beyond this")
    parser.add_argument("--keep", type=Path, default=None, help="keep the clones under this folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(RESULTS.read_text(encoding="utf-8"))))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    runs = []
    with tempfile.TemporaryDirectory(prefix="stages-") as tmp:
        for engine in args.engine:
            work = (args.keep or Path(tmp)) / engine
            work.mkdir(parents=True, exist_ok=True)
            project = clone(work)
            data = (write_freeform_rows(project, args.freeform) if args.freeform else
                    write_rows(project, args.rows) if args.rows else {"demo": True})
            params = set_params(project, engine, args.batch_size, args.model)
            rows = sum(1 for _ in (project / params["data"]["train"]).open(encoding="utf-8"))
            log.info("%s engine: %d training rows in %s", engine, rows, project)
            try:
                stages = run_stages(project, args.stages, int(args.max_rss_gb * 2**30))
            except TooBig as err:
                raise SystemExit(str(err)) from None
            runs.append({"engine": engine, "rows": rows, "data": data, "batch_size": params["model"]["batch_size"],
                         "stages": stages, "total_wall_s": round(sum(s["wall_s"] for s in stages), 1),
                         "projected": projection(stages, rows, args.usd_per_hour), "outcomes": outcomes(project)})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(json.dumps({"machine": machine(), "commit": commit, "model": params["model"]["name"], "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
