"""Plain helpers shared by the tests: paths, the planted secrets, running commands, building a pipeline repo.

Fixtures live in conftest.py; tests import these with `from helpers import ...` (pyproject's
`[tool.pytest.ini_options] pythonpath` puts tests/ on sys.path).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]  # the repository root


# Planted credentials: the pipeline must never copy environment secrets into logs or artifacts.
SECRETS = {
    "OPENAI_API_KEY": "sk-planted-0123456789abcdef",
    "AWS_SECRET_ACCESS_KEY": "planted/aws/SECRET+key0123456789",
    "AWS_ACCESS_KEY_ID": "AKIAPLANTED0123456",
}


def command_env(**extra_env: str) -> dict[str, str]:
    """The environment tests run commands in: the venv first on PATH, and the planted secrets."""
    return {
        **os.environ,
        **SECRETS,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CLEARCURATE_PROGRESS": "0",
        **extra_env,
    }


def run_cmd(cmd: list[str], cwd: Path, *, stdout_only: bool = False, **extra_env: str) -> str:
    """Run a command with the planted secrets in its environment; fail the test with its output if it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=command_env(**extra_env), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout if stdout_only else proc.stdout + proc.stderr


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def assert_same_records(got: list[dict], expected: list[dict], tol: float = 1e-6) -> None:
    """Equal record by record and field by field, floats within `tol` (a row's batch sets its padding, which moves
    float rounding); texts, outcomes and everything else exactly."""
    assert [r.get("id") for r in got] == [r.get("id") for r in expected]
    for g, e in zip(got, expected):
        assert set(g) == set(e), (e.get("id"), sorted(set(g) ^ set(e)))
        for key, value in e.items():
            if isinstance(value, float):
                assert abs(g[key] - value) <= tol, (e.get("id"), key, g[key], value)
            elif isinstance(value, dict):
                assert_same_records([g[key]], [value], tol)
            else:
                assert g[key] == value, (e.get("id"), key, g[key], value)


# The words `stopping_tiny_model` favours, and the logit each gets over the rest of the vocabulary (about 49k tokens
# near 0): the end of the answer about 0.2 a step, " Paris" the greedy choice, so sampled answers finish in a few tokens.
STOPPING_BIAS = {"<|im_end|>": 10.8, " Paris": 11.0, " yes": 10.5, " blue": 10.0, " seven": 9.5}


def stopping_tiny_model(out: Path) -> Path:
    """The `tiny` model made to end its answers: a model directory at `out` for `model.name`.

    The random `tiny` model spreads its probability over the whole vocabulary, so it never ends a sample within a
    test's budget: every Auto-Correct sample is cut off (nothing can be corrected) and every row's score ties.
    Here every input embedding gets a constant first coordinate (0.2, ten times the others' spread), which the final
    norm turns into a near-constant feature (about 4.2), and an untied output layer reads it as a bias on
    STOPPING_BIAS's tokens. Answers then end after a few tokens, share words (so samples can agree), and a row's
    likelihood falls with its response's length (so the long off-span answers of the demo's noisy rows score low).
    """
    import tempfile

    import torch

    from clearcurate.llm.models import convert_to_safetensors, load

    if (out / "config.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        model, tokenizer = load(convert_to_safetensors("tiny", Path(tmp) / "tiny", seed=0))
    head = torch.nn.Parameter(model.get_input_embeddings().weight.detach().clone())
    with torch.no_grad():
        model.get_input_embeddings().weight[:, 0] = 0.2
        head[:, 0] = 0.0
        for text, logit in STOPPING_BIAS.items():
            (token,) = tokenizer.encode(text, add_special_tokens=False)
            head[token, 0] = logit / 4.2
    model.config.tie_word_embeddings = False
    model.lm_head.weight = head
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def build_pipeline_repo(
    work: Path,
    params_update: Callable[[dict], None] | None = None,
    write_data: Callable[[Path], None] | None = None,
    **env: str,
) -> Path:
    """A git + DVC repo of the real pipeline on 12 rows with a tiny model that ends its answers
    (`stopping_tiny_model`, kept beside `work`), after a full `dvc repro`.

    The raw data includes rows without ids, a bad JSON line, a conflicting duplicate and two of the demo's
    noisy rows. `params_update` edits the test params before the run (e.g. another backend); `write_data`
    writes other data into the repo instead (its params then say where).
    """
    work.mkdir(parents=True, exist_ok=True)
    model = stopping_tiny_model(work.parent / f"{work.name}-model")
    for name in ("dvc.yaml", "stages", "src"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    (work / "data" / "labels").mkdir(parents=True)
    shutil.copy(ROOT / "data/labels/README.md", work / "data" / "labels" / "README.md")
    if write_data is not None:
        write_data(work)
    else:
        _write_demo_rows(work)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["model"].update(name=str(model), batch_size=4)
    params["score"].update(k=2, max_new_tokens=4, max_new_tokens_cap=8)
    params["train"].update(batch_size=4, max_length=256)
    params["correct"].update(max_new_tokens=4, eta=0.0)  # eta 0: any differing candidate is accepted
    params["evaluate"].update(max_new_tokens=4, max_new_tokens_cap=8)
    params["validate"].update(max_removed_share=0.9)  # the random tiny model's scores remove arbitrary rows
    if params_update is not None:
        params_update(params)
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    run_cmd(["git", "init", "-q"], work)
    run_cmd(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "init"], work)
    run_cmd(["dvc", "init", "-q"], work)
    (work / "repro.log").write_text(run_cmd(["dvc", "repro"], work, **env), encoding="utf-8")
    return work


def _write_demo_rows(work: Path) -> None:
    """12 demo rows (with the faults above; the last two are noisy), 4 test rows and the demo's noise labels."""
    raw = work / "data" / "raw"
    raw.mkdir(parents=True)
    demo = read_lines(ROOT / "data/raw/train.jsonl")
    train = [*demo[:10], demo[13], demo[17]]  # rows 13 and 17: off-span answers (data/labels/noise_labels.jsonl)
    for row in train[:3]:
        del row["id"]  # rows without an id get a content-hash id
    bad_lines = ["{not json", json.dumps({**train[5], "response": "a different answer"})]  # line 13, 14
    (raw / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train) + "\n".join(bad_lines) + "\n", encoding="utf-8")
    (raw / "test.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in read_lines(ROOT / "data/raw/test.jsonl")[:4]), encoding="utf-8"
    )
    shutil.copy(ROOT / "data/labels/noise_labels.jsonl", work / "data" / "labels" / "noise_labels.jsonl")


