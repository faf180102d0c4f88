"""DVC stage `prepare`: validate the raw data, give rows stable ids, convert the base model once."""

from __future__ import annotations

import logging

import pandas as pd

from clearcurate.expectations import ValidateConfig, instruction_suite
from clearcurate.llm.models import convert_to_safetensors
from clearcurate.pipeline import BASE_MODEL_DIR, gate, setup_logging, stage_params
from clearcurate.records import read_jsonl, validate_instruction_rows, write_jsonl

log = logging.getLogger("prepare")


def main() -> None:
    setup_logging()
    params = stage_params("prepare")
    for split in ("train", "test"):
        source = params["data"][split]
        rows = validate_instruction_rows(read_jsonl(source), source)
        frame = pd.DataFrame({col: [r.get(col) for r in rows] for col in ("id", "prompt", "response")})
        gate("prepare", f"prepared_{split}", frame, instruction_suite(ValidateConfig.from_params(params["validate"])), params)
        n = write_jsonl(f"data/prepared/{split}.jsonl", rows)
        log.info("%s: %d rows from %s", split, n, source)
    convert_to_safetensors(params["model"]["name"], BASE_MODEL_DIR, seed=int(params["model"].get("seed", 0)))


if __name__ == "__main__":
    main()
