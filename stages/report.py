"""DVC stage `report`: plot data (confidence histogram by outcome, outcome counts) for `dvc plots`."""

from __future__ import annotations

import logging

from clearcurate.core.records import read_jsonl, write_json
from clearcurate.data.reports import confidence_histogram, outcome_counts
from clearcurate.pipeline import setup_logging, stage_args

log = logging.getLogger("report")


def main() -> None:
    args = stage_args(__doc__, "scored", "outcomes", "confidence_plot", "outcomes_plot")
    setup_logging()
    outcomes = read_jsonl(args.outcomes)
    by_id = {o["id"]: o["outcome"] for o in outcomes}
    write_json(args.confidence_plot, confidence_histogram(read_jsonl(args.scored), by_id))
    counts = outcome_counts(outcomes)
    write_json(args.outcomes_plot, counts)
    log.info("plot data written: %s", ", ".join(f"{c['outcome']} {c['rows']}" for c in counts))


if __name__ == "__main__":
    main()
