"""Every reported number of the benchmark that changed between two results.json files, and what made each.

Issue 29 asks that a rerun's closing note list every number that changed and why. Written by hand over ~270 cells
that list drifts from the stored numbers; this script makes it from them. For each set it gives the numbers RESULTS.md
is built from (the thresholds and `quantile: auto`'s estimate, detection per scorer, the base model, each method's
mean over seeds, the paired and primary comparisons, Auto-Correct's counts) before and after, with what explains a
change: the code fingerprint, whether the cells were stale, and the machines that did the work.

    .venv/bin/python benchmarks/curation/changes.py --before f69e92b            # JSON (a git revision or a file)
    .venv/bin/python benchmarks/curation/changes.py --before f69e92b --markdown  # a table for a closing note
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from report import _sum_correction

from clearcurate.core.evaluation import HELDOUT

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
METRICS = ("exact_match", "f1", HELDOUT, "token_f1_vs_reference", "heldout_perplexity")
COMPARISON_FIELDS = ("diff", "low", "high", "verdict")
CORRECTION_FIELDS = ("given", "replaced", "replaced_right", "correction_precision", "noisy_repaired", "clean_damaged")

log = logging.getLogger("benchmark.changes")

Number = float | int | str | dict[str, Any] | None


def load(ref: str) -> dict[str, Any]:
    """A results.json by path, or as committed at a git revision (`f69e92b`, `HEAD~3`, a tag)."""
    path = Path(ref)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    rel = RESULTS.relative_to(HERE.parents[1]).as_posix()
    shown = subprocess.run(["git", "show", f"{ref}:{rel}"], cwd=HERE, capture_output=True, text=True)
    if shown.returncode != 0:
        raise SystemExit(f"changes.py: {ref!r} is neither a file nor a git revision with {rel}: {shown.stderr.strip()}")
    return json.loads(shown.stdout)


def _comparison(prefix: str, comparison: dict[str, Any]) -> dict[str, tuple[Number, bool]]:
    stale = bool(comparison.get("stale"))
    return {f"{prefix} {metric}": ({f: values.get(f) for f in COMPARISON_FIELDS}, stale)
            for metric, values in comparison.items() if isinstance(values, dict)}


def numbers(res: dict[str, Any]) -> dict[str, tuple[Number, bool]]:
    """One set's reported numbers by name, each with whether the cell behind it is stale."""
    out: dict[str, tuple[Number, bool]] = {}
    scores_stale = bool(res.get("code", {}).get("scores_stale"))  # thresholds and the auto estimate follow the scores
    for method, gamma in (res.get("gammas") or {}).items():
        out[f"gamma {method}"] = (gamma, scores_stale)
    if res.get("auto_estimated_noise_share") is not None:
        out["quantile: auto's estimated noisy share"] = (res["auto_estimated_noise_share"], scores_stale)
    for d in res.get("detection", []):
        for field in ("auroc", "precision", "recall"):
            out[f"detection {d['scorer']} {field}"] = (d.get(field), bool(d.get("stale")))
    base = res.get("base") or {}
    out.update({f"base {m}": (base[m], bool(base.get("stale"))) for m in METRICS if m in base})
    for method, cells in (res.get("downstream") or {}).items():
        if not cells:
            continue
        stale = any(c.get("stale") for c in cells)
        out[f"{method} seeds"] = (len(cells), stale)
        for m in METRICS:
            values = [c[m] for c in cells if c.get(m) is not None]
            if values:
                out[f"{method} {m} mean"] = (float(np.mean(values)), stale)
    for method, comparison in (res.get("paired") or {}).items():
        out.update(_comparison(f"{method} vs none", comparison))
    if res.get("correct_vs_filter"):
        out.update(_comparison("clear_correct vs clear_filter (95%)", res["correct_vs_filter"]))
    for key, comparison in (res.get("primary") or {}).items():
        out.update(_comparison(f"primary {key}", comparison))
    for judge, rows in (res.get("correction") or {}).items():
        if rows:
            summed = _sum_correction(rows)
            stale = any(r.get("stale") for r in rows)
            out.update({f"Auto-Correct ({judge}) {k}": (summed[k], stale) for k in CORRECTION_FIELDS})
    return out


def _same(a: Number, a_stale: bool, b: Number, b_stale: bool) -> bool:
    """The same value (floats to rounding) and the same staleness."""
    return a_stale == b_stale and _equal(a, b)


def _equal(a: Number, b: Number) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _made_by(res: dict[str, Any]) -> dict[str, Any]:
    """What explains a set's numbers: its code fingerprint, how many of its results are stale, and its machines."""
    return {**{k: res.get("code", {}).get(k) for k in ("fingerprint", "results", "stale")}, "machine": res.get("machine")}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per set: what explains the change (code, staleness, machines) and every number that moved, appeared or went."""
    sets: dict[str, Any] = {}
    old_sets, new_sets = before.get("datasets", {}), after.get("datasets", {})
    for name in sorted({*old_sets, *new_sets}, key=lambda n: (n not in new_sets, n)):
        old, new = old_sets.get(name, {}), new_sets.get(name, {})
        a, b = numbers(old), numbers(new)
        moved = [{"number": k, "before": a.get(k, (None, False))[0], "after": b.get(k, (None, False))[0],
                  "stale_before": a[k][1] if k in a else None, "stale_after": b[k][1] if k in b else None}
                 for k in [*a, *(k for k in b if k not in a)] if k not in a or k not in b or not _same(*a[k], *b[k])]
        if not moved:
            continue
        sets[name] = {"status": "added" if not old else "removed" if not new else "changed",
                      "before": _made_by(old) if old else None, "after": _made_by(new) if new else None,
                      "numbers_changed": len(moved), "numbers": moved}
    return {"sets": sets, "sets_changed": len(sets), "numbers_changed": sum(s["numbers_changed"] for s in sets.values())}


def _cell(value: Number, stale: bool | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):  # a paired comparison: difference [CI] and its verdict
        text = f"{value['diff']:+.4g} [{value['low']:+.4g}, {value['high']:+.4g}] {value['verdict']}"
    else:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} †" if stale else text


def markdown(found: dict[str, Any]) -> str:
    """The changes as a table per set (stale numbers marked †, as RESULTS.md marks them)."""
    n, sets = found["numbers_changed"], found["sets_changed"]
    lines = [f"{n} number{'s' * (n != 1)} changed in {sets} set{'s' * (sets != 1)} († a stale cell's number)."]
    for name, s in found["sets"].items():
        where = "; ".join(f"{when}: code {c['fingerprint']}, {c['stale']} of {c['results']} stale, {c['machine']}"
                          for when, c in (("before", s["before"]), ("after", s["after"])) if c)
        lines += ["", f"**{name}** ({s['status']}; {where})", "", "| number | before | after |", "|---|---:|---:|"]
        lines += [f"| {n['number']} | {_cell(n['before'], n['stale_before'])} | {_cell(n['after'], n['stale_after'])} |"
                  for n in s["numbers"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="results.json before: a file or a git revision")
    parser.add_argument("--after", default=str(RESULTS), help="results.json after: a file or a git revision (default: the working copy's)")
    parser.add_argument("--markdown", action="store_true", help="a table per set instead of JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    found = changes(load(args.before), load(args.after))
    log.info("numbers changed: %d, in sets: %d", found["numbers_changed"], found["sets_changed"])
    sys.stdout.write((markdown(found) if args.markdown else json.dumps(found, indent=1)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
