"""The natural-error development sets (natural_sets.py), the growth curve's script (dev_growth.py) on the tiny
model, and the defect checks' labels (dev_defects.py): every flag on the bundled development rows was read."""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest
import yaml

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks" / "curation"))
import natural_sets


@pytest.mark.parametrize("kind", natural_sets.KINDS)
def test_dev_and_test_parts_share_no_question_and_every_row_is_labelled(kind):
    dev, test = (natural_sets.candidates(kind, part) for part in natural_sets.PARTS)
    assert dev and test and not set(dev) & set(test)
    assert all(isinstance(r["noisy"], bool) and r["prompt"] for group in dev.values() for r in group)
    if kind == "truthfulqa":  # natural errors are false answers a model wrote; evasive non-answers are left out
        rows = [r for group in dev.values() for r in group]
        assert all(r["writer"] == "model" for r in rows if r["noisy"])
        assert not any(r["response"].strip().lower().startswith("i have no comment") for r in rows)


@pytest.mark.parametrize(("kind", "n"), [("truthfulqa", 300), ("bbm", 100)])
def test_a_set_is_seeded_has_its_noise_rate_within_each_task_and_spreads_over_questions(kind, n):
    spec = natural_sets.NaturalSpec(f"t-{kind}", kind, n)
    rows, labels = natural_sets.build(spec)
    assert (rows, labels) == natural_sets.build(spec)  # the same rows, in the same order
    assert len(rows) == n == len(labels) and len({r["id"] for r in rows}) == n
    assert sum(lab["noisy"] for lab in labels.values()) == pytest.approx(0.2 * n, abs=len({r["task"] for r in rows}))
    by_task = Counter((r["task"], labels[r["id"]]["noisy"]) for r in rows)
    for task in {r["task"] for r in rows}:
        total = by_task[(task, True)] + by_task[(task, False)]
        assert abs(by_task[(task, True)] - 0.2 * total) <= 1  # the task mix does not tell noisy rows apart
    assert len({r["prompt"] for r in rows}) == n  # small sets: one row per question
    assert all(any(ch.isalnum() for ch in r["response"]) for r in rows)  # TruthfulQA's one empty "truthful" answer is never drawn


def test_a_set_larger_than_its_part_is_an_error():
    with pytest.raises(ValueError, match="rows wanted; the dev part holds"):
        natural_sets.build(natural_sets.NaturalSpec("too-big", "bbm", natural_sets.largest("bbm") + 1))


def test_the_growth_script_scores_a_set_with_the_pipelines_code_and_reports_it(tiny_model_dir, tiny_lm, tmp_path):
    import dev_growth

    from clearcurate.cache import model_fingerprint

    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["model"]["name"] = "tiny"
    params["score"].update(k=2, max_new_tokens=4, max_new_tokens_cap=8)
    params["train"].update(batch_size=4, max_length=128)
    spec = natural_sets.NaturalSpec("t-truthfulqa-20", "truthfulqa", 20)
    store, cache = tmp_path / "growth", tmp_path / "cache"
    dev_growth.run(spec, "crossfit-2x1", tiny_lm, params, model_fingerprint(tiny_model_dir), store, cache)
    assert len(list(store.iterdir())) == 1
    dev_growth.run(spec, "crossfit-2x1", None, params, "", store, cache)  # stored: no model work (the model is not even given)
    first = dev_growth.load_compact(spec, "crossfit-2x1", params, store)
    dev_growth.run(spec, "crossfit-2x1", tiny_lm, params, model_fingerprint(tiny_model_dir), store, cache, refresh=True)
    assert len(list(store.iterdir())) == 1  # a refresh replaces the stored rows, from the scoring cache
    assert dev_growth.load_compact(spec, "crossfit-2x1", params, store)["rows"] == first["rows"]
    assert {"response_logprob", "response_logprob_alone", "response_logprob_base"} <= set(first["rows"][0])
    out = dev_growth.report(params, [spec], store)["tiny"]
    measured = out["sets"]["t-truthfulqa-20 (crossfit-2x1)"]
    assert measured["rows"] == 20 and measured["noisy"] == 4 and measured["auto_preset"] == "short"
    assert set(measured["component_auroc"]) == set(dev_growth.COMPONENTS) and measured["current_code"]
    assert out["curve (auto preset and components by training rows)"]["truthfulqa (crossfit-2x1)"]["20"]["auto preset"] is not None


