"""benchmarks/curation/dev_lengths.py: removals by length band as the pipeline combines and filters, and its decision rule."""

from __future__ import annotations

import sys

import pytest
import yaml

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks" / "curation"))
import dev_lengths


def _rows() -> tuple[list[dict], list[bool], list[str]]:
    """40 short clean answers whose per-token components vary widely, 80 long ones that vary little, and
    20 long defective rows a little below the long ones."""
    recs, noisy, responses = [], [], []
    for i in range(140):
        short, bad = i < 40, i >= 120
        wobble = ((i * 37) % 11 - 5) / 5
        value = 0.5 + (0.3 if short else 0.03) * wobble - (0.08 if bad else 0.0)
        recs.append({"id": f"r{i}", "relevance": value, "fluency": value, "response_tokens": 3 if short else 120})
        noisy.append(bad)
        responses.append("Paris" if short else " ".join(["word"] * 90))
    return recs, noisy, responses


def test_spread_keeps_short_correct_answers_out_of_the_removals_and_the_rule_adopts_it():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    recs, noisy, responses = _rows()
    off = dev_lengths.measure(recs, noisy, responses, params, spread=False)
    on = dev_lengths.measure(recs, noisy, responses, params, spread=True)
    short_off, short_on = off["bands (quantile 0.2)"]["<= 8 words"], on["bands (quantile 0.2)"]["<= 8 words"]
    assert short_off["rows"] == 40 and short_off["noisy_share"] == 0.0
    assert short_off["clean_removed"] > 10 and short_on["clean_removed"] < short_off["clean_removed"]
    assert on["auroc"] > off["auroc"]
    measured = {dev_lengths.NAME: {"noisy": 20, "spread off": off, "spread on": on}}
    assert dev_lengths.decide(measured)["adopt length_spread"] is True
    worse = {**on, "auroc": off["auroc"] - 0.05}  # a fairer split that costs detection is refused
    assert dev_lengths.decide({dev_lengths.NAME: {"noisy": 20, "spread off": off, "spread on": worse}})["adopt length_spread"] is False
    assert dev_lengths.decide({})["adopt length_spread"] is None


def test_length_rule_candidates_swap_the_pipelines_line_and_put_it_back():
    from clearcurate.core import confidence

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    recs, noisy, responses = _rows()
    kept = confidence._against_length_line
    in_use = dev_lengths.measure(recs, noisy, responses, params)
    with dev_lengths.length_rule(dev_lengths.CANDIDATES["least-squares line (in use)"]):
        assert dev_lengths.measure(recs, noisy, responses, params) == in_use
    with dev_lengths.length_rule(dev_lengths.shrunk(0)):  # no shrinkage: the line in use
        assert dev_lengths.measure(recs, noisy, responses, params)["auroc"] == pytest.approx(in_use["auroc"])
    with dev_lengths.length_rule(dev_lengths.shrunk(20)):  # 3-token rows pulled toward their line: fewer removed
        shrunk = dev_lengths.measure(recs, noisy, responses, params)
    assert confidence._against_length_line is kept
    short = "<= 8 words"
    assert shrunk["bands (quantile 0.2)"][short]["clean_removed"] < in_use["bands (quantile 0.2)"][short]["clean_removed"]
