"""Where a LoRA training step's time goes, and what the cheaper settings would save.

Training is most of `make demo` (five LoRA runs: two fold models, baseline, filtered, retrain). This
times one step (forward + backward, the optimizer is negligible for a LoRA adapter) on the demo's
own rows with params.yaml's `train` settings, in the four combinations of LoRA dropout (0.05, the
default before issue 30, or 0) and arithmetic (float32 or bfloat16 autocast), all in one run on one
loaded model, relative to the old default. It also profiles that step by operator. Prints JSON.

    .venv/bin/python benchmarks/train_step.py --steps 4

Run `dvc repro prepare` first (it writes models/base and data/prepared/train.jsonl).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import platform
import time
from dataclasses import replace

import torch

from clearcurate.config import load_file
from clearcurate.core.records import read_jsonl
from clearcurate.llm import models
from clearcurate.llm.lora import _Collator, attach_lora, encode_example, response_loss
from clearcurate.pipeline import setup_logging

log = logging.getLogger("train_step")


def step_seconds(peft_model, batches: list[dict[str, torch.Tensor]], bf16: bool) -> list[float]:
    """Seconds of forward + backward for each batch (the first batch once more beforehand, as a warm-up)."""
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    peft_model.train()
    times = []
    for batch in [batches[0], *batches]:
        start = time.perf_counter()
        with autocast():
            loss = response_loss(peft_model, batch)
        loss.backward()
        peft_model.zero_grad()
        times.append(time.perf_counter() - start)
    return times[1:]


def top_operators(peft_model, batch: dict[str, torch.Tensor], n: int = 6) -> dict[str, float]:
    """Share of one default step's CPU time per operator (self time), the largest n."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        response_loss(peft_model, batch).backward()
    peft_model.zero_grad()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    return {e.key: round(e.self_cpu_time_total / total, 3) for e in events[:n]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="batches timed per setting")
    parser.add_argument("--model-dir", default="models/base")
    parser.add_argument("--rows", default="data/prepared/train.jsonl")
    args = parser.parse_args()
    setup_logging()
    cfg = load_file("params.yaml").train
    model, tokenizer = models.load(args.model_dir)
    rows = list(read_jsonl(args.rows))
    examples = [encode_example(tokenizer, r["prompt"], r["response"], cfg.max_length) for r in rows]
    collate = _Collator(tokenizer.pad_token_id)
    batches = [collate.pad(examples[i * cfg.batch_size : (i + 1) * cfg.batch_size]) for i in range(args.steps)]
    # The settings before issue 30 (fp32, LoRA dropout 0.05) against today's defaults' parts, whatever params.yaml says.
    before, no_dropout = replace(cfg, lora_dropout=0.05), replace(cfg, lora_dropout=0.0)
    settings = {"fp32, lora_dropout 0.05 (before)": (before, False), "fp32, lora_dropout 0": (no_dropout, False),
                "bf16 autocast, lora_dropout 0.05": (before, True), "bf16 autocast, lora_dropout 0": (no_dropout, True)}
    out: dict[str, object] = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "batch": {"rows": cfg.batch_size, "mean_tokens": round(sum(int(b["attention_mask"].sum()) for b in batches) / len(batches))},
    }
    seconds = {}
    for name, (train_cfg, bf16) in settings.items():
        adapted = attach_lora(model, train_cfg)
        seconds[name] = sum(step_seconds(adapted, batches, bf16)) / len(batches)
        if name.endswith("(before)"):
            out["step_operators_before (share of CPU time)"] = top_operators(adapted, batches[0])
        model = adapted.unload()
        log.info("%s: %.2f s per step", name, seconds[name])
    default = next(iter(seconds.values()))  # the first setting: the old default
    out["seconds_per_step"] = {k: round(v, 2) for k, v in seconds.items()}
    out["relative_to_before"] = {k: round(v / default, 2) for k, v in seconds.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
