"""DVC stages `baseline`, `train` and `retrain`: LoRA fine-tune the base model on one dataset."""

from __future__ import annotations

import argparse
import logging

from dataclasses import asdict

from accelerate import PartialState

from clearcurate.llm.openai_api import OpenAIConfig, fine_tune, read_model_ref, write_model_ref
from clearcurate.pipeline import BASE_MODEL_DIR, backend, load_lm, openai_params, setup_logging, stage_params
from clearcurate.records import read_jsonl
from clearcurate.training import LoraTrainConfig, attach_lora, data_fingerprint, reuse_adapter, save_adapter, train_lora

log = logging.getLogger("train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", required=True, help="the dvc.yaml stage name (for its params)")
    parser.add_argument("--data", required=True, help="JSONL with prompt/response rows")
    parser.add_argument("--out", required=True, help="adapter output directory")
    parser.add_argument("--reuse", default=None, help="an adapter to copy instead of training if it was trained on the same rows and settings")
    args = parser.parse_args()
    setup_logging()
    params = stage_params(args.stage)
    cfg = LoraTrainConfig.from_params(params["train"])
    rows = read_jsonl(args.data)
    if args.reuse and reuse_adapter(args.reuse, args.out, rows, cfg):
        log.info("%s: %s holds the same %d rows and settings as %s: adapter reused, no training", args.stage, args.data, len(rows), args.reuse)
        return
    if backend(params["model"]) == "openai":  # a fine-tuning job on the server; the output records its model id
        api = OpenAIConfig.from_params(openai_params(params))
        job = fine_tune(api, rows, base_model=read_model_ref(BASE_MODEL_DIR), suffix=args.stage)
        write_model_ref(args.out, job.pop("model"), train_log={"config": asdict(cfg), "data_sha256": data_fingerprint(rows), **job}, **job)
        log.info("%s: fine-tuned model recorded in %s", args.stage, args.out)
        return
    lm = load_lm(params["model"])
    adapted = attach_lora(lm.model, cfg)
    result = train_lora(adapted, lm.tokenizer, rows, cfg, desc=args.stage)
    if PartialState().is_main_process:  # under `accelerate launch` (DDP) every process trains; one writes
        save_adapter(adapted, args.out, result, cfg, rows)
        log.info("%s: adapter written to %s", args.stage, args.out)


if __name__ == "__main__":
    main()
