"""The curation benchmark's --quick mode runs end to end (tiny model, small budget) and resumes from its cache."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
import yaml

from clearcurate.core.evaluation import HELDOUT
from helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "curation" / "run.py"


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_quick_benchmark_reports_every_method_and_resumes(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["max_steps"] = 2  # the tiny model learns nothing anyway; this tests the plumbing
    params["score"].update(k=3, max_new_tokens_cap=32)  # the random tiny model never stops: keep free-form budgets small
    params["evaluate"]["max_new_tokens_cap"] = 32
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = ["--quick", "--model", "tiny", "--params", str(tmp_path / "params.yaml"),
            "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    first = _run(args)
    assert first.returncode == 0, first.stderr[-3000:]

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    squad = results["datasets"]["squad-n-20"]
    assert [d["scorer"] for d in squad["detection"]] == ["clear", "paper", "rating", "perplexity", "ifd"]
    by_scorer = {d["scorer"]: d for d in squad["detection"]}  # one read of the rows by the base model gives both
    assert by_scorer["perplexity"]["seconds"] == by_scorer["ifd"]["seconds"] > 0
    assert all(d["auroc"] is None or 0.0 <= d["auroc"] <= 1.0 for d in squad["detection"])
    assert squad["detection"][0]["cache_hits"] == 0  # scored from nothing: its time is the work's
    cells = {m: c[0] for m, c in squad["downstream"].items()}
    assert set(cells) == {"none", "random", "rating", "ifd", "clear_filter", "clear_filter_auto", "clear_correct",
                          "clear_correct_pairwise", "oracle", "oracle_correct"}
    n_removed = cells["clear_filter"]["removed"]
    for method in ("random", "rating", "ifd"):  # same number of rows removed as CLEAR's filter
        assert cells[method]["removed"] == n_removed and cells[method]["rows"] == 20 - n_removed
    assert cells["none"]["rows"] == 20 and cells["oracle"]["removed"] == cells["oracle"]["removed_noisy"] == 4
    assert cells["oracle_correct"]["rows"] == 20 and cells["oracle_correct"]["removed"] == 0
    assert all(c["steps"] == 2 for c in cells.values())  # same training budget for every curated set
    assert set(squad["correction"]) == {"agreement", "pairwise", "candidate_a", "candidate_b"}
    for rows in squad["correction"].values():  # what each judge did with the rows the filter removed
        assert rows[0]["given"] == n_removed and 0 <= rows[0]["replaced"] <= n_removed
    # Every method against No curation: a paired difference with a CI around it, in percent.
    for paired in squad["paired"].values():
        em = paired["exact_match"]
        assert em["low"] <= em["diff"] <= em["high"] and em["verdict"] in ("better", "worse", "no detectable change")
    assert set(squad["paired"]) == set(cells) - {"none"}
    vs_filter = squad["correct_vs_filter"]  # does correcting add to filtering: paired with the filter's own seeds
    em = vs_filter["exact_match"]
    assert vs_filter["seeds"] == 1 and em["low"] <= em["diff"] <= em["high"]
    assert all(len(c["per_question"]["exact_match"]) == 8 for c in cells.values())
    assert {a["ablation"] for a in squad["ablations"]} >= {"samples k", "similarity"}
    dolly = results["datasets"]["dolly-n-20"]  # free-form: held-out loss and token F1, never exact match
    none = dolly["downstream"]["none"][0]
    assert set(none["per_question"]) == {HELDOUT, "token_f1_vs_reference"} and none[HELDOUT] > 0
    loss = dolly["paired"]["oracle"][HELDOUT]
    assert loss["low"] <= loss["diff"] <= loss["high"]
    natural = results["datasets"]["truthfulqa-test-300"]  # detection only: who wrote the errors, no training
    assert [d["scorer"] for d in natural["detection"]] == ["clear", "rating", "perplexity", "ifd"]
    assert natural["downstream"] == {} and natural["base"] is None and natural["spec"]["fold_by"] == "prompt"
    report = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "## truthfulqa-test-300" in report and "Detection only" in report
    assert "## dolly-n-20" in report and "held-out NLL/token" in report
    assert "Filter+Correct at least as good as Filter" in report and "paired Δ" in report
    assert "## Targets" in report and "## gsm8k-n-20" in report and "Oracle filter" in report and "95% CI" in report
    assert (tmp_path / "out" / "results.png").stat().st_size > 10_000

    again = _run(args)  # everything is cached: no scoring, no training, same numbers
    assert again.returncode == 0, again.stderr[-3000:]
    assert "scoring with" not in again.stderr and "steps in" not in again.stderr
    rerun = json.loads((tmp_path / "out" / "results.json").read_text())
    assert rerun["datasets"] == results["datasets"]

    rebuilt = _run([*args[:-4], "--out", str(tmp_path / "rebuilt"), "--cache", str(tmp_path / "cache"), "--report-only"])
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert json.loads((tmp_path / "rebuilt" / "results.json").read_text())["datasets"] == results["datasets"]

    # Every result knows its code: today's here, so none is stale and verdicts are given.
    assert all(d["code"] == {**d["code"], "stale": 0} and d["code"]["results"] > 0 for d in results["datasets"].values())
    assert "All " in report and "results of the test sets are today's code's" in report
    # The same results read by other code: a changed set definition (specs.py) leaves every one current (a cell's
    # key names its rows); a changed cell module makes every one stale, with no verdict from any.
    other = tmp_path / "other-code" / "benchmarks" / "curation"  # where the bundled sources are ../../data/sources
    shutil.copytree(SCRIPT.parent, other, ignore=shutil.ignore_patterns("raw", "results.*", "*.md"))
    (tmp_path / "other-code" / "data").symlink_to(ROOT / "data")

    def report_with(changed: str, out: str) -> dict[str, Any]:
        (other / changed).write_text((other / changed).read_text() + "\n# a change\n")
        done = subprocess.run([sys.executable, str(other / "run.py"), *args[:-4], "--out", str(tmp_path / out),
                               "--cache", str(tmp_path / "cache"), "--report-only"], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads((tmp_path / out / "results.json").read_text())["datasets"]["squad-n-20"]

    assert report_with("specs.py", "same")["code"]["stale"] == 0
    marked = report_with("cells.py", "stale")
    assert marked["code"]["stale"] == marked["code"]["results"] == squad["code"]["results"]
    assert all(p["exact_match"]["verdict"] == "stale: no verdict" for p in marked["paired"].values())
    text = (tmp_path / "stale" / "RESULTS.md").read_text()
    assert "-> holds" not in text and "does NOT hold" not in text and "No curation † |" in text

    # Auto-Correct's stored evidence does not depend on eta: another eta re-decides it, with no model work.
    params["correct"]["eta"] = 0.0
    (tmp_path / "eta0.yaml").write_text(yaml.safe_dump(params))
    eta0 = _run(["--quick", "--model", "tiny", "--params", str(tmp_path / "eta0.yaml"), "--out", str(tmp_path / "eta0"),
                 "--cache", str(tmp_path / "cache"), "--report-only"])
    assert eta0.returncode == 0, eta0.stderr[-3000:]
    redecided = json.loads((tmp_path / "eta0" / "results.json").read_text())["datasets"]["squad-n-20"]["correction"]
    assert set(redecided) == set(squad["correction"])
    for variant, rows in redecided.items():  # a lower eta replaces at least what the default did
        assert rows[0]["given"] == n_removed and rows[0]["replaced"] >= squad["correction"][variant][0]["replaced"]


def test_lower_loss_is_better_and_higher_accuracy_is_better():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from harness import paired_differences
    finally:
        sys.path.remove(str(SCRIPT.parent))
    rng = np.random.default_rng(0)
    base = rng.uniform(1.5, 2.5, size=(3, 200))

    def cells(nll, em):
        return [{"seed": s, "per_question": {HELDOUT: list(nll[s]), "exact_match": list(em[s])}} for s in range(3)]

    em = (rng.uniform(size=(3, 200)) < 0.3).astype(float)
    paired = paired_differences({"none": cells(base, em), "oracle": cells(base - 0.2, np.maximum(em, rng.uniform(size=(3, 200)) < 0.2))})
    assert paired["oracle"][HELDOUT]["diff"] == pytest.approx(-0.2)  # in nats, not percent
    assert paired["oracle"][HELDOUT]["verdict"] == "better"  # lower loss
    assert paired["oracle"]["exact_match"]["verdict"] == "better" and paired["oracle"]["exact_match"]["diff"] > 10  # percent


def test_ablations_and_model_work_follow_what_clear_sampled():
    """A set scored with a preset that samples nothing (free form: GSM8K-N's solutions) has no sample
    ablations to recompute, and its report says 0 generations, not the configured k."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from harness import ablations, calls_per_row
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from clearcurate.scoring import ScoreConfig

    train = [{"id": f"r{i}", "prompt": f"q{i}", "response": f"a{i}"} for i in range(6)]
    labels = {r["id"]: {"noisy": i < 2} for i, r in enumerate(train)}
    records = [{"id": r["id"], "weights_preset": "free_form", "relevance": 0.1 * i, "fluency": 0.5} for i, r in enumerate(train)]
    rows = ablations("free-form set", train, labels, {"records": records}, None, ScoreConfig())
    assert [(r["ablation"], r["setting"], r["auroc"]) for r in rows] == [("single component (crossfit)", "relevance", 1.0)]
    assert calls_per_row("clear", ScoreConfig(), samples=0) == "1 training passes + 0 generations + 3 forwards"
    assert calls_per_row("clear", ScoreConfig()) == "1 training passes + 5 generations + 3 forwards"


def test_parallel_workers_each_train_their_seeds_into_one_cache(tmp_path):
    """--only-seeds splits a part's seeds over processes (one per GPU worker); the report rebuilt from
    the shared cache holds every seed, as if one process had trained them all."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["max_steps"] = 1
    params["score"].update(k=2, max_new_tokens_cap=32)
    params["evaluate"]["max_new_tokens_cap"] = 32
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    common = ["--quick", "--model", "tiny", "--params", str(tmp_path / "params.yaml"), "--only", "gsm8k-n-20",
              "--seeds", "2", "--cache", str(tmp_path / "cache")]

    def seeds_in(out: str) -> dict[str, list[int]]:
        cells = json.loads((tmp_path / out / "results.json").read_text())["datasets"]["gsm8k-n-20"]["downstream"]
        return {m: sorted(c["seed"] for c in cs) for m, cs in cells.items()}

    archive = tmp_path / "cache" / "results" / "quick" / "tiny" / "gsm8k-n-20.json.gz"  # one file per set
    scored = _run([*common, "--score-only", "--out", str(tmp_path / "s")])  # before the workers, so they do not each score
    assert scored.returncode == 0, scored.stderr[-3000:]
    items = json.loads(gzip.decompress(archive.read_bytes()))
    assert any(k.startswith("score-clear-") for k in items) and not any(k.startswith("train-") for k in items)

    worker = _run([*common, "--only-seeds", "1", "--out", str(tmp_path / "w1")])
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert seeds_in("w1") == {"none": [1], "clear_filter": [1], "oracle": [1]}
    assert {k: v for k, v in json.loads(gzip.decompress(archive.read_bytes())).items() if k.startswith("score-")} == {
        k: v for k, v in items.items() if k.startswith("score-")}  # the worker used the scores, it did not redo them

    # --methods trains only those (the primary endpoints' before the oracle's); the report shows all stored work.
    worker = _run([*common, "--only-seeds", "0", "--methods", "none", "--out", str(tmp_path / "m")])
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert seeds_in("m") == {"none": [0, 1], "clear_filter": [1], "oracle": [1]}
    for wrong in (["--methods", "nope"], ["--methods", "none", "--report-only"]):
        clash = _run([*common, *wrong, "--out", str(tmp_path / "x")])
        assert clash.returncode == 2 and "--methods" in clash.stderr, clash.stderr[-2000:]

    def wall_seconds() -> float:
        return json.loads(gzip.decompress(archive.read_bytes()))["run_meta"]["wall_seconds"]

    first = wall_seconds()
    worker = _run([*common, "--only-seeds", "0", "7", "--out", str(tmp_path / "w0")])  # 7: not a seed of this set
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert seeds_in("w0") == {"none": [0], "clear_filter": [0], "oracle": [0]}
    assert wall_seconds() > first  # each worker's time is added to the set's record

    rebuilt = _run([*common, "--report-only", "--out", str(tmp_path / "all")])
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert seeds_in("all") == {"none": [0, 1], "clear_filter": [0, 1], "oracle": [0, 1]}
    assert "2 seeds." in (tmp_path / "all" / "RESULTS.md").read_text()  # the report counts both workers' seeds

    clash = _run([*common, "--only-seeds", "0", "--report-only", "--out", str(tmp_path / "x")])
    assert clash.returncode == 2 and "--only-seeds" in clash.stderr
    clash = _run([*common, "--only-seeds", "0", "--score-only", "--out", str(tmp_path / "x")])
    assert clash.returncode == 2 and "--score-only" in clash.stderr
    clash = _run([*common, "--only", "gsm8k-n-2O", "--out", str(tmp_path / "x")])  # a typo: an error, not a silent no-op
    assert clash.returncode == 2 and "no set named gsm8k-n-2O" in clash.stderr, clash.stderr[-2000:]

    # --only computes the sets it names, and the report keeps every other set's stored work (it used to hold the named
    # sets alone, written over the committed report).
    other = _run([*common, "--only", "truthfulqa-test-300", "--score-only", "--out", str(tmp_path / "n")])
    assert other.returncode == 0, other.stderr[-3000:]
    assert {"gsm8k-n-20", "truthfulqa-test-300"} <= set(json.loads((tmp_path / "n" / "results.json").read_text())["datasets"])
    # Without --out, a quick run's report goes beside its cache, never over the committed one.
    committed = (ROOT / "benchmarks" / "curation" / "RESULTS.md").read_bytes()
    rebuilt = _run([*common, "--report-only"])
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert "2 seeds." in (tmp_path / "cache" / "results" / "quick" / "report" / "RESULTS.md").read_text()
    assert (ROOT / "benchmarks" / "curation" / "RESULTS.md").read_bytes() == committed


PUT_ITEMS = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from harness import Cache
cache = Cache(Path(sys.argv[2]))
while not (Path(sys.argv[2]) / "go").exists():  # both workers start writing together
    time.sleep(0.001)
for i in range(int(sys.argv[3]), int(sys.argv[3]) + 200):
    cache.put(f"set/item-{i}", {"i": i, "pad": "x" * 2000})  # a payload that makes each rewrite take a while
    cache.update("set/count", lambda n: (n or 0) + 1)
"""


def test_a_killed_part_keeps_the_work_time_of_its_stored_results(tmp_path):
    """A session's end kills the benchmark with SIGKILL, which no handler sees: the time of every result
    stored before it must already be in the set's record (before, a part recorded its time only when it ended,
    so a set computed over several sittings lost them), and a rerun that finds all its work done adds nothing."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["max_steps"] = 1
    params["score"].update(k=2, max_new_tokens_cap=32)
    params["evaluate"]["max_new_tokens_cap"] = 32
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = [sys.executable, str(SCRIPT), "--quick", "--model", "tiny", "--params", str(tmp_path / "params.yaml"),
            "--only", "gsm8k-n-20", "--seeds", "3", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    archive = tmp_path / "cache" / "results" / "quick" / "tiny" / "gsm8k-n-20.json.gz"

    def items() -> dict:
        return json.loads(gzip.decompress(archive.read_bytes())) if archive.exists() else {}

    run = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not any(k.startswith("train-") for k in items()):
        assert run.poll() is None, run.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run.kill()  # SIGKILL, mid-part: 3 seeds of every method are far from done after the first model
    run.wait(60)
    record = items()["run_meta"]
    assert record["wall_seconds"] > 0 and record["machines"] and record["date"]

    finished = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)  # resumes, ends normally
    assert finished.returncode == 0, finished.stderr[-3000:]
    done = archive.read_bytes()
    assert json.loads(gzip.decompress(done))["run_meta"]["wall_seconds"] > record["wall_seconds"]
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)  # nothing left to do
    assert again.returncode == 0, again.stderr[-3000:]
    assert archive.read_bytes() == done  # no work, no new record (nor a new 'last work' date)


def test_cache_workers_sharing_an_archive_lose_nothing(tmp_path):
    """Each put rewrites its set's archive; two processes writing at once (--only-seeds workers)
    must not drop each other's items or counts, and a reader sees every item."""
    workers = [subprocess.Popen([sys.executable, "-c", PUT_ITEMS, str(SCRIPT.parent), str(tmp_path), str(start)]) for start in (0, 1000)]
    time.sleep(2)
    (tmp_path / "go").touch()
    assert [w.wait(300) for w in workers] == [0, 0]
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from harness import Cache
    finally:
        sys.path.remove(str(SCRIPT.parent))
    cache = Cache(tmp_path, read_only=True)
    assert cache.groups() == ["set"]
    # Without the lock about a quarter of the items were lost in this test (292 of 400).
    assert {k for k in cache.entries("set") if k.startswith("item-")} == {f"item-{i}" for i in (*range(200), *range(1000, 1200))}
    assert cache.get("set/count") == 400 and cache.get("set/item-1005")["i"] == 1005
    assert cache.get("other/item-1") is None and cache.fetch("set/missing", lambda: 1) is None  # read-only: no new work


def test_results_explain_each_unmet_target_from_the_development_measurements():
    """RESULTS.md's 'why' section follows the committed numbers: a target that holds loses its reason."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from report import unmet_reasons
    finally:
        sys.path.remove(str(SCRIPT.parent))
    here = SCRIPT.parent
    files = ("results.json", "dev_results.json", "dev_freeform_results.json", "dev_natural_results.json")
    results, dev, freeform, natural = (json.loads((here / f).read_text()) for f in files)
    growth = json.loads((here / "dev_growth_results.json").read_text())[results["meta"]["model"]]
    reasons = unmet_reasons(results, dev, freeform, natural, growth)
    assert any(r.startswith("**Detection AUROC ≥ 0.90 on SQuAD-N 20%**") for r in reasons)
    chosen = dev["weight_selection"]["chosen (best worst-case)"]
    assert any(f"falls from {chosen['min_auroc']:.3f}" in r for r in reasons)  # the numbers are the dev file's
    tqa = growth["curve (auto preset and components by training rows)"]["truthfulqa (crossfit-2x1)"]["1000"]["auto preset"]
    assert any(r.startswith("**Detection on natural errors") and f"{tqa:.3f} at 1000 rows" in r for r in reasons)
    for res in results["datasets"].values():  # lift CLEAR above every bar and above IFD: those reasons go
        for d in res["detection"]:
            if d["scorer"] == "clear":
                d["auroc"] = 1.0
    lifted = unmet_reasons(results, dev, freeform, natural, growth)
    assert not any(r.startswith(("**Detection AUROC", "**CLEAR ≥ IFD", "**Detection on natural errors")) for r in lifted)
    assert len(lifted) == len(reasons) - 4
    assert any(r.startswith("**Detection ≥ 0.75 on errors the scorer would make itself") for r in reasons)
    assert len(unmet_reasons(results, dev, freeform, {}, growth)) == len(lifted) - 1  # no natural-error measurements, no such reason


def test_a_setting_added_later_leaves_the_stored_cells_keys_alone():
    """A cell's key names only settings that existed when the stored cells were made (LEGACY_SETTINGS): a
    setting added since must be left out at the value that reproduces the old behaviour (`*_ADDED_AT`), or
    every stored cell's key changes and `--report-only` silently loses them (adding `correct.top_p` lost
    the 31 Filter + Correct cells of 260, and with them the CIs the README quotes)."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from cells import CORRECT_ADDED_AT, LEGACY_SETTINGS, keyed, train_config, train_key_values
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from clearcurate.config import CorrectConfig
    from clearcurate.correction import evidence_settings

    legacy = yaml.safe_load(LEGACY_SETTINGS.read_text(encoding="utf-8"))
    correct = keyed(evidence_settings(CorrectConfig(**legacy["correct"], beta=legacy["score"]["beta"])), CORRECT_ADDED_AT)
    assert set(correct) - {"beta"} <= set(legacy["correct"]), "add the new setting to cells.CORRECT_ADDED_AT"
    assert set(train_key_values(train_config(legacy["train"]))) <= set(legacy["train"]), "add it to cells.TRAIN_ADDED_AT"


