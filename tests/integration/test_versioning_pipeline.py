"""Row-level dataset diffs for real: two commits of a pipeline run, an S3-compatible server on loopback,
a second clone (the pure comparison and rendering are in tests/unit/test_versioning.py)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
import socket
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from helpers import command_env, copy_repo, read_lines, run_cmd

S3_ENV = {  # moto accepts any credentials; these override the planted ones run_cmd sets
    "AWS_ACCESS_KEY_ID": "clearcurate-test",
    "AWS_SECRET_ACCESS_KEY": "clearcurate-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "NO_PROXY": "127.0.0.1",
}
OUTS = ("data/prepared", "data/scored", "data/filtered", "data/curated", "models", "reports/validation")


def _commit(repo: Path, message: str) -> str:
    run_cmd(["git", "add", "-A"], repo)
    run_cmd(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", message], repo)
    return run_cmd(["git", "rev-parse", "HEAD"], repo).strip()


def _snapshot(repo: Path) -> dict[str, dict[str, dict]]:
    files = ("data/curated/train.jsonl", "data/filtered/kept.jsonl", "data/filtered/removed.jsonl", "data/curated/outcomes.jsonl")
    return {f: {r["id"]: r for r in read_lines(repo / f)} for f in files}


def _hashes(repo: Path) -> dict[str, str]:
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for out in OUTS for p in sorted((repo / out).rglob("*")) if p.is_file() and p.name != ".gitignore"
    }


@pytest.fixture(scope="module")
def history(pipeline_run, tmp_path_factory, s3_endpoint):
    """Two commits of the pipeline: the default quantile, then a stricter filter (a fixed gamma).

    The team's S3 remote is configured from the first commit, as a team sets it up: DVC reads
    (and pushes) a commit's data through the remote that commit's config names. The second
    commit is a DVC experiment (`dvc exp run -S ...`), applied and committed as the README says.
    The stricter gamma is taken from the first run's scores: the tiny model's scores can tie
    (saturated components), and a stricter quantile of tied scores can equal the first one.
    """
    repo = copy_repo(pipeline_run, tmp_path_factory.mktemp("team") / "repo")
    run_cmd(["dvc", "remote", "add", "-d", "team", "s3://team-data/clearcurate"], repo)
    run_cmd(["dvc", "remote", "modify", "team", "endpointurl", s3_endpoint], repo)
    first = _commit(repo, "run 1: quantile 0.2, S3 remote for the team")
    before = _snapshot(repo)
    first_gamma = json.loads((repo / "metrics/filter.json").read_text())["gamma"]
    above = sorted({r["confidence"] for r in read_lines(repo / "data/scored/train.jsonl") if r["confidence"] > first_gamma})
    assert above, "every row scored at or below the first run's gamma: no stricter filter to try"
    strict_gamma = above[len(above) // 2]  # removes more rows than run 1, and keeps at least one
    run_cmd(["dvc", "exp", "run", "-n", "strict", "-S", "filter.quantile=null", "-S", f"filter.gamma={strict_gamma!r}"], repo)
    shown = run_cmd(["dvc", "exp", "show", "--csv"], repo, stdout_only=True)
    run_cmd(["dvc", "exp", "apply", "strict"], repo)
    applied = yaml.safe_load((repo / "params.yaml").read_text())["filter"]
    assert applied["quantile"] is None and applied["gamma"] == strict_gamma
    second = _commit(repo, "run 2: a stricter gamma (experiment strict)")
    return {"repo": repo, "a": first, "b": second, "before": before, "after": _snapshot(repo),
            "exp_show": list(csv.DictReader(io.StringIO(shown)))}


@pytest.fixture(scope="module")
def s3_endpoint():
    """A real S3-compatible server (moto's server mode) on a free loopback port, with one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url, aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1").create_bucket(Bucket="team-data")
    yield url
    server.stop()


def _expected_row_diff(before: dict, after: dict) -> dict:
    a, b = before["data/curated/train.jsonl"], after["data/curated/train.jsonl"]
    return {
        "added": sorted(set(b) - set(a)),
        "removed": sorted(set(a) - set(b)),
        "changed": sorted(i for i in set(a) & set(b) if a[i]["response"] != b[i]["response"]),
    }


def _diff_json(repo: Path, *args: str) -> dict:
    return json.loads(run_cmd(["clearcurate", "diff", *args, "--format", "json"], repo, stdout_only=True))


@pytest.mark.pipeline
def test_diff_of_two_real_commits_is_exact(history):
    repo, expected = history["repo"], _expected_row_diff(history["before"], history["after"])
    assert expected["removed"] or expected["changed"], "the stricter filter should remove rows or send them to Auto-Correct"
    out = _diff_json(repo, history["a"], history["b"])
    assert sorted(out["added"]) == expected["added"] and sorted(out["removed"]) == expected["removed"]
    assert sorted(c["id"] for c in out["response_changed"]) == expected["changed"]
    assert out["confidence_changed"] == []  # score did not rerun: same confidences
    assert out["summary"]["rows_a"] == len(history["before"]["data/curated/train.jsonl"])
    text = run_cmd(["clearcurate", "diff", history["a"], history["b"]], repo)
    assert f"{len(expected['removed'])} removed" in text.splitlines()[2]


@pytest.mark.pipeline
def test_stage_diff_lists_rows_that_flipped_between_two_filter_runs(history):
    kept_a, kept_b = set(history["before"]["data/filtered/kept.jsonl"]), set(history["after"]["data/filtered/kept.jsonl"])
    assert kept_a - kept_b, "the stricter filter should remove rows: nothing to list otherwise"
    out = _diff_json(history["repo"], history["a"], history["b"], "--stage", "filter")
    assert {i for i, (x, y) in out["flipped"].items()} == kept_a ^ kept_b
    assert all(x == "kept" and y == "removed" for x, y in out["flipped"].values())  # stricter filter only removes
    outcomes = _diff_json(history["repo"], history["a"], history["b"], "--stage", "correct")
    assert outcomes["counts_b"] == dict(Counter(o["outcome"] for o in history["after"]["data/curated/outcomes.jsonl"].values()))


@pytest.mark.pipeline
def test_unknown_revision_is_a_clear_error(history):
    proc = subprocess.run(["clearcurate", "diff", "no-such-rev", history["b"]], cwd=history["repo"], capture_output=True, text=True,
                          env=command_env())
    assert proc.returncode != 0
    assert "data/curated/train.jsonl@no-such-rev: unknown revision 'no-such-rev'" in proc.stderr


@pytest.mark.pipeline
def test_push_wipe_pull_round_trip_through_s3_and_a_second_clone(history, tmp_path):
    repo = history["repo"]
    assert S3_ENV["AWS_SECRET_ACCESS_KEY"] not in (repo / ".dvc/config").read_text()  # credentials stay in the environment
    run_cmd(["dvc", "push", "--all-commits"], repo, **S3_ENV)
    original = _hashes(repo)
    assert any(k.startswith("models/filtered/") for k in original) and len(original) > 20

    shutil.rmtree(repo / ".dvc/cache")
    for out in OUTS:
        shutil.rmtree(repo / out)
    run_cmd(["git", "checkout", "--", "."], repo)  # the .gitignore files DVC keeps in output folders
    run_cmd(["dvc", "pull"], repo, **S3_ENV)
    assert _hashes(repo) == original
    assert "Data and pipelines are up to date" in run_cmd(["dvc", "repro"], repo, **S3_ENV)

    shutil.rmtree(repo / ".dvc/cache")  # the diff now reads both revisions from the remote
    out = _diff_json(repo, history["a"], history["b"])
    expected = _expected_row_diff(history["before"], history["after"])
    assert sorted(out["removed"]) == expected["removed"]

    clone = tmp_path / "teammate"
    run_cmd(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run_cmd(["dvc", "pull"], clone, **S3_ENV)
    assert _hashes(clone) == original
    run_cmd(["git", "checkout", "-q", history["a"]], clone)  # an older version, also from the remote
    run_cmd(["dvc", "pull"], clone, **S3_ENV)
    assert {r["id"] for r in read_lines(clone / "data/curated/train.jsonl")} == set(history["before"]["data/curated/train.jsonl"])


@pytest.mark.pipeline
def test_plots_diff_draws_each_commits_own_data(history, tmp_path):
    repo, revs = history["repo"], {history["a"]: history["before"], history["b"]: history["after"]}
    run_cmd(["dvc", "plots", "diff", *revs, "-o", str(tmp_path / "plots")], repo)
    html = (tmp_path / "plots" / "index.html").read_text()
    for title in ("Confidence by outcome", "Curation outcomes", "Test score by model"):
        assert title in html
    # What the page draws, per plot and commit: each commit's outcome counts, its rows in the confidence
    # histogram, its four models' scores (the stricter second commit removed more, so the two differ).
    shown = json.loads(run_cmd(["dvc", "plots", "diff", *revs, "--json"], repo, stdout_only=True))["data"]

    def values(title: str) -> list[dict]:
        (plot,) = next(v for k, v in shown.items() if k.startswith(title))
        return plot["content"]["data"]["values"]

    drawn = {rev: {v["outcome"]: v["rows"] for v in values("Curation outcomes") if v["rev"] == rev} for rev in revs}
    for rev, snapshot in revs.items():
        counts = Counter(o["outcome"] for o in snapshot["data/curated/outcomes.jsonl"].values())
        assert drawn[rev] == {o: counts.get(o, 0) for o in ("kept", "corrected", "removed", "quarantined")}
        binned = [v for v in values("Confidence by outcome") if v["rev"] == rev and v["field"] == "kept"]
        assert sum(v["kept"] + v["corrected"] + v["removed"] for v in binned) == len(snapshot["data/filtered/kept.jsonl"]) + len(
            snapshot["data/filtered/removed.jsonl"])
        assert sorted(v["model"] for v in values("Test score by model") if v["rev"] == rev) == ["base", "baseline", "corrected", "filtered"]
    assert drawn[history["a"]] != drawn[history["b"]]


@pytest.mark.pipeline
def test_experiment_with_another_threshold_gives_other_metrics(history):
    rows = history["exp_show"]  # `dvc exp show --csv` right after `dvc exp run -n strict -S filter.quantile=null -S filter.gamma=...`

    def column(suffix: str) -> str:  # DVC prefixes a column with its file when names collide
        return next(c for c in rows[0] if c == suffix or c.endswith(":" + suffix))

    strict = next(r for r in rows if r["Experiment"] == "strict")
    baseline = next(r for r in rows if r["Experiment"] == "" and r["rev"] != "workspace")  # the commit it started from
    assert baseline[column("filter.quantile")] == "0.2" and strict[column("filter.quantile")] != "0.2"
    assert float(strict[column("kept")]) < float(baseline[column("kept")])  # a stricter filter keeps fewer rows
    assert strict[column("kept")] == str(len(history["after"]["data/filtered/kept.jsonl"]))
    assert strict[column("filtered.f1")] != "" and strict[column("corrected.f1")] != ""  # evaluate ran for it
