"""DVC stages `baseline`, `train` and `retrain`: LoRA fine-tune the base model on one dataset."""

from __future__ import annotations

import logging

from clearcurate.core.records import read_jsonl
from clearcurate.llm.lora import reuse_adapter
from clearcurate.pipeline import setup_logging, stage_args, stage_params
from clearcurate.runtime import models as runtime

log = logging.getLogger("train")


def main() -> None:
    # --reuse: an adapter to copy instead of training if it was trained on the same rows and settings
    args = stage_args(__doc__, "data", "base", "out", optional=("reuse",), stage="the dvc.yaml stage whose params apply")
    setup_logging()
    p = stage_params(args.stage)
    cfg = p.train
    rows = read_jsonl(args.data)
    if args.reuse and reuse_adapter(args.reuse, args.out, rows, cfg):
        log.info("%s: %s holds the same %d rows and settings as %s: adapter reused, no training",
                 args.stage, args.data, len(rows), args.reuse)
        return
    runtime.fine_tune(p, args.base, rows, cfg, args.out, args.stage)  # LoRA locally, a fine-tuning job on a server
    log.info("%s: fine-tuned model written to %s", args.stage, args.out)


if __name__ == "__main__":
    main()
