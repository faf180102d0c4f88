"""The README's "What the demo shows" is the committed metrics/ of `make demo`: every number it quotes is one the
pipeline wrote, so a `dvc repro` that moves a metric fails here until the README follows."""

from __future__ import annotations

import json

import pytest

from helpers import ROOT

SECTION = "### What the demo shows"


def _section() -> str:
    """The section as written, with the README's minus signs and bold marks plain."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0].replace("−", "-").replace("**", "")


def _metrics(stage: str) -> dict:
    return json.loads((ROOT / "metrics" / f"{stage}.json").read_text(encoding="utf-8"))


def _value(m: dict, key: str, decimals: int) -> str:
    return f"{m[key]:.{decimals}f}"


def _with_ci(m: dict, key: str, decimals: int, ci_decimals: int, sign: str = "", unit: str = "") -> str:
    """'21.1 [13.3, 30.0]', or a signed difference with its unit: '+3.3 EM [-3.3, +10.0]'."""
    low, high = m[key + "_ci_low"], m[key + "_ci_high"]
    return f"{m[key]:{sign}.{decimals}f}{' ' + unit if unit else ''} [{low:{sign}.{ci_decimals}f}, {high:{sign}.{ci_decimals}f}]"


@pytest.mark.parametrize("model", ["base", "baseline", "filtered", "corrected"])
def test_each_models_row_is_its_metrics(model):
    m = _metrics("evaluate")[model]
    row = next(line for line in _section().splitlines() if line.startswith(f"| {model} "))
    cells = [c.strip() for c in row.strip("|").split("|")][2:]
    em, f1, nll = cells
    assert em in (_value(m, "exact_match", 1), _with_ci(m, "exact_match", 1, 1)), (model, em)
    assert f1 in (_value(m, "f1", 1), _with_ci(m, "f1", 1, 1)), (model, f1)
    assert nll in (_value(m, "heldout_nll_per_token", 3), _with_ci(m, "heldout_nll_per_token", 3, 2)), (model, nll)


def test_detection_the_paired_differences_and_auto_correct_are_the_stages_numbers():
    text = " ".join(_section().split())
    evaluate, correct = _metrics("evaluate"), _metrics("correct")
    det, paired = evaluate["detection"], evaluate["filtered_vs_baseline"]
    assert f"AUROC {det['auroc']:.3f}" in text
    caught = round(det["filter_recall"] * det["noisy_rows"])
    assert f"the lowest-scored {round(det['noisy_rows'])} rows held {caught} of the {round(det['noisy_rows'])} noisy" in text
    em, f1 = _with_ci(paired, "exact_match", 1, 1, "+", "EM"), _with_ci(paired, "f1", 1, 1, "+", "F1")
    assert f"filtered minus baseline is {em} and {f1}" in text
    assert f"({_with_ci(paired, 'heldout_nll_per_token', 3, 3, '+', 'nats per token')})" in text
    assert f"reached {correct['max_confidence']:.2f} < η = {correct['eta']}" in text
    assert f"Auto-Correct replaced {'no' if correct['corrected'] == 0 else correct['corrected']} removed row" in text
