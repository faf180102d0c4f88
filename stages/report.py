"""DVC stage `report`: plot data (confidence histogram by outcome, outcome counts) for `dvc plots`."""

from __future__ import annotations

import logging

from clearcurate.pipeline import setup_logging
from clearcurate.records import read_jsonl, write_json
from clearcurate.reports import confidence_histogram, outcome_counts

log = logging.getLogger("report")


def main() -> None:
    setup_logging()
    outcomes = read_jsonl("data/curated/outcomes.jsonl")
    by_id = {o["id"]: o["outcome"] for o in outcomes}
    write_json("plots/confidence.json", confidence_histogram(read_jsonl("data/scored/train.jsonl"), by_id))
    counts = outcome_counts(outcomes)
    write_json("plots/outcomes.json", counts)
    log.info("plot data written: %s", ", ".join(f"{c['outcome']} {c['rows']}" for c in counts))


if __name__ == "__main__":
    main()
