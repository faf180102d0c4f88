"""The rules that pick params.yaml's defaults from development data (benchmarks/curation/dev.py)."""

from __future__ import annotations

import sys

import numpy as np

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks" / "curation"))
import dev


def _decisions(kind: str, n: int, conf: float, new: str, old: str) -> list[dict]:
    return [{"id": f"{kind}{i}", "confidence": conf, "new": new, "old": old} for i in range(n)]


def test_eta_is_the_lowest_that_meets_the_bar_else_the_lowest_that_damages_nothing():
    labels = {f"n{i}": {"noisy": True, "clean_response": "right"} for i in range(10)}
    labels |= {f"c{i}": {"noisy": False, "clean_response": "kept"} for i in range(10)}
    # Confident, right replacements of noisy rows (0.85); unsure, damaging ones of clean rows (0.55).
    good = _decisions("n", 10, 0.85, "right", "wrong") + _decisions("c", 10, 0.55, "other", "kept")
    table = {"set": {"agreement": dev.judge_table(good, labels)}}
    chosen = dev.select_eta(table)["agreement"]
    assert chosen["meets_the_bar"] and chosen["chosen_eta"] == 0.6
    # Nothing is ever right: the lowest eta that replaces no clean row is chosen instead.
    bad = _decisions("n", 10, 0.85, "still wrong", "wrong") + _decisions("c", 10, 0.65, "other", "kept")
    chosen = dev.select_eta({"set": {"agreement": dev.judge_table(bad, labels)}})["agreement"]
    assert not chosen["meets_the_bar"] and chosen["chosen_eta"] == 0.7


def test_weights_maximise_the_worst_informative_set_and_skip_sets_without_signal():
    rng = np.random.default_rng(0)

    def scored(signal: str, n: int = 60) -> tuple[list[int], list[dict]]:
        y = [1] * (n // 2) + [0] * (n // 2)
        rows = []
        for clean in y:
            comps = {c: float(rng.random()) for c in ("consistency", "likelihood", "relevance", "reflection")}
            if signal:
                comps[signal] = float(0.5 + 0.5 * rng.random()) if clean else float(0.5 * rng.random())
            rows.append(comps)
        return y, rows

    chosen = dev.select_weights({"a": scored("consistency"), "b": scored("likelihood"), "noise": scored("")})
    assert chosen["skipped (no component above 0.6)"] == ["noise"] and chosen["sets"] == ["a", "b"]
    best = chosen["chosen (best worst-case)"]
    # Each set is separated by one component only: the worst case needs both.
    assert best["weights"]["consistency"] > 0 and best["weights"]["likelihood"] > 0
    assert best["min_auroc"] == min(best["auroc"]["a"], best["auroc"]["b"]) > 0.75


def test_the_powered_dev_sets_are_built_like_the_powered_sets_from_rows_no_benchmark_uses():
    import specs

    from clearcurate.data.noisy_data import SOURCES
    from clearcurate.llm.lora import LoraTrainConfig

    used = set()
    for bench in specs.plan(quick=False):
        if bench.kind == "squad":
            train, test, _ = specs.build(bench, SOURCES)
            used |= {r["id"] for r in train + test}
    assert [s.noise for s in dev.DEV_SETS_POWERED] == [p.noise for p in specs.POWERED] == ["sentence", "plausible"]
    for spec, powered in zip(dev.DEV_SETS_POWERED, specs.POWERED, strict=True):
        rows, labels = dev.dev_rows(spec)
        assert len(rows) == 1000 and sum(label["noisy"] for label in labels.values()) == 200
        assert not {r["id"] for r in rows} & used
        assert (spec.max_steps, spec.max_context_words, spec.max_questions_per_paragraph) == (
            powered.max_steps, powered.max_context_words, powered.max_questions_per_paragraph)
        # The filtered model trains with the set's own budget; the 100-row sets keep params.yaml's.
        cfg = LoraTrainConfig(max_steps=16)
        assert dev.spec_train_config(spec, cfg).max_steps == 125
    assert dev.spec_train_config(dev.DEV_SETS[0], LoraTrainConfig(max_steps=16)) == LoraTrainConfig(max_steps=16)


def test_target_cost_finds_what_reaching_the_detection_bar_costs_elsewhere():
    """Length separates the large SQuAD-N-like set only; elsewhere it is noise. Reaching the bar there
    needs length weight, and that weighting's worst case over the small sets is reported below the best."""
    rng = np.random.default_rng(1)

    def scored(signal: dict[str, float], n: int = 80) -> tuple[list[int], list[dict]]:
        y = [1] * (n // 2) + [0] * (n // 2)
        rows = []
        for clean in y:
            comps = {c: float(rng.random()) for c in ("consistency", "likelihood", "relevance", "length")}
            comps["samples"] = []
            for c, strength in signal.items():  # clean rows score higher on c, by `strength`
                comps[c] = float(np.clip(comps[c] * (1 - strength) + strength * clean, 0, 0.999))
            rows.append(comps)
        return y, rows

    small = {"a": scored({"consistency": 0.5}), "b": scored({"consistency": 0.4, "likelihood": 0.4})}
    name, bar = dev.SQUAD_N_TARGET
    powered = {name: scored({"consistency": 0.2, "length": 0.9})}
    responses = {s: [""] * 80 for s in (*small, name)}
    cost = dev.target_cost(small, powered, sorted(small), responses, tokenizer=None)  # every record has its length
    reach, best = cost["best worst case reaching the bar"], cost["best worst case"]
    assert reach["auroc"][name] >= bar and reach["weights"]["length"] > 0
    assert reach["min_auroc"] < best["min_auroc"] and best["weights"]["length"] == 0
    assert cost["best on the set alone"]["auroc"][name] >= reach["auroc"][name]
    # Without the large set there is nothing to measure.
    assert dev.target_cost(small, {}, sorted(small), responses, tokenizer=None) == {}
