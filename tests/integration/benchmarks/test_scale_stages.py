"""benchmarks/scale/stages.py times the pipeline's own stages in a clone of the repository: here the first
two stages on 8 real rows and the tiny model, so the clone, the data commands and the JSON are exercised."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import ROOT


def test_stages_are_timed_one_by_one_in_a_clone_with_rows_built_by_the_cli(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale" / "stages.py"), "--rows", "8", "--model", "tiny",
                           "--stages", "check-params", "prepare", "--keep", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    run = out["runs"][0]
    assert (out["model"], run["engine"], run["rows"], run["data"]) == ("tiny", "local", 8, {"squad_n": 4, "gsm8k_n": 4})
    assert [s["stage"] for s in run["stages"]] == ["check-params", "prepare"]
    assert all(s["wall_s"] > 0 and s["peak_rss_mb"] > 0 for s in run["stages"])
    project = tmp_path / "local" / "project"
    train = [json.loads(line) for line in (project / "data" / "raw" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    labels = (project / "data" / "labels" / "noise_labels.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(train) == len(labels) == 8 and sum(r["id"].startswith("gsm8k") for r in train) == 4
    assert (project / "data" / "prepared" / "train.jsonl").exists()  # prepare ran in the clone, not in this checkout


def _docs_table_is_printed_by(script: str) -> None:
    """docs/scale.md's table between `<!-- SCRIPT --table -->` and `<!-- end -->` is what `SCRIPT --table` prints."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale" / script), "--table"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = (ROOT / "docs" / "scale.md").read_text(encoding="utf-8")
    assert doc.split(f"<!-- {script} --table -->\n", 1)[1].split("\n<!-- end -->", 1)[0] == done.stdout.strip()


def test_the_docs_stage_table_is_the_stored_runs_table():
    """docs/scale.md's per-stage table of `make demo` is what `stages.py --table` prints from stages_results.json:
    a number typed by hand, or left behind when the runs are measured again, fails here."""
    _docs_table_is_printed_by("stages.py")
    stored = json.loads((ROOT / "benchmarks" / "scale" / "stages_results.json").read_text(encoding="utf-8"))
    assert all(out["machine"]["cpus"] for out in stored.values())
    for label, out in stored.items():  # a run on other data than the demo's says so in its label
        data = out["runs"][0]["data"]
        assert data == {"demo": True} or (data.get("dolly_n_dev_pool") and f"{out['runs'][0]['rows']} free-form rows" in label), label


@pytest.mark.parametrize(("script", "stored"), [("memory.py", "memory_results.json"), ("ray_workers.py", "ray_workers_results.json")])
def test_the_docs_memory_and_ray_tables_are_the_stored_runs_tables(script, stored):
    """docs/scale.md's peak-RSS table and Ray rows/s table are what each script's `--table` prints from its stored
    JSON, as the stage table above is."""
    _docs_table_is_printed_by(script)
    assert json.loads((ROOT / "benchmarks" / "scale" / stored).read_text(encoding="utf-8"))


def test_the_ray_scaling_the_docs_state_is_the_stored_runs():
    """The ratios under the Ray table ("1.77x as many rows/s", "1.81x after the first block", "1.43x", "by 18%")."""
    out = json.loads((ROOT / "benchmarks" / "scale" / "ray_workers_results.json").read_text(encoding="utf-8"))
    runs = {r["run"]: r for r in out["runs"]}
    ray1, ray2, local2 = runs["ray-1-workers"], runs["ray-2-workers"], runs["local-2-threads"]
    after = ray2["rows_per_second_after_first_result"] / ray1["rows_per_second_after_first_result"]
    text = " ".join((ROOT / "docs" / "scale.md").read_text(encoding="utf-8").split())
    assert (f"**2 Ray workers scored {out['ray_2_over_1_workers']:.2f}× as many rows/s as 1** ({after:.2f}× after the first block), "
            f"against {out['local_2_over_1_threads']:.2f}× for the local engine's 2 threads over 1") in text
    assert f"beat one two-thread process by {100 * (ray2['rows_per_second'] / local2['rows_per_second'] - 1):.0f}%" in text
