import json
import shutil
import subprocess
import sys

import pytest

from clearcurate import __version__
from clearcurate.cli import LABELS_DEFAULT, main
from helpers import run_cmd


def test_make_squad_n_and_gsm8k_n_write_plausible_noise_from_the_bundled_sources(tmp_path):
    main(["make-squad-n", "--out", str(tmp_path / "squad"), "--labels", str(tmp_path / "labels.jsonl"), "--noise", "plausible"])
    assert not (tmp_path / "squad" / "noise_labels.jsonl").exists()  # labels live apart from the data curation reads
    labels = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 100 and sum(x["noisy"] for x in labels) == 20
    main(["make-gsm8k-n", "--out", str(tmp_path / "gsm"), "--labels", str(tmp_path / "gsm-labels.jsonl"),
          "--noise", "plausible", "--n-train", "20", "--n-test", "3"])
    train = (tmp_path / "gsm" / "train.jsonl").read_text().splitlines()
    assert len(train) == 20 and all("####" in json.loads(line)["response"] for line in train)


def test_an_unknown_noise_type_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["make-squad-n", "--out", "unused", "--noise", "random"])
    assert "invalid choice: 'random'" in capsys.readouterr().err


def test_version_and_help_name_the_tool_and_its_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"clearcurate {__version__}"
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: clearcurate")
    assert all(command in out for command in ("make-squad-n", "make-gsm8k-n", "diff"))


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: command"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["make-gsm8k-n"], "the following arguments are required: --out"),
        (["make-squad-n", "--n-train", "many"], "argument --n-train: invalid int value: 'many'"),
        (["make-squad-n", "--noise-rate", "a fifth"], "argument --noise-rate: invalid float value: 'a fifth'"),
        (["diff"], "the following arguments are required: REV_A, REV_B"),
        (["diff", "HEAD~1", "HEAD", "--format", "html"], "argument --format: invalid choice: 'html'"),
        (["diff", "HEAD~1", "HEAD", "--stage", "score"], "argument --stage: invalid choice: 'score'"),
    ],
)
def test_bad_arguments_are_usage_errors_that_say_what_is_wrong(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: clearcurate") and message in err


def test_make_squad_n_options_reach_the_build_and_labels_go_where_evaluate_reads_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["make-squad-n", "--out", "raw", "--n-train", "10", "--n-test", "5", "--noise-rate", "0.5", "--seed", "3"])
    train = [json.loads(line) for line in (tmp_path / "raw" / "train.jsonl").read_text().splitlines()]
    test = (tmp_path / "raw" / "test.jsonl").read_text().splitlines()
    labels = [json.loads(line) for line in (tmp_path / LABELS_DEFAULT).read_text().splitlines()]  # the default place
    assert len(train) == 10 and len(test) == 5 and sum(x["noisy"] for x in labels) == 5
    assert [x["id"] for x in labels] == [r["id"] for r in train]


# ---- `clearcurate diff` in process, on a small git + DVC repo (no pipeline run) ----


