"""File-level input problems through the real `stages/prepare.py`: one line, no traceback, a quarantine file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, command_env, read_lines, run_cmd

GOOD = b'{"id": "a", "prompt": "Capital of France?", "response": "Paris"}\n{"id": "b", "prompt": "2 + 2?", "response": "4"}\n'
CP1252 = "id,prompt,response\na,Café?,Crème\nb,Déjà vu?,Oui\n".encode("cp1252")  # an old Excel export
CMD = [sys.executable, str(ROOT / "stages" / "prepare.py"), "--out", "data/prepared", "--model-out", "models/base",
       "--scorer-out", "models/scorer", "--validation", "reports/validation/prepare", "--metrics", "metrics/prepare.json"]

CASES = {  # data.train (its bytes, or None: not written), params edit, the error line's end, quarantined rows (codes)
    "missing": ("data/raw/missing.jsonl", None, {}, "data/raw/missing.jsonl: no such file; point data.train / data.test in "
                "params.yaml at an existing file", []),
    "directory": ("data/raw", None, {}, "data/raw: is a directory, not a file; point data.train / data.test in params.yaml at a "
                  "data file inside it", []),
    "empty": ("data/raw/empty.jsonl", b"", {}, "data/raw/empty.jsonl: no usable rows (empty file); point data.train / data.test "
              "in params.yaml at a file with rows", []),
    "all_rejected": ("data/raw/bad.jsonl", b'{"id": "a", "prompt": "Q"}\n{oops\n', {}, "data/raw/bad.jsonl: no usable rows "
                     "(all 2 quarantined), missing_field: 1, unparseable: 1; fix the file, or data.format / data.columns in "
                     "params.yaml; each row's reason is in data/prepared/quarantine.jsonl", ["missing_field", "unparseable"]),
    "columns_match_nothing": ("data/raw/train.jsonl", GOOD, {"columns": {"prompt": "question"}}, "data/raw/train.jsonl: "
                              "data.columns maps prompt to 'question', but no row has that field (fields found: id, prompt, "
                              "response); fix data.columns in params.yaml; each row's reason is in data/prepared/quarantine.jsonl",
                              ["missing_field", "missing_field"]),
    "cp1252_without_encoding": ("data/raw/excel.csv", CP1252, {}, "data/raw/excel.csv: not UTF-8 (invalid bytes on lines 2, 3; it "
                                "looks like cp1252); save it as UTF-8, or set data.encoding: cp1252 in params.yaml; each row's "
                                "reason is in data/prepared/quarantine.jsonl", ["unparseable", "unparseable"]),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """dvc.yaml and params.yaml of the project (the tiny model), good test data, no run yet."""
    work = tmp_path_factory.mktemp("prepare-inputs")
    shutil.copy(ROOT / "dvc.yaml", work / "dvc.yaml")
    (work / "data" / "raw").mkdir(parents=True)
    (work / "data" / "raw" / "test.jsonl").write_bytes(GOOD)
    run_cmd([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], work)
    return work


@pytest.mark.parametrize("case", list(CASES))
def test_a_file_level_problem_stops_prepare_with_one_line_and_a_quarantine_file(project: Path, case: str) -> None:
    train, data, data_params, message, codes = CASES[case]
    shutil.rmtree(project / "data" / "prepared", ignore_errors=True)
    if data is not None:
        (project / train).write_bytes(data)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["model"]["name"] = "tiny"
    params["data"].update(train=train, **data_params)
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    proc = subprocess.run(CMD, cwd=project, env=command_env(), capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.splitlines()[-1] == f"prepare: {message}"  # one line, naming the file and the fix
    quarantine = project / "data" / "prepared" / "quarantine.jsonl"
    assert quarantine.is_file()  # in every case, empty when no row was read
    rows = read_lines(quarantine)
    assert sorted(q["code"] for q in rows) == codes
    assert all(q["split"] == "train" and q["source"] == train and q["reason"] for q in rows)
    json.dumps(rows, allow_nan=False)
