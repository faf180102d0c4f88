"""Development measurement of the defect checks (`clearcurate.core.defects`): how often each one flags rows
of clean development data, and how many of the rows it flags really have the defect.

No model calls. The clean rows are development rows only: Dolly's dev pool, GSM8K training
solutions no dev or benchmark set uses, SQuAD questions of articles no benchmark set uses,
TruthfulQA-judged's truthful, informative answers and BIG-Bench-Mistake's traces without a mistake
(the dev parts of `natural_sets`). A "clean" row can still have a real defect (the Dolly file cut
long responses at about 128 tokens), so every flagged row was read and judged by a person, before
any check was changed after reading it; the verdicts are in `dev_defects_labels.json`
(`defect`: the row has the defect the check names; `fine`: a false flag), and precision is
defects / flagged. A flag without a verdict is reported as unread, never counted as right. It also counts what the
long-row rule of training (`clearcurate.llm.lora.fit_lengths`) does to each set's rows at `train.max_length`.

With `--alpaca FILE[:FIRST]` (rows of the original Alpaca data's `alpaca_data.json`; CC BY-NC, so
they stay out of this repository) it also checks 1,000 Alpaca rows per file, reporting each flagged
row by index and reason; their verdicts are in the labels file by index, without the text. The checks
were revised on the rows above and on Alpaca rows 0 to 1,999 (rows 1,000 to 1,999 were first read as
held-out rows: 27 of their 31 flags were right before the revision). Rows 2,000 to 2,999 (`HELD_OUT`)
give a precision on rows no check was revised on: their flags were read once, after the checks were final.

    .venv/bin/python benchmarks/curation/dev_defects.py [--alpaca alpaca_data.json] [--show]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from natural_sets import candidates
from noisy_freeform import DOLLY_SOURCE, pool_of
from specs import HERE

from clearcurate.core.defects import CHECKS, find_defects
from clearcurate.core.records import Record, read_jsonl, write_json
from clearcurate.data.noisy_data import GSM8K_TRAIN_SOURCE, SQUAD_SOURCE, gsm8k_rows

LABELS = HERE / "dev_defects_labels.json"
ALPACA_ROWS = 1000
# Alpaca row ranges (by their first row) whose flags were read only after the checks were final: their
# precision is on rows no check was revised on. Rows 0-1,999 were read while the checks were revised.
HELD_OUT = (2000,)


def squad_dev_rows() -> list[Record]:
    """SQuAD questions of the articles no benchmark set trains or tests on, formatted as the builders do."""
    from dev import DEV_SETS, dev_rows
    from specs import plan, squad_config

    from clearcurate.data.noisy_data import SQUAD_PROMPT, squad_split

    used: set[str] = set()
    for spec in [s for s in plan(quick=False) if s.kind == "squad"]:
        titles, _ = squad_split(SQUAD_SOURCE, squad_config(spec))
        used |= titles
    for spec in DEV_SETS:
        if spec.kind == "squad":
            used |= {r.get("title", "") for r in dev_rows(spec)[0]}
    return [{"id": f"squad:{r['id']}", "prompt": SQUAD_PROMPT.format(context=r["context"], question=r["question"]),
             "response": r["answers"][0]} for r in read_jsonl(SQUAD_SOURCE) if r["title"] not in used]


def clean_sets() -> dict[str, list[Record]]:
    """Every clean development row, by source."""
    from dev_verify import benchmark_gsm8k_ids

    dolly = [{"id": f"dolly:{r['id']}", "prompt": r["instruction"], "response": r["response"]} for r in read_jsonl(DOLLY_SOURCE)
             if pool_of(r["id"]) == "dev"]
    used = benchmark_gsm8k_ids()
    gsm8k = [{**r, "id": f"gsm8k:{r['id']}"} for r in gsm8k_rows(GSM8K_TRAIN_SOURCE, "train") if r["id"] not in used]
    natural = {kind: [{"id": f"{kind}:{i}", **c} for i, c in enumerate(c for group in candidates(kind, "dev").values()
                                                                         for c in group if not c["noisy"])]
               for kind in ("truthfulqa", "bbm")}
    return {"dolly (dev pool)": dolly, "gsm8k (train, unused)": gsm8k, "squad (unused articles)": squad_dev_rows(),
            "truthfulqa (dev, truthful)": natural["truthfulqa"], "big-bench-mistake (dev, no mistake)": natural["bbm"]}


def alpaca_rows(path: Path, first: int = 0) -> list[Record]:
    """ALPACA_ROWS Alpaca rows from row `first` of a file that starts with row `first` (0 for the
    original file), as the pipeline reads them (instruction and input joined by a blank line)."""
    data = json.loads(path.read_text(encoding="utf-8"))[:ALPACA_ROWS]
    return [{"id": f"alpaca:{first + i}", "prompt": f"{r['instruction']}\n\n{r['input']}" if r["input"] else r["instruction"],
             "response": r["output"]} for i, r in enumerate(data)]


def measure(sets: dict[str, list[Record]], labels: dict[str, str], show: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    totals = {name: Counter() for name in CHECKS}
    for set_name, rows in sets.items():
        flags: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            for d in find_defects(row["prompt"], row["response"]):
                verdict = labels.get(f"{row['id']}|{d['check']}", "unread")
                # Alpaca's text stays out of this repository (CC BY-NC): its flags are listed by row index and verdict.
                quiet = row["id"].startswith("alpaca:") and not show
                entry = {"id": row["id"], "verdict": verdict, **({} if quiet else {"reason": d["reason"]})}
                if show:
                    entry["response"] = row["response"][-300:]
                    entry["prompt"] = row["prompt"][:200]
                flags.setdefault(d["check"], []).append(entry)
                totals[d["check"]][verdict] += 1
        out[set_name] = {"rows": len(rows), "flagged_rows": len({f["id"] for fl in flags.values() for f in fl}),
                         "by_check": {name: {"flagged": len(fl), **Counter(f["verdict"] for f in fl)} for name, fl in flags.items()},
                         **({"flags": flags} if show or set_name.startswith("alpaca") else {})}
    out["precision by check (read verdicts, all sets)"] = {
        name: {"flagged": sum(c.values()), **c,
               "precision": round(c["defect"] / (c["defect"] + c["fine"]), 3) if c["defect"] + c["fine"] else None}
        for name, c in totals.items()}
    return out


def long_rows(sets: dict[str, list[Record]], max_length: int) -> dict[str, Any]:
    """What the long-row rule (`clearcurate.llm.lora.fit_lengths`) does to each set's rows at `max_length`: how many do
    not fit, how many lose their response's tail (the rule), how many a quarantine of long rows would
    drop, and how many the old rule (cut the prompt from the left) would have trained without any prompt."""
    from clearcurate.llm import models
    from clearcurate.llm.lora import encode_example, fit_lengths

    tokenizer = models.load_tokenizer(HERE / "raw" / "models" / "smollm2-135m")
    out = {}
    for name, rows in sets.items():
        counts = Counter()
        for row in rows:
            full = encode_example(tokenizer, row["prompt"], row["response"], 10**9)
            n_prompt = full["labels"].count(-100)
            n_response = len(full["input_ids"]) - n_prompt
            keep_prompt, keep_response = fit_lengths(n_prompt, n_response, max_length)
            counts["too long (a quarantine would drop them)"] += n_prompt + n_response > max_length
            counts["prompt cut"] += keep_prompt < n_prompt
            counts["response cut (the old rule never cut one)"] += keep_response < n_response
            counts["old rule: no prompt left"] += n_response >= max_length
        out[name] = {"rows": len(rows), **counts}
    return {"max_length": max_length, "sets": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpaca", action="append", default=[], metavar="FILE[:FIRST]",
                        help="Alpaca rows (not bundled: CC BY-NC): a JSON list whose first object is row FIRST (default 0) of "
                             "alpaca_data.json; its first 1,000 rows are checked. Repeat for more files")
    parser.add_argument("--show", action="store_true", help="print each flagged row's text, to read it (not written)")
    parser.add_argument("--max-length", type=int, default=320, help="train.max_length for the long-row count")
    args = parser.parse_args(argv)
    labels = json.loads(LABELS.read_text(encoding="utf-8")) if LABELS.exists() else {}
    sets = clean_sets()
    for spec in args.alpaca:
        path, _, first = spec.partition(":")
        start = int(first or 0)
        held = " (held out: read once, after the checks were final)" if start in HELD_OUT else ""
        sets[f"alpaca rows {start:,}-{start + ALPACA_ROWS - 1:,}{held}"] = alpaca_rows(Path(path), start)
    measured = measure(sets, {k: v["verdict"] for k, v in labels.items()}, args.show)
    measured["long rows at train.max_length (training.fit_lengths)"] = long_rows(sets, args.max_length)
    if not args.show:
        write_json(HERE / "dev_defects_results.json", measured)
    print(json.dumps(measured, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