def placeholder_repo(work: Path) -> Path:
    """The real dvc.yaml, params and code with placeholder data and outputs, committed to a dvc.lock.

    Tests of what DVC decides (status, what reruns, what a failing stage leaves) need no trained
    model: `dvc commit` records the placeholders as if the stages had produced them.
    """
    work.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml", "src", "stages"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    params = yaml.safe_load((work / "params.yaml").read_text(encoding="utf-8"))
    stages = yaml.safe_load((work / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for stage in stages.values():
        entries = [str(d).split()[0] for d in stage["deps"]]
        for kind in ("outs", "metrics"):
            entries += [next(iter(o)) if isinstance(o, dict) else o for o in stage.get(kind, [])]
        for entry in entries:
            path = work / entry.replace("${data.train}", params["data"]["train"]).replace("${data.test}", params["data"]["test"])
            if path.exists():
                continue
            if path.suffix:  # a file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}\n", encoding="utf-8")
            else:  # a folder output or dep
                path.mkdir(parents=True)
                (path / "placeholder").write_text("x\n", encoding="utf-8")
    run_cmd([sys.executable, "-m", "dvc", "init", "--no-scm"], work)
    run_cmd([sys.executable, "-m", "dvc", "commit", "--force"], work)
    return work


def copy_repo(source: Path, dest: Path) -> Path:
    """A private copy of a pipeline repo (git history, DVC cache and outputs included)."""
    shutil.copytree(source, dest, symlinks=True)
    return dest


def with_removed_rows(source: Path, dest: Path) -> Path:
    """A private copy of a pipeline repo whose filter removes all but the best-scored rows, run through `correct`:
    a fixed threshold at the second-highest score, so Auto-Correct decides more rows than the default's 20%."""
    repo = copy_repo(source, dest)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    gamma = sorted(r["confidence"] for r in read_lines(repo / "data/scored/train.jsonl"))[-2]
    params["filter"].update(gamma=gamma, quantile=None)
    params["validate"]["max_removed_share"] = 0.95
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    run_cmd(["dvc", "repro", "correct"], repo)
    return repo


def local_openai_server(model_dir: Path, model_name: str, api_key: str, **settings):
    """The loopback OpenAI-compatible server over a prepared model: yields (state, base_url), then stops."""
    from clearcurate.llm.hf import LocalLM
    from clearcurate.llm.local_server import ServerState, serve
    from clearcurate.llm.models import load

    state = ServerState(LocalLM(*load(model_dir), batch_size=4, show_progress=False), model_name, api_key=api_key, **settings)
    http, _ = serve(state)
    yield state, f"http://127.0.0.1:{http.server_address[1]}/v1"
    http.shutdown()