def test_a_scoring_time_with_work_from_the_cache_is_not_reported_as_measured():
    """An interrupted scoring run resumes from the per-row cache, and then its wall time is only the rest's:
    the report says n/a instead of a time the work did not take."""
    from report import detection_table

    entry = {"scorer": "clear", "auroc": 0.9, "precision": 0.7, "recall": 0.7, "seconds": 120.0, "seconds_per_row": 1.2,
             "calls_per_row": "1 training pass"}
    timed, resumed, old = (detection_table({"detection": [{**entry, **extra}]})[-1]
                           for extra in ({"cache_hits": 0}, {"cache_hits": 40}, {"cache_hits": None}))
    assert "| 120 | 1.20 |" in timed and "| 120 | 1.20 |" in old
    assert "n/a (cached)" in resumed and "120" not in resumed


def test_a_part_recomputes_no_retired_test_set(tmp_path):
    """A retired test set is development data now (manifest.json): its part scores and trains nothing for it and
    says how to recompute it anyway. Both of part `natural`'s sets are retired."""
    done = _run(["--model", "tiny", "--part", "natural", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    for name in ("truthfulqa-test-300", "bbm-test-250"):
        assert f"{name} is a retired test set" in log and f"--only {name} recomputes it" in log
    assert not list((tmp_path / "cache").rglob("*.json.gz")) and not (tmp_path / "cache" / "score-cache" / "tiny").exists()


def test_a_cells_code_is_what_computes_it_not_which_rows_or_how_they_are_summarised():
    """The fingerprint stored with every cell covers the code that turns (rows, settings) into a result:
    scoring, correction, training, evaluation. Not the sets' builders, the filter's row choice or the report:
    a cell's key names its rows, so editing those must not mark every stored cell stale (it did before)."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from cells import current_code
    finally:
        sys.path.remove(str(SCRIPT.parent))
    files = set(current_code()[1])
    assert {"curation/cells.py", "curation/baselines.py", "clearcurate/scoring/crossfit.py", "clearcurate/correction.py",
            "clearcurate/llm/lora.py", "clearcurate/answers.py", "clearcurate/core/evaluation.py"} <= files
    assert not files & {"curation/harness.py", "curation/specs.py", "curation/natural_sets.py", "curation/noisy_freeform.py",
                        "curation/run.py", "curation/report.py", "clearcurate/data/noisy_data.py"}