def test_every_flag_on_the_bundled_development_rows_was_read():
    """A changed check that flags new rows fails here until a person has read and judged them (dev_defects_labels.json)."""
    import dev_defects
    labels = json.loads(dev_defects.LABELS.read_text(encoding="utf-8"))
    measured = dev_defects.measure(dev_defects.clean_sets(), {k: v["verdict"] for k, v in labels.items()}, show=False)
    unread = {name: {c: v.get("unread", 0) for c, v in m["by_check"].items() if v.get("unread")}
              for name, m in measured.items() if isinstance(m, dict) and "by_check" in m}
    assert not any(unread.values()), unread
    precision = measured["precision by check (read verdicts, all sets)"]
    assert all(p["precision"] is None or p["precision"] >= 0.9 for p in precision.values()), precision


def _section(page: str, heading: str) -> str:
    text = (ROOT / page).read_text(encoding="utf-8")
    body = text.split(f"\n{heading}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def _stored(name: str = "results.json"):
    return json.loads((ROOT / "benchmarks" / "curation" / name).read_text(encoding="utf-8"))


def _nodes(value, path: str = ""):
    """Every value in a stored result with its key path ("/datasets/x/detection/auroc"), per-question scores left out."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "per_question":
                yield from _nodes(v, f"{path}/{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _nodes(v, path)


def _stored_aurocs(value) -> set[str]:
    """Every stored AUROC (a float under a key that names one), to three decimals. Not every float: results.json's
    per-question scores alone hold most three-decimal values, so a typed number would almost always be found."""
    return {f"{v:.3f}" for path, v in _nodes(value) if isinstance(v, float) and "auroc" in path.lower()}


@pytest.mark.parametrize(("page", "heading"), [
    ("docs/curation.md", "## Natural errors and how detection grows with the data"),
    ("benchmarks/curation/DEVELOPMENT.md", "## Natural errors by training rows (`dev_growth.py`)"),
    ("README.md", "## Does curation work? The benchmark"),
    ("docs/benchmark.md", "## Results"),
])
def test_every_auroc_the_docs_quote_is_a_stored_one(page, heading):
    """The prose on detection is checked against the stored results: an AUROC typed by hand, or one
    left behind when the results change, fails here."""
    import re

    stored = set()
    for name in ("dev_growth_results.json", "dev_natural_results.json", "dev_defects_results.json", "dev_verify_results.json",
                 "dev_freeform_results.json", "dev_lengths_results.json", "results.json"):
        stored |= _stored_aurocs(_stored(name))
    # not a spread or a signed difference (the tests below check those)
    written = set(re.findall(r"(?<![\d.+-])(?<!± )[01]\.\d{3}(?!\d)", _section(page, heading).replace("−", "-")))
    assert written and not written - stored, sorted(written - stored)


def _stored_intervals(value) -> set[tuple[str, str]]:
    """Every stored CI (a dict with low and high), as the prose writes it: one decimal (EM points) or three (nats)."""
    return {(f"{v['low']:+.{d}f}", f"{v['high']:+.{d}f}") for _, v in _nodes(value)
            if isinstance(v, dict) and isinstance(v.get("low"), float) and isinstance(v.get("high"), float) for d in (1, 3)}


@pytest.mark.parametrize(("page", "heading"), [
    ("README.md", "## Does curation work? The benchmark"),
    ("docs/benchmark.md", "## Results"),
])
def test_every_interval_the_docs_quote_is_a_stored_one(page, heading):
    """A CI quoted in the README or docs/benchmark.md ("+5.4 [+1.6, +9.4]") is one results.json holds: a
    number typed by hand, or left behind when a cell is rerun or the statistics change, fails here."""
    import re

    stored = _stored_intervals(_stored())
    text = _section(page, heading).replace("−", "-")
    written = set(re.findall(r"\[(?:[\d.]+% CI )?([+-]\d+\.\d+), ([+-]\d+\.\d+)\]", text))
    assert written and not written - stored, sorted(written - stored)


@pytest.mark.parametrize(("page", "heading"), [
    ("README.md", "## Does curation work? The benchmark"),
    ("docs/benchmark.md", "## Results"),
])
def test_no_verdict_is_quoted_beside_a_stale_comparison(page, heading):
    """RESULTS.md draws no verdict from a result of other code than today's (a stale cell); neither may the
    prose: a line that quotes a stale comparison's CI says neither "better" nor "worse"."""
    import re

    results = _stored()
    stale = set()
    for res in results["datasets"].values():
        for comparison in (*res.get("paired", {}).values(), *res.get("primary", {}).values(), res.get("correct_vs_filter") or {}):
            if comparison.get("stale"):
                stale |= {(f"{m['low']:+.{d}f}", f"{m['high']:+.{d}f}") for m in comparison.values()
                          if isinstance(m, dict) and "low" in m for d in (1, 3)}
    lines = _section(page, heading).replace("−", "-").splitlines()
    quoting = [line for line in lines if set(re.findall(r"\[(?:[\d.]+% CI )?([+-]\d+\.\d+), ([+-]\d+\.\d+)\]", line)) & stale]
    assert all(not re.search(r"\b(better|worse)\b", line) for line in quoting), [q for q in quoting if re.search(r"better|worse", q)]


@pytest.mark.parametrize(("page", "heading"), [
    ("README.md", "## Does curation work? The benchmark"),
    ("docs/benchmark.md", "## Results"),
])
def test_the_stale_share_the_docs_quote_is_the_reports(page, heading):
    """"stale (260 of 260)" in the prose is results.json's count of the test sets' stale results and of all their
    results, and "N earlier test sets are retired" the count of retired ones: cells that stop being found (a
    preset change moves the rows a filter keeps), a rerun or a retirement change them, and then the prose must
    change with it."""
    import re

    from manifest import RETIRED_ROLE

    datasets = _stored()["datasets"].values()
    codes = [d["code"] for d in datasets if d.get("role") != RETIRED_ROLE]
    stored = (sum(c["stale"] for c in codes), sum(c["results"] for c in codes))
    section = " ".join(_section(page, heading).replace("**", "").split())
    written = {(int(a), int(b)) for a, b in re.findall(r"stale \((\d+) of (\d+)", section)}
    assert written == {stored}, (written, stored)
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
    number = lambda n: words.index(n.lower()) if n.lower() in words else int(n)  # noqa: E731
    # "all but ten of 2026-12-05's are stale", "all but the 22 made since 2026-12-05 are stale"
    current = re.findall(r"but (?:the )?(\w+) (?:of 2026-\d\d-\d\d's|made since 2026-\d\d-\d\d) (?:is|are) stale", section)
    assert (current or stored[0] in (0, stored[1])) and all(number(n) == stored[1] - stored[0] for n in current), (current, stored)
    retired = re.findall(r"(\w+) earlier test sets are retired", section)
    assert retired and all(number(n) == sum(d.get("role") == RETIRED_ROLE for d in datasets) for n in retired), retired


def _stored_spreads_and_differences() -> tuple[set[tuple[str, str]], set[str]]:
    """Each method's "mean ± sd" over seeds of every test metric, and every stored paired difference, as the prose
    and RESULTS.md write them: one decimal for percentages (EM points), three for nats."""
    import numpy as np

    from clearcurate.core.evaluation import HELDOUT

    results = _stored()
    spreads: set[tuple[str, str]] = set()
    for res in results["datasets"].values():
        for cells in (res.get("downstream") or {}).values():
            for metric, d in (("exact_match", 1), ("f1", 1), ("token_f1_vs_reference", 1), (HELDOUT, 3)):
                if len(values := [c[metric] for c in cells if c.get(metric) is not None]) > 1:
                    spreads.add((f"{np.mean(values):.{d}f}", f"{np.std(values, ddof=1):.{d}f}"))
    differences = {f"{v['diff']:+.{3 if path.endswith('/' + HELDOUT) else 1}f}" for path, v in _nodes(results)
                   if isinstance(v, dict) and isinstance(v.get("diff"), float)}
    return spreads, differences


@pytest.mark.parametrize(("page", "heading"), [
    ("README.md", "## Does curation work? The benchmark"),
    ("docs/benchmark.md", "## Results"),
])
def test_every_spread_and_difference_the_docs_quote_is_a_stored_one(page, heading):
    """A test score quoted as "40.7 ± 2.2" (a loss as "2.344 ± 0.004") is a method's mean ± sd over its stored seeds,
    and a signed difference quoted outside a CI ("+8.3 and +5.2") is a stored paired difference: a rerun that moves
    either fails here. A one-decimal difference can match another stored one by chance (about 3 in 10 of the values
    within 10 EM points are stored somewhere); the spreads and the CIs (the test above) are matched as pairs."""
    import re

    spreads, differences = _stored_spreads_and_differences()
    text = _section(page, heading).replace("−", "-")
    written = set(re.findall(r"(\d+\.\d+) ± (\d+\.\d+)", text))
    assert written and not written - spreads, sorted(written - spreads)
    signed = set(re.findall(r"(?<![\w.])([+-]\d+\.\d+)(?!\d)", re.sub(r"\[[^\]]*\]", "", text)))  # CIs: the test above
    assert signed and not signed - differences, sorted(signed - differences)


@pytest.mark.parametrize(("page", "heading"), [
    ("README.md", "## Does curation work? The benchmark"),
    ("docs/benchmark.md", "## Results"),
])
def test_what_the_docs_say_of_auto_correct_is_stored(page, heading):
    """Issue 29 found the prose calling Auto-Correct "right about half the time" where the cells said 0.72: every
    replacement count, precision and share of repaired noisy or damaged clean rows quoted is one summed over seeds."""
    import re

    from report import _sum_correction

    results = _stored()
    sums = [_sum_correction(rows) for res in results["datasets"].values() for rows in (res.get("correction") or {}).values() if rows]
    stored = {"replaced": {str(s["replaced"]) for s in sums},
              "precision": {f"{s['correction_precision']:.2f}" for s in sums if s["correction_precision"] is not None},
              "repaired": {f"{100 * s['replaced_noisy_share']:.0f}" for s in sums if s["replaced_noisy_share"] is not None},
              "damaged": {f"{100 * s['clean_damaged_share']:.0f}" for s in sums if s["clean_damaged_share"] is not None}}
    text = " ".join(_section(page, heading).split())
    written = {"replaced": {n for pair in re.findall(r"Auto-Correct replaced (\d+) and (\d+)", text) for n in pair},
               "precision": set(re.findall(r"precision (0\.\d\d)\b", text)),
               "repaired": {n for pair in re.findall(r"repair\w* (?:only )?(\d+)-(\d+)% of the noisy", text) for n in pair},
               "damaged": {n for pair in re.findall(r"(\d+)-(\d+)% of clean rows", text) for n in pair}}
    assert any(written.values())
    assert all(written[k] <= stored[k] for k in written), {k: sorted(written[k] - stored[k]) for k in written}


def test_what_the_docs_say_of_the_auto_threshold_is_stored():
    """docs/benchmark.md's summary of `quantile: auto` (how many sets it estimates within 10 points of the true noisy
    share, and the range elsewhere) is counted from results.json's estimates: it said "1 of 9" for a day after a
    preset change moved GSM8K-N's estimate from 0% to 17%."""
    import re

    results = _stored()
    estimates = [(round(100 * r["auto_estimated_noise_share"]), round(100 * r["spec"]["noise_rate"]))
                 for r in results["datasets"].values() if r.get("auto_estimated_noise_share") is not None]
    close = [e for e, true in estimates if abs(e - true) <= 10]
    elsewhere = sorted(e for e, true in estimates if abs(e - true) > 10 and e > 0)
    text = " ".join(_section("docs/benchmark.md", "## Results").split())
    said = re.search(r"within ±10 points of the true noisy share on (\d+) of (\d+) sets \(([^)]*)\); elsewhere it gives 0% or "
                     r"(\d+)-(\d+)%", text)
    assert said, "the sentence on quantile: auto is gone or reworded: update this test with it"
    assert (int(said[1]), int(said[2])) == (len(close), len(estimates))
    assert sorted(int(n) for n in re.findall(r": (\d+)%", said[3])) == sorted(close)  # "(GSM8K-N 20%: 17%, ...)"
    assert (int(said[4]), int(said[5])) == (elsewhere[0], elsewhere[-1])
