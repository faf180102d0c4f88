"""DVC stage `prepare`: convert the base model once, read the data in the user's format, quarantine bad rows.

Every source row ends as a prepared row (with a stable id) or in data/prepared/quarantine.jsonl
with its file, line and reason; rows longer than the model's context are quarantined too.
"""

from __future__ import annotations

import logging
from collections import Counter

import pandas as pd

from clearcurate.expectations import ValidateConfig, instruction_suite
from clearcurate.ingest import IngestConfig, load_rows
from clearcurate.llm.models import convert_to_safetensors
from clearcurate.llm.openai_api import OpenAIConfig, write_model_ref
from clearcurate.pipeline import BASE_MODEL_DIR, backend, gate, openai_params, setup_logging, stage_params
from clearcurate.records import write_json, write_jsonl
from clearcurate.training import encode_example

log = logging.getLogger("prepare")
NO_LIMIT = 10**9


def main() -> None:
    setup_logging()
    params = stage_params("prepare")
    if backend(params["model"]) == "openai":  # the model lives on the server: record which one
        api = OpenAIConfig.from_params(openai_params(params))
        write_model_ref(BASE_MODEL_DIR, api.model, base_url=api.base_url)
        context = api.context_tokens

        def token_count(prompt: str, response: str) -> int:  # no tokenizer here: about 4 characters a token
            return (len(prompt) + len(response)) // 4 + 1
    else:
        convert_to_safetensors(params["model"]["name"], BASE_MODEL_DIR, seed=int(params["model"].get("seed", 0)))
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL_DIR)
        context = int(AutoConfig.from_pretrained(BASE_MODEL_DIR).max_position_embeddings)

        def token_count(prompt: str, response: str) -> int:  # as the model will see the pair, chat template included
            return len(encode_example(tokenizer, prompt, response, NO_LIMIT)["input_ids"])

    cfg = IngestConfig(
        format=params["data"].get("format", "auto"),
        columns=params["data"].get("columns") or {},
        strict=bool(params["prepare"]["strict"]),
    )
    quarantine = []
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "test"):
        source = params["data"][split]
        rows, bad = load_rows(source, cfg, token_count, context)
        frame = pd.DataFrame({col: [r.get(col) for r in rows] for col in ("id", "prompt", "response")})
        gate("prepare", f"prepared_{split}", frame, instruction_suite(ValidateConfig.from_params(params["validate"])), params)
        write_jsonl(f"data/prepared/{split}.jsonl", rows)
        quarantine += [{"split": split, **q} for q in bad]
        counts[split] = {"rows": len(rows), "quarantined": len(bad)}
        log.info("%s: %d rows from %s, %d quarantined", split, len(rows), source, len(bad))
    write_jsonl("data/prepared/quarantine.jsonl", quarantine)
    reasons = Counter(q["reason"].split(" (")[0].split(" '")[0] for q in quarantine)
    write_json("metrics/prepare.json", {**counts, "quarantine_reasons": dict(reasons)})


if __name__ == "__main__":
    main()