def test_diff_outside_a_git_repository_is_a_one_line_error_not_a_traceback(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["diff", "HEAD", "workspace", "--repo", str(tmp_path)])
    message = str(exit_.value.code)
    assert message.startswith("clearcurate diff: data/curated/train.jsonl@HEAD: not a git + DVC project (") and "\n" not in message
    assert "pass --repo" in message


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def data_repo(tmp_path):
    """A git + DVC repo whose commit holds a curated set and a filter run, with other versions in the workspace."""
    from dvc.repo import Repo

    repo = tmp_path / "repo"
    repo.mkdir()
    run_cmd(["git", "init", "-q"], repo)
    Repo.init(str(repo)).close()
    _write(repo / "data/curated/train.jsonl", [{"id": "1", "response": "Paris"}, {"id": "2", "response": "a blue sky"}])
    _write(repo / "data/scored/train.jsonl", [{"id": i, "confidence": c} for i, c in (("1", 0.8), ("2", 0.7), ("3", 0.1))])
    _write(repo / "data/filtered/kept.jsonl", [ROWS["1"], ROWS["2"]])
    _write(repo / "data/filtered/removed.jsonl", [{**ROWS["3"], "confidence": 0.1}])
    _write(repo / "data/curated/outcomes.jsonl", [{"id": "1", "outcome": "kept"}, {"id": "2", "outcome": "kept"},
                                                  {"id": "3", "outcome": "removed", "reason": "confidence 0.1000 < gamma 0.3000"}])
    (repo / "metrics").mkdir()
    (repo / "metrics/filter.json").write_text(json.dumps({"gamma": 0.3, "threshold": "quantile 0.2", "kept": 2}))
    run_cmd(["git", "add", "-A"], repo)
    run_cmd(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "run 1"], repo)
    _write(repo / "data/curated/train.jsonl", [{"id": "2", "response": "a grey sky"}, {"id": "4", "response": "new"}])
    _write(repo / "data/scored/train.jsonl", [{"id": i, "confidence": c} for i, c in (("1", 0.2), ("2", 0.7), ("3", 0.1))])
    _write(repo / "data/filtered/kept.jsonl", [ROWS["2"]])
    _write(repo / "data/filtered/removed.jsonl", [{**ROWS["1"], "confidence": 0.2, "reason": "confidence 0.2000 < gamma 0.5000"},
                                                  {**ROWS["3"], "confidence": 0.1, "reason": "confidence 0.1000 < gamma 0.5000"}])
    _write(repo / "data/curated/outcomes.jsonl", [{"id": "1", "outcome": "removed", "reason": "confidence 0.2000 < gamma 0.5000"},
                                                  {"id": "2", "outcome": "kept"}, {"id": "4", "outcome": "kept"}])
    (repo / "metrics/filter.json").write_text(json.dumps({"gamma": 0.5, "threshold": "quantile 0.4", "kept": 1}))
    return repo


LONG_PROMPT = "Which city is the capital of France,\nthe country whose capital the question asks about, and why is it so?"
ROWS = {
    "1": {"id": "1", "prompt": LONG_PROMPT, "response": "Paris"},
    "2": {"id": "2", "prompt": "What colour is the sky?", "response": "blue"},
    "3": {"id": "3", "prompt": "2 + 2?", "response": "five"},
}


def test_diff_lists_added_removed_and_rewritten_rows_between_a_commit_and_the_workspace(data_repo, capsys):
    capsys.readouterr()
    main(["diff", "HEAD", "workspace", "--repo", str(data_repo), "--format", "json"])
    out = json.loads(capsys.readouterr().out)  # stdout holds the report only
    assert out["added"] == ["4"] and out["removed"] == ["1"]
    assert out["response_changed"] == [{"id": "2", "diff": "a [-blue-] {+grey+} sky"}]
    assert out["summary"] == {"rows_a": 2, "rows_b": 2, "added": 1, "removed": 1, "response_changed": 1, "confidence_changed": 0}
    assert out["rows"]["1"] == {"prompt": None, "response": "Paris", "confidence_a": 0.8, "confidence_b": 0.2, "outcome_a": "kept",
                                "outcome_b": "removed", "reason_b": "confidence 0.2000 < gamma 0.5000"}
    main(["diff", "HEAD", "workspace", "--repo", str(data_repo)])
    text = capsys.readouterr().out
    assert text.startswith("data/curated/train.jsonl, HEAD -> workspace") and "rows 2 -> 2: 1 added, 1 removed" in text
    # The default view says, of each added and removed row, what it says, how it scored and why each run decided so.
    assert ("removed:\n  - 1 (confidence 0.8000 -> 0.2000 (-0.6000))\n      response:   Paris\n      before:     kept\n"
            "      after:      removed\n      why after:  confidence 0.2000 < gamma 0.5000") in text
    assert "added:\n  + 4\n      response:   new\n      after:      kept" in text


