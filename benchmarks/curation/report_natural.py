"""RESULTS.md's sections on natural errors and defect checks (issue 27), generated from the development
measurements' stored numbers (`dev_growth_results.json`, `dev_defects_results.json`): never typed by hand."""

from __future__ import annotations

from typing import Any

COMPONENTS = ("consistency", "likelihood", "relevance", "length", "fluency", "reflection")
BAR = 0.75  # issue 27's target on the natural-error development sets
SOURCES = {"truthfulqa": "TruthfulQA-judged (false answers GPT-3-family models wrote)",
           "bbm": "BIG-Bench-Mistake (PaLM 2 reasoning traces with a wrong step)"}


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def growth_lines(growth: dict[str, Any], default_model: str) -> list[str]:
    """The detection curve by training rows, the fold settings compared, and other scorers."""
    if not growth.get(default_model):
        return []
    lines = ["", "## Natural errors: detection by training rows (development sets)", "",
             "Measured by `benchmarks/curation/dev_growth.py` on the development halves of `natural_sets.py` (20% of rows "
             "wrong, drawn per question; never a benchmark row), scored by the pipeline's own `score_rows` with every "
             "component; `auto` is the preset `score.weights: auto` picks for the rows (defect checks included). Folds by "
             "prompt (TruthfulQA's sets hold several answers per question). Each set records the version of the scoring code "
             "that scored it (`clearcurate.scoring.store.code_version`).", ""]
    for model, measured in growth.items():
        curve = measured["curve (auto preset and components by training rows)"]
        sets = measured["sets"]
        lines += [f"Scorer `{model}`:", "",
                  "| set | fold setting | rows | auto preset (AUROC) | " + " | ".join(COMPONENTS)
                  + " | model-written rows only (auto) | scoring code |",
                  "|---|---|---|---|" + "---|" * len(COMPONENTS) + "---|---|"]
        for key in curve:
            kind, variant = key.split(" (")[0], key.split(" (")[1].rstrip(")")
            for n in curve[key]:
                s = next(v for k, v in sets.items() if k.endswith(f"-{n} ({variant})") and k.startswith(f"dev-{kind}"))
                auto = s["preset_auroc"][s["auto_preset"]]
                only = s.get("model_written_only", {}).get("preset_auroc", {}).get(s["auto_preset"])
                lines.append(f"| {SOURCES[kind]} | {variant} | {n} | {_f(auto)} (`{s['auto_preset']}`) | "
                             + " | ".join(_f(s["component_auroc"].get(c)) for c in COMPONENTS) + f" | {_f(only)} | `{s['scoring_code']}` |")
        lines.append("")
    default = growth[default_model]
    if weighting := default.get("best weighting on the largest set of each source"):
        best = weighting["best_worst_case"]
        lines += [f"The best weighting of the stored components for the worst case over the largest set of each source "
                  f"(`{default_model}`): " + ", ".join(f"{w:g} {c}" for c, w in best["weights"].items() if w)
                  + f", AUROC {', '.join(f'{_f(a)} ({n})' for n, a in best['auroc'].items())}; each set alone reaches at most "
                  + ", ".join(f"{_f(v['auroc'])} ({n})" for n, v in weighting["each_set_best"].items()) + ".", ""]
    if traces := default.get("free_form preset with the reasoning traces"):
        how = {k: v for k, v in traces.items() if isinstance(v, dict) and "worst-case gain" in v}
        lines += [f"The `free_form` preset's choice rerun with the traces added to {', '.join(traces['sets'][:-1])} (rule fixed before "
                  f"the traces were read: {traces['rule']}): "
                  + "; ".join(f"{k}, the preset in use gives {_f(v['preset in use']['min_auroc'])} at worst and the best length-fair "
                              f"weighting ({weights_text(v['choice with the traces']['weights'])}) "
                              f"{_f(v['choice with the traces']['min_auroc'])}, {v['worst-case gain']:+.3f}" for k, v in how.items())
                  + f". The preset {'changes' if traces['change'] else 'stays'}.", ""]
    reached = [(model, name, s["preset_auroc"][s["auto_preset"]]) for model, m in growth.items() for name, s in m["sets"].items()
               if s["preset_auroc"][s["auto_preset"]] >= BAR]
    lines.append(f"Target AUROC ≥ {BAR} with the `auto` preset: "
                 + ("reached on " + ", ".join(f"{n} by `{m}` ({_f(a)})" for m, n, a in reached) if reached else "not reached on any set")
                 + ".")
    return lines


def weights_text(weights: dict[str, float]) -> str:
    """A weighting as RESULTS.md writes it: "0.6 consistency + 0.2 likelihood"."""
    return " + ".join(f"{w:g} {c}" for c, w in weights.items() if w)


def defect_lines(defects: dict[str, Any]) -> list[str]:
    """Each defect check's flags on clean development rows and on Alpaca rows, with the verdicts read."""
    if not defects:
        return []
    precision = defects["precision by check (read verdicts, all sets)"]
    sets = {k: v for k, v in defects.items() if isinstance(v, dict) and "rows" in v}
    lines = ["", "## Defect checks: what they flag in clean development data", "",
             "Measured by `benchmarks/curation/dev_defects.py` (no model); every flag was read and judged "
             "(`dev_defects_labels.json`). A flag on a \"clean\" row can be a real defect: the Dolly file cut long responses, "
             "GSM8K has arithmetic slips, GPT-3 answers run out of tokens.", "",
             "| rows | rows checked | rows flagged | flags | real defects | false flags |", "|---|---|---|---|---|---|"]
    for name, v in sets.items():
        flags = v["by_check"].values()
        lines.append(f"| {name} | {v['rows']:,} | {v['flagged_rows']} | {sum(f['flagged'] for f in flags)} | "
                     f"{sum(f.get('defect', 0) for f in flags)} | {sum(f.get('fine', 0) for f in flags)} |")
    lines += ["", "| check | flagged | precision |", "|---|---|---|"]
    lines += [f"| `{c}` | {p['flagged']} | {_f(p['precision'])} |" for c, p in precision.items()]
    return lines
