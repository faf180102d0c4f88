"""The whole pipeline on long, messy free-form rows, as real instruction data has them (issue 27),
scored and judged by a scorer apart from the model being trained.

Real Alpaca rows crashed `score`: a response longer than `train.max_length` pushed its whole prompt
out of the training window and the loss failed on a shape mismatch. These rows are written here
(Alpaca itself is CC BY-NC): essays and code far longer than the training window, lists, tables,
Unicode, Windows line ends, and the defects of real data (a refusal, a placeholder, a cut-off
answer, an instruction about an image, a placeholder input, an output that repeats its prompt).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from helpers import build_pipeline_repo, read_lines

_WHO, _DID, _WHAT = ("merchants", "sailors", "monks", "weavers", "engineers", "painters", "bankers"), \
    ("built", "rebuilt", "widened", "painted", "sold", "mapped"), ("harbour", "market", "school", "bridge", "tower", "library", "canal")
ESSAY = " ".join(f"In {1500 + 13 * i} the {_WHO[i % 7]} {_DID[i % 6]} a {_WHAT[i % 5]} by the {_WHAT[(i + 3) % 7]}, and {i + 2} "
                 f"families moved into its {_WHAT[(i + 1) % 7]} quarter." for i in range(50))  # about 1,000 tokens, no sentence twice
CODE = ("Here is the program:\n```python\n" + "\n".join(f"def step_{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(60))
        + "```\nIt runs in linear time.")
CLEAN = [
    ("Write an essay about the history of a port city.", "", ESSAY),
    ("Write a Python module with sixty small functions.", "", CODE),
    ("List the planets of the solar system.", "",
     "1. Mercury\r\n2. Venus\r\n3. Earth\r\n4. Mars\r\n5. Jupiter\r\n6. Saturn\r\n7. Uranus\r\n8. Neptune"),
    ("Make a table of three capitals.", "",
     "| country | capital |\n|---|---|\n| France | Paris |\n| Japan | Tōkyō 東京 |\n| Peru | Lima |"),
    ("Translate to German.", "Good morning, my dear friend.", "Guten Morgen, mein lieber Freund."),
    ("What is 12 * 12?", "", "12 * 12 = 144, so the answer is 144."),
    ("Summarise the text in one sentence.", "\t" + " ".join(["The committee met on Monday and agreed on the budget."] * 30),
     "The committee agreed on the budget on Monday."),
    ("Name a fruit that is yellow.", "", "A banana 🍌."),
    ("Give two synonyms for happy.", "", "Joyful and content."),
    ("Explain photosynthesis briefly.", "", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
]
DEFECTIVE = {  # instruction, input, output -> the check that must remove it
    "refusal": ("What is your favourite colour?", "", "As an AI language model, I do not have personal preferences."),
    "placeholder": ("Render a 3D model of a house.", "", "<nooutput> This type of instruction cannot be fulfilled by a GPT model."),
    "truncated": ("Explain how vaccines work.", "", "Vaccines train the immune system by showing it a harmless piece of a pathogen, "
                  "so that when the real pathogen arrives the body is ready to fight it off quickly and the"),
    "needs_input": ("Describe the attached image in one sentence.", "", "A quiet lake under a pink sky."),
    "input_placeholder": ("Tell a story about a girl who travels to the moon.", "Noinput",
                          "Once upon a time, Sara built a rocket and flew to the moon."),
    "echo": ("Give three tips for staying healthy.", "", "Give three tips for staying healthy."),
}


def _write(work: Path) -> None:
    raw = work / "data" / "raw"
    raw.mkdir(parents=True)
    train = [{"instruction": i, "input": x, "output": o} for i, x, o in [*CLEAN, *DEFECTIVE.values()]]
    train.append({"instruction": "Standardize the date to ISO 8601.", "input": "July 26th, 2021", "output": ""})  # empty: quarantined
    test = [{"instruction": "Write a long story about a lighthouse keeper.", "input": "", "output": ESSAY},
            {"instruction": "Name a colour of the sky.", "input": "", "output": "Blue."},
            {"instruction": "Write a function that adds two numbers.", "input": "", "output": CODE}]
    (raw / "train.json").write_text(json.dumps(train, ensure_ascii=False, indent=1), encoding="utf-8")
    (raw / "test.json").write_text(json.dumps(test, ensure_ascii=False, indent=1), encoding="utf-8")


def _params(params: dict) -> None:
    params["data"].update(train="data/raw/train.json", test="data/raw/test.json", format="alpaca")
    params["evaluate"]["noise_labels"] = None
    params["train"].update(max_length=64)  # the essay and the code are many times longer than the window
    params["correct"].update(eta=0.0, judge="pairwise")  # every differing candidate may replace; the scorer judges
    params["scorer"].update(name="tiny", seed=1)  # a scorer apart from the student: other weights


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return build_pipeline_repo(tmp_path_factory.mktemp("messy"), _params, _write)


def test_long_messy_rows_go_through_every_stage_and_every_row_has_one_outcome(repo: Path):
    rows = json.loads((repo / "data/raw/train.json").read_text(encoding="utf-8"))
    outcomes = read_lines(repo / "data/curated/outcomes.jsonl")
    assert len(outcomes) == len(rows) and len({o["id"] for o in outcomes}) == len(rows)
    assert all(o["reason"] for o in outcomes)
    assert [o["code"] for o in outcomes if o["outcome"] == "quarantined"] == ["empty_field"]  # the empty output
    train_log = json.loads((repo / "models/filtered/train_log.json").read_text())
    losses = [h["loss"] for h in train_log["history"] if "loss" in h]  # one a step (logging_steps=1)
    assert train_log["steps"] > 0 and len(losses) == train_log["steps"] and all(map(math.isfinite, losses))  # no NaN or inf
    metrics = json.loads((repo / "metrics/evaluate.json").read_text())
    assert {"base", "baseline", "filtered", "corrected"} <= metrics.keys()


def test_every_defect_is_removed_with_its_check_named_and_prompt_faults_are_not_rewritten(repo: Path):
    prepared = {r["prompt"].split("\n\n")[0]: r["id"] for r in read_lines(repo / "data/prepared/train.jsonl")}
    scored = {r["id"]: r for r in read_lines(repo / "data/scored/train.jsonl")}
    removed = {r["id"]: r for r in read_lines(repo / "data/filtered/removed.jsonl")}
    ledger = {o["id"]: o for o in read_lines(repo / "data/curated/outcomes.jsonl")}
    for check, (instruction, _, _) in DEFECTIVE.items():
        row_id = prepared[instruction]
        assert check in [d["check"] for d in scored[row_id]["defects"]], check
        assert row_id in removed and f"defect {check}:" in removed[row_id]["reason"], check
        assert f"defect {check}:" in ledger[row_id]["reason"], check
    for check in ("needs_input", "input_placeholder"):
        row_id = prepared[DEFECTIVE[check][0]]
        assert ledger[row_id]["outcome"] == "removed" and "prompt is at fault" in ledger[row_id]["reason"]
    score_metrics = json.loads((repo / "metrics/score.json").read_text())
    assert score_metrics["rows_with_defects"] >= len(DEFECTIVE) and set(DEFECTIVE) <= set(score_metrics["defects"])
    filter_metrics = json.loads((repo / "metrics/filter.json").read_text())
    assert filter_metrics["removed_for_defects"] >= len(DEFECTIVE) and set(DEFECTIVE) <= set(filter_metrics["defects"])
    clean_ids = [prepared[i] for i, _, _ in CLEAN]
    assert not any(scored[i]["defects"] for i in clean_ids)  # long, coded, tabled, translated and Unicode rows are no defects
    corrected = read_lines(repo / "data/curated/changes.jsonl")
    assert all(c["id"] not in {prepared[DEFECTIVE[k][0]] for k in ("needs_input", "input_placeholder")} for c in corrected)


def test_a_scorer_apart_from_the_student_scores_and_judges(repo: Path):
    from clearcurate.cache import model_fingerprint

    assert (repo / "models/scorer/config.json").exists()
    assert model_fingerprint(repo / "models/scorer") != model_fingerprint(repo / "models/base")
    assert json.loads((repo / "metrics/score.json").read_text())["scorer"] == "tiny"
    decisions = [d for d in read_lines(repo / "data/curated/decisions.jsonl") if "judge_preference" in d]
    assert decisions and all(0.0 <= d["judge_preference"] <= 1.0 for d in decisions)  # the pairwise judge ran
