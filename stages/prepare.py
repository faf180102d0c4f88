"""DVC stage `prepare`: convert the base model once, read the data in the user's format, quarantine bad rows.

Every source row ends as a prepared row (with a stable id) or in `<out>/quarantine.jsonl`
with its file, line and reason; rows longer than the model's context are quarantined too.
"""

from __future__ import annotations

import logging

import pandas as pd

from clearcurate.expectations import instruction_suite, validate
from clearcurate.ingest import load_rows, quarantine_codes
from clearcurate.llm.factory import prepare_base
from clearcurate.pipeline import setup_logging, stage_args, stage_params
from clearcurate.records import write_json, write_jsonl

log = logging.getLogger("prepare")


def main() -> None:
    args = stage_args(__doc__, "out", "model_out", "validation", "metrics")
    setup_logging()
    p = stage_params("prepare")
    token_count, context = prepare_base(p, args.model_out)
    cfg = p.ingest()
    quarantine = []
    counts: dict[str, dict[str, int]] = {}
    for split, source in (("train", p.data.train), ("test", p.data.test)):
        rows, bad = load_rows(source, cfg, token_count, context)
        frame = pd.DataFrame({col: [r.get(col) for r in rows] for col in ("id", "prompt", "response")})
        validate(f"prepared_{split}", frame, instruction_suite(p.validate), p.validate, args.validation)
        write_jsonl(args.out / f"{split}.jsonl", rows)
        quarantine += [{"split": split, **q} for q in bad]
        counts[split] = {"rows": len(rows), "quarantined": len(bad)}
        log.info("%s: %d rows from %s, %d quarantined", split, len(rows), source, len(bad))
    write_jsonl(args.out / "quarantine.jsonl", quarantine)
    write_json(args.metrics, {**counts, "quarantine_codes": quarantine_codes(quarantine)})


if __name__ == "__main__":
    main()
