"""The real `dvc repro` of the whole pipeline, on a few rows, with the `tiny` model preset."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from clearcurate.data.reports import remote_loads
from helpers import SECRETS, command_env, copy_repo, read_lines, run_cmd, with_removed_rows

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def repo(pipeline_run, tmp_path_factory) -> Path:
    return copy_repo(pipeline_run, tmp_path_factory.mktemp("pipeline") / "repo")


def test_no_secret_from_the_environment_reaches_logs_or_artifacts(repo: Path):
    leaks = []
    for path in repo.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            data = path.read_bytes()
            leaks += [f"{path.relative_to(repo)}: {name}" for name, value in SECRETS.items() if value.encode() in data]
    assert not leaks, leaks
    assert "Running stage 'evaluate'" in (repo / "repro.log").read_text()  # the log was captured and searched


def test_every_stage_produces_its_outputs(repo: Path):
    metrics = json.loads((repo / "metrics/evaluate.json").read_text())
    for model in ("base", "baseline", "filtered", "corrected"):
        assert 0.0 <= metrics[model]["exact_match"] <= 100.0 and 0.0 <= metrics[model]["f1"] <= 100.0
    assert metrics["detection"]["auroc"] is not None or metrics["detection"]["noisy_rows"] in (0, metrics["detection"]["rows"])
    for adapter in ("baseline", "filtered", "corrected"):
        assert (repo / "models" / adapter / "adapter_model.safetensors").exists()
        assert (repo / "models" / adapter / "train_log.json").exists()
    assert (repo / "models/base/model.safetensors").exists()


def test_scores_carry_every_component(repo: Path):
    scored = read_lines(repo / "data/scored/train.jsonl")
    assert len(scored) == 12
    for row in scored:
        for key in ("confidence", "consistency", "likelihood", "relevance"):
            assert 0.0 <= row[key] <= 1.0
        assert len(row["samples"]) == 2
        assert "reflection_probs" not in row and "fluency" not in row  # the short preset weighs neither: not computed
    assert sum(r["id"].startswith("h") for r in scored) == 3  # content-hash ids


def test_every_row_has_exactly_one_outcome(repo: Path):
    prepared = [r["id"] for r in read_lines(repo / "data/prepared/train.jsonl")]
    outcomes = read_lines(repo / "data/curated/outcomes.jsonl")
    quarantined = {o["id"]: o["reason"] for o in outcomes if o["outcome"] == "quarantined"}
    assert quarantined == {
        "data/raw/train.jsonl:13": "invalid JSON (Expecting property name enclosed in double quotes)",
        "data/raw/train.jsonl:14": f"duplicate id '{prepared[5]}' with different content (first on line 6)",
    }
    assert sorted(o["id"] for o in outcomes) == sorted(prepared + list(quarantined))
    assert all(o["outcome"] in {"kept", "corrected", "removed", "quarantined"} and o["reason"] for o in outcomes)
    metrics = json.loads((repo / "metrics/prepare.json").read_text())
    assert metrics["train"] == {"rows": 12, "quarantined": 2} and metrics["test"] == {"rows": 4, "quarantined": 0}
    assert metrics["quarantine_codes"] == {"unparseable": 1, "duplicate_id": 1}
    assert [o["code"] for o in outcomes if o["outcome"] == "quarantined"] == ["unparseable", "duplicate_id"]
    curated = {r["id"] for r in read_lines(repo / "data/curated/train.jsonl")}
    assert curated == {o["id"] for o in outcomes if o["outcome"] in ("kept", "corrected")}
    changes = read_lines(repo / "data/curated/changes.jsonl")
    assert {c["id"] for c in changes} == {o["id"] for o in outcomes if o["outcome"] == "corrected"}
    # Every row Auto-Correct saw has its decision and evidence; the metrics count them.
    decisions = read_lines(repo / "data/curated/decisions.jsonl")
    removed = {r["id"] for r in read_lines(repo / "data/filtered/removed.jsonl")}
    assert 0 < len(removed) <= 3  # the lowest-scored 20% of 12 rows
    assert {d["id"] for d in decisions} == removed
    assert all(len(d["samples"]) == 5 and 0.0 <= d["agreement"] <= 1.0 for d in decisions)
    correct = json.loads((repo / "metrics/correct.json").read_text())
    assert correct["judge"] == "agreement" and correct["given"] == len(removed) and correct["corrected"] == len(changes)
    assert changes and all(c["new"] != c["old"] for c in changes)  # eta 0: a finished, differing sample replaces
    labelled = json.loads((repo / "metrics/evaluate.json").read_text())["correction"]
    known = {r["id"] for r in read_lines(repo / "data/labels/noise_labels.jsonl")}  # rows given content-hash ids have none
    assert labelled["given"] == len(removed & known) and labelled["replaced"] == len({c["id"] for c in changes} & known)
    noisy = {r["id"] for r in read_lines(repo / "data/labels/noise_labels.jsonl") if r["noisy"]}
    assert labelled["given_noisy"] == len(removed & noisy) >= 1  # a long off-span answer is among the lowest-scored


def test_metrics_show_prints_the_comparison(repo: Path):
    out = run_cmd(["dvc", "metrics", "show"], repo)
    for token in ("baseline.f1", "filtered.exact_match", "corrected.f1", "base.f1"):
        assert token in out


def test_second_repro_does_nothing_and_gamma_reruns_from_filter(repo: Path):
    assert "Data and pipelines are up to date" in run_cmd(["dvc", "repro"], repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # A fixed threshold instead of the default quantile: the median score, so about half the rows stay.
    gamma = round(sorted(r["confidence"] for r in read_lines(repo / "data/scored/train.jsonl"))[6], 6)
    params["filter"].update(gamma=gamma, quantile=None)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    status = run_cmd(["dvc", "status", "--json"], repo)
    changed = set(json.loads(status))
    assert "filter" in changed
    assert not changed & {"prepare", "score", "baseline"}
    out = run_cmd(["dvc", "repro"], repo)
    assert "Running stage 'filter'" in out and "Running stage 'score'" not in out
    assert json.loads((repo / "metrics/filter.json").read_text())["gamma"] == gamma


def test_validation_reports_are_written_for_every_curating_stage(repo: Path):
    for stage, names in {"prepare": ("prepared_train", "prepared_test"), "score": ("scored",),
                         "filter": ("filtered",), "correct": ("curated",)}.items():
        for name in names:
            assert json.loads((repo / "reports/validation" / stage / f"{name}.json").read_text())["success"] is True
            docs = repo / "reports/validation" / stage / "docs" / name
            assert (docs / "index.html").exists()
            pages = [*docs.rglob("*.html"), *(docs / "static/styles").glob("*.css")]
            assert len(pages) >= 3 and not [(p, remote_loads(p)) for p in pages if remote_loads(p)]  # they render offline


def test_a_filter_that_would_drop_too_much_stops_with_a_report(repo: Path):
    kept_before = (repo / "data/filtered/kept.jsonl").read_text()
    original = (repo / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["filter"].update(gamma=1.0, quantile=None)  # removes (almost) every row
    params["validate"]["max_removed_share"] = 0.1
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        proc = subprocess.run(["dvc", "repro", "filter"], cwd=repo, env=command_env(), capture_output=True, text=True)
        assert proc.returncode != 0
        assert "expectations 'filtered' failed" in proc.stderr + proc.stdout
        assert "expect_column_values_to_be_in_set(outcome)" in proc.stderr + proc.stdout
        assert json.loads((repo / "reports/validation/filter/filtered.json").read_text())["success"] is False
    finally:
        (repo / "params.yaml").write_text(original)
    run_cmd(["dvc", "checkout", "--force", "filter"], repo)  # the last good outputs come back from the DVC cache
    assert (repo / "data/filtered/kept.jsonl").read_text() == kept_before
    # nothing needs recomputing; check-params reruns (about a second): it last checked the failed run's values
    reran = [line for line in run_cmd(["dvc", "repro"], repo).splitlines() if line.startswith("Running stage")]
    assert reran == ["Running stage 'check-params':"]


def test_another_eta_re_decides_from_cached_evidence_without_model_work(pipeline_run, tmp_path_factory):
    repo = with_removed_rows(pipeline_run, tmp_path_factory.mktemp("eta") / "repo")  # its own copy: this test changes params
    first = json.loads((repo / "metrics/correct.json").read_text())
    assert first["given"] > 0 and first["cached"] == 0  # the model's evidence was computed, and stored
    assert first["eta"] == 0.0  # the test preset's: any differing candidate is accepted
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["correct"]["eta"] = 0.5
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = run_cmd(["dvc", "repro", "correct"], repo)
    assert "Running stage 'correct'" in out and "Running stage 'train'" not in out
    metrics = json.loads((repo / "metrics/correct.json").read_text())
    assert metrics["eta"] == 0.5 and metrics["given"] == first["given"]
    assert metrics["cached"] == first["given"]  # every row's evidence came from the cache: no sampling, no judging
    decisions = read_lines(repo / "data/curated/decisions.jsonl")
    assert all((d["outcome"] == "corrected") == (d["reason"].endswith("> eta 0.5")) for d in decisions)
    assert all(d["confidence"] > 0.5 for d in decisions if d["outcome"] == "corrected")


def test_worked_solution_test_rows_get_final_number_exact_match(repo: Path, tmp_path: Path):
    """GSM8K-style test rows (answers ending in `#### <number>`) are scored by their final number, which gives exact
    match and no F1; `evaluate` names that metric in test_scores.json (it stopped with KeyError 'f1' before)."""
    work = copy_repo(repo, tmp_path / "repo")
    test = read_lines(work / "data/prepared/test.jsonl")
    for i, row in enumerate(test):
        row["response"] = row["answers"][0] = f"{i} + 1 = {i + 1}\n#### {i + 1}"
    (work / "data/prepared/test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test), encoding="utf-8")
    run_cmd(["dvc", "repro", "--single-item", "evaluate"], work)
    metrics = json.loads((work / "metrics/evaluate.json").read_text())
    assert all("exact_match" in metrics[m] and "f1" not in metrics[m] for m in ("base", "baseline", "filtered", "corrected"))
    scores = json.loads((work / "metrics/test_scores.json").read_text())
    assert [s["metric"] for s in scores] == ["exact_match"] * 4
    assert [s["score"] for s in scores] == [metrics[s["model"]]["exact_match"] for s in scores]
