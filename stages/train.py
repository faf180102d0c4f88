"""DVC stages `baseline`, `train` and `retrain`: LoRA fine-tune the base model on one dataset."""

from __future__ import annotations

import argparse
import logging

from clearcurate.pipeline import load_lm, setup_logging, stage_params
from clearcurate.records import read_jsonl
from clearcurate.training import LoraTrainConfig, attach_lora, save_adapter, train_lora

log = logging.getLogger("train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", required=True, help="the dvc.yaml stage name (for its params)")
    parser.add_argument("--data", required=True, help="JSONL with prompt/response rows")
    parser.add_argument("--out", required=True, help="adapter output directory")
    args = parser.parse_args()
    setup_logging()
    params = stage_params(args.stage)
    cfg = LoraTrainConfig.from_params(params["train"])
    rows = read_jsonl(args.data)
    lm = load_lm(params["model"])
    adapted = attach_lora(lm.model, cfg)
    result = train_lora(adapted, lm.tokenizer, rows, cfg, desc=args.stage)
    save_adapter(adapted, args.out, result, cfg)
    log.info("%s: adapter written to %s", args.stage, args.out)


if __name__ == "__main__":
    main()
