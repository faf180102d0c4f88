"""benchmarks/curation/dev_natural.py: the report on model-written errors, and the writer's refusal to invent labels."""

from __future__ import annotations

import sys

import pytest

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks" / "curation"))
import dev_natural


def test_report_scores_each_component_and_preset_against_the_labels():
    rows = [{"id": f"r{i}", "prompt": f"q{i}", "response": f"a{i}"} for i in range(20)]
    labels = {r["id"]: {"noisy": i < 5} for i, r in enumerate(rows)}
    scored = []
    for i, r in enumerate(rows):
        noisy = labels[r["id"]]["noisy"]
        # Consistency separates the model-written rows; fluency is inverted (the model likes its own text).
        scored.append({"id": r["id"], "consistency": 0.1 if noisy else 0.9, "likelihood": 0.5, "relevance": 0.5 + 0.01 * i,
                       "length": 0.5, "fluency": 0.9 if noisy else 0.2, "response_tokens": 10 + i,
                       **({"arithmetic": 0.5} if i == 0 else {})})
    out = dev_natural.report(rows, labels, scored, {"score": {}})
    assert out["rows"] == 20 and out["noisy"] == 5
    assert out["component_auroc"]["consistency"] == 1.0 and out["component_auroc"]["fluency"] == 0.0
    presets = out["preset_auroc (arithmetic check included)"]
    assert set(presets) == {"short", "free_form"} and presets["short"] > presets["free_form"]
    assert out["arithmetic_check_flags"] == {"noisy": 1, "clean": 0}


def test_a_writer_that_makes_no_wrong_answer_stops_the_run(tiny_lm):
    """The random tiny model never ends with `#### N`: it wrote no wrong solution, and says so."""
    from clearcurate.llm.lora import LoraTrainConfig

    rows = [{"id": f"g{i}", "prompt": f"Tom has {i} apples and buys 2 more. How many now?", "response": f"{i}+2={i + 2}\n#### {i + 2}"}
            for i in range(4)]
    labels = {r["id"]: {"noisy": i % 2 == 0, "clean_response": r["response"]} for i, r in enumerate(rows)}
    with pytest.raises(RuntimeError, match="the writer gave no wrong answer in 4 draws"):
        dev_natural.written(tiny_lm, rows, labels, dev_natural.SETS["dev-gsm8k-model-20"], LoraTrainConfig())


def test_a_span_the_paragraph_holds_is_a_wrong_answer_only_when_it_is_not_the_right_one():
    row = {"prompt": "Context: The bridge opened in 1932 and was widened in 1958.\n\nQuestion: When did the bridge open?"}
    assert dev_natural.wrong("1958", row, "1932")
    assert not dev_natural.wrong("1932", row, "1932") and not dev_natural.wrong("in 1975", row, "1932")
    assert dev_natural.wrong("Tom pays 3*4=12\n#### 12", {"prompt": "q"}, "3*5=15\n#### 15")
    assert not dev_natural.wrong("Tom pays 15", {"prompt": "q"}, "3*5=15\n#### 15")  # no final answer: not a worked solution
