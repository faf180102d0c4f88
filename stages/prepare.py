"""DVC stage `prepare`: convert the base model (and a separate scorer, if any) once, read the data, quarantine bad rows.

Every source row ends as a prepared row (with a stable id) or in `<out>/quarantine.jsonl`
with its file, line, code and reason; rows longer than the model's context or outside
validate.min_chars / max_chars are quarantined too. A file that cannot be used as a whole stops
the stage with one line naming it and the fix, after writing the quarantine read so far (empty
when no row was read), so `<out>/quarantine.jsonl` exists whatever happened.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NoReturn

from clearcurate.core.records import InputError, Record, atomic_jsonl, progress, write_json, write_jsonl
from clearcurate.data.expectations import InstructionColumns, instruction_suite, validate
from clearcurate.data.ingest import check_file, iter_rows, quarantine_codes
from clearcurate.pipeline import setup_logging, stage_args, stage_params
from clearcurate.runtime import models as runtime

log = logging.getLogger("prepare")


def _stop(exc: InputError, quarantine: list[Record], out: Path) -> NoReturn:
    """Write the quarantine so far and stop with the one-line error (no traceback)."""
    write_jsonl(out / "quarantine.jsonl", quarantine)
    where = f"; each row's reason is in {out / 'quarantine.jsonl'}" if quarantine else ""
    raise SystemExit(f"prepare: {exc}{where}") from None


def main() -> None:
    args = stage_args(__doc__, "out", "model_out", "scorer_out", "validation", "metrics")
    setup_logging()
    p = stage_params("prepare")
    quarantine: list[Record] = []
    try:
        for source in (p.data.train, p.data.test):
            check_file(source)  # before the (slow) model conversion
    except InputError as exc:
        _stop(exc, quarantine, args.out)
    token_count, context = runtime.prepare(p, args.model_out, args.scorer_out)
    cfg = p.ingest()
    counts: dict[str, dict[str, int]] = {}
    for split, source in (("train", p.data.train), ("test", p.data.test)):
        bad: list[Record] = []
        columns = InstructionColumns(p.validate)
        try:
            # Rows stream from the source into a temp file, renamed into place only once the gate passed.
            with atomic_jsonl(args.out / f"{split}.jsonl") as out:
                rows = iter_rows(source, cfg, bad, token_count, context, min_chars=p.validate.min_chars, max_chars=p.validate.max_chars)
                for row in progress(rows, f"prepare {split}"):
                    out.write(row)
                    columns.add(row)
                validate(f"prepared_{split}", columns.frame(), instruction_suite(p.validate), p.validate, args.validation)
        except InputError as exc:
            _stop(exc, quarantine + [{"split": split, **q} for q in getattr(exc, "quarantine", [])], args.out)
        quarantine += [{"split": split, **q} for q in bad]
        counts[split] = {"rows": out.count, "quarantined": len(bad)}
        log.info("%s: %d rows from %s, %d quarantined", split, out.count, source, len(bad))
    write_jsonl(args.out / "quarantine.jsonl", quarantine)
    write_json(args.metrics, {**counts, "quarantine_codes": quarantine_codes(quarantine)})


if __name__ == "__main__":
    main()