def test_diff_of_a_stage_lists_the_rows_whose_decision_flipped(data_repo, capsys):
    capsys.readouterr()
    main(["diff", "HEAD", "workspace", "--repo", str(data_repo), "--stage", "filter", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert out["flipped"] == {"1": ["kept", "removed"]}
    assert out["counts_a"] == {"kept": 2, "removed": 1} and out["counts_b"] == {"kept": 1, "removed": 2}
    # JSON: the flipped row's full prompt and response, its confidence in both revisions (the scored sets) and why it went
    assert out["rows"] == {"1": {"prompt": LONG_PROMPT, "response": "Paris", "confidence_a": 0.8, "confidence_b": 0.2,
                                 "reason_b": "confidence 0.2000 < gamma 0.5000"}}


def test_diff_of_a_stage_shows_what_each_flipped_row_says_and_its_confidences(data_repo, capsys):
    capsys.readouterr()
    main(["diff", "HEAD", "workspace", "--repo", str(data_repo), "--stage", "filter"])
    text = capsys.readouterr().out
    assert "settings: gamma 0.3000 -> 0.5000, threshold quantile 0.2 -> quantile 0.4" in text  # what moved, before the rows
    assert "  1: kept -> removed (confidence 0.8000 -> 0.2000 (-0.6000))" in text
    prompt = next(line for line in text.splitlines() if "prompt:" in line)
    assert prompt.strip() == "prompt:     " + " ".join(LONG_PROMPT.split())  # on one line, whole: it fits --width
    assert "      response:   Paris" in text and "      why after:  confidence 0.2000 < gamma 0.5000" in text
    main(["diff", "HEAD", "workspace", "--repo", str(data_repo), "--stage", "filter", "--width", "80"])
    prompt = next(line for line in capsys.readouterr().out.splitlines() if "prompt:" in line)
    assert prompt.endswith("…") and len(prompt.split("prompt:", 1)[1].strip()) == 80
    main(["diff", "HEAD", "workspace", "--repo", str(data_repo), "--stage", "filter", "--format", "markdown"])
    md = capsys.readouterr().out
    assert "- 1: kept -> removed (confidence 0.8000 -> 0.2000 (-0.6000))" in md and "  - response: Paris" in md


def test_diff_of_an_unknown_revision_names_it(data_repo):
    with pytest.raises(SystemExit) as exit_:
        main(["diff", "no-such-rev", "workspace", "--repo", str(data_repo)])
    assert "data/curated/train.jsonl@no-such-rev: unknown revision 'no-such-rev'" in str(exit_.value.code)


def test_diff_before_anything_ran_says_what_to_run(tmp_path):
    """A fresh clone: git + DVC, no outputs yet, no remote."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], cwd=tmp_path, check=True)
    with pytest.raises(SystemExit) as exit_:
        main(["diff", "HEAD", "workspace", "--repo", str(tmp_path)])
    message = str(exit_.value.code)
    assert "data/curated/train.jsonl does not exist at HEAD: that revision did not run the pipeline" in message
    assert "\n" not in message
    with pytest.raises(SystemExit) as exit_:
        main(["diff", "workspace", "workspace", "--repo", str(tmp_path)])
    assert "is not in the workspace: run `dvc repro`" in str(exit_.value.code)


def test_diff_of_a_revision_whose_data_is_nowhere_here_says_so_and_what_to_run(tmp_path, capsys):
    """Recorded by DVC at HEAD, but the data was never pushed: no local cache, no remote."""
    run_cmd(["git", "init", "-q"], tmp_path)
    run_cmd([sys.executable, "-m", "dvc", "init", "-q"], tmp_path)
    _write(tmp_path / "data/curated/train.jsonl", [{"id": "1", "response": "Paris"}])
    run_cmd([sys.executable, "-m", "dvc", "add", "-q", "data/curated/train.jsonl"], tmp_path)
    run_cmd(["git", "add", "-A"], tmp_path)
    run_cmd(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "run 1"], tmp_path)
    shutil.rmtree(tmp_path / ".dvc" / "cache")
    (tmp_path / "data/curated/train.jsonl").unlink()
    with pytest.raises(SystemExit) as exit_:
        main(["diff", "HEAD", "workspace", "--repo", str(tmp_path)])
    message = str(exit_.value.code)
    assert message == (
        "clearcurate diff: data/curated/train.jsonl@HEAD: data/curated/train.jsonl is recorded at HEAD but its data is in neither "
        "the local DVC cache nor the remote: `dvc push` it where it was made, or make it again (`git checkout HEAD && dvc repro`)"
    )
    assert capsys.readouterr().out == ""


DEMO_METRICS = {  # `dvc metrics show --json` of the demo (shortened floats)
    "workspace": {"data": {
        "metrics/prepare.json": {"data": {"train": {"rows": 100, "quarantined": 0}, "test": {"rows": 90, "quarantined": 0},
                                          "quarantine_codes": {}}},
        "metrics/score.json": {"data": {"rows": 100, "recipe": "crossfit", "weights_preset": "short", "confidence_mean": 0.263183,
                                        "confidence_median": 0.233182, "seconds": 223.4, "cache_hits": {},
                                        "cache_misses": {"samples": 100, "reflection": 100}, "rows_per_second": 0.448}},
        "metrics/evaluate.json": {"data": {
            **{m: {"exact_match": em, "f1": f1, "heldout_nll_per_token": nll, "heldout_perplexity": 2.718 ** nll}
               for m, em, f1, nll in (("base", 0.0, 13.58, 4.2326), ("baseline", 22.222, 30.01, 1.5394),
                                      ("filtered", 23.333, 32.462, 1.5105), ("corrected", 23.333, 32.462, 1.5105))},
            "detection": {"rows": 100, "noisy_rows": 20, "auroc": 0.919375, "filter_precision": 0.7, "filter_recall": 0.7},
            "correction": {"given": 20, "given_noisy": 14, "replaced": 0, "replaced_matching_clean": 0, "noisy_repaired": 0,
                           "noisy_repaired_share": 0.0, "clean_damaged": 0, "clean_damaged_share": 0.0}}},
        "metrics/broken.json": {"error": {"type": "JSONDecodeError", "msg": "Expecting value"}},
    }}
}


def test_metrics_are_one_small_table_per_file_within_100_columns():
    from clearcurate.cli import metrics_text

    text = metrics_text(DEMO_METRICS)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    models = [line.split()[:3] for line in lines if line.split()[:1] in (["base"], ["baseline"], ["filtered"], ["corrected"])]
    assert models == [["base", "0", "13.58"], ["baseline", "22.22", "30.01"], ["filtered", "23.33", "32.46"],
                      ["corrected", "23.33", "32.46"]]  # one row per model, the columns named once
    assert lines[lines.index("metrics/prepare.json") + 2].split() == ["train", "100", "0"]
    assert "  detection: rows 100  noisy_rows 20  auroc 0.9194  filter_precision 0.7  filter_recall 0.7" in lines
    assert "  cache_misses: samples 100  reflection 100" in lines
    assert "  could not read it: Expecting value" in lines


def test_metrics_show_a_section_of_like_entries_as_its_own_table():
    """filter.json's removals by length band read as a table, one band a row; DVC leaves out a null (a band with no
    rows has no removed share), so the rows' keys may differ."""
    from clearcurate.cli import metrics_text

    bands = {"<= 8 words": {"rows": 76, "removed": 6, "removed_share": 0.0789}, "9-40 words": {"rows": 24, "removed": 14,
             "removed_share": 0.5833}, "> 40 words": {"rows": 0, "removed": 0}}
    filter_metrics = {"gamma": 0.1387, "kept": 80, "removed_by_length": bands, "defects": {"refusal": 2, "truncated": 1}}
    lines = metrics_text({"workspace": {"data": {"metrics/filter.json": {"data": filter_metrics}}}}).splitlines()
    at = lines.index("  removed_by_length:")
    assert lines[at + 1].split() == ["rows", "removed", "removed_share"]
    assert [line.split() for line in lines[at + 2:at + 5]] == [
        ["<=", "8", "words", "76", "6", "0.0789"], ["9-40", "words", "24", "14", "0.5833"], [">", "40", "words", "0", "0", "NaN"]]
    assert "  defects: refusal 2  truncated 1" in lines  # plain numbers stay one line
    assert "  gamma 0.1387  kept 80" in lines


def test_metrics_without_metrics_files_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"clearcurate metrics: no metrics files found; run it in the project after `dvc repro`"):
        main(["metrics"])


def test_metrics_show_each_number_with_its_interval_in_one_column():
    from clearcurate.cli import metrics_text

    evaluate = {m: {"n": 90.0, "f1": f1, "f1_ci_low": f1 - 9.5, "f1_ci_high": f1 + 9.8, "heldout_nll_per_token": 1.54,
                    "heldout_nll_per_token_ci_low": 1.41, "heldout_nll_per_token_ci_high": 1.67, "heldout_perplexity": 4.66}
                for m, f1 in (("baseline", 28.9), ("filtered", 36.5))}
    evaluate["filtered_vs_baseline"] = {"n": 90.0, "f1": 7.6, "f1_ci_low": 1.2, "f1_ci_high": 14.0}
    text = metrics_text({"workspace": {"data": {"metrics/evaluate.json": {"data": evaluate}}}})
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100 and "_ci_" not in text
    assert lines[1].split() == ["n", "f1", "heldout_nll_per_token", "heldout_perplexity"]
    assert " ".join(lines[3].split()) == "filtered 90 36.5 [27, 46.3] 1.54 [1.41, 1.67] 4.66"
    assert "  filtered_vs_baseline: n 90  f1 7.6 [1.2, 14]" in lines
