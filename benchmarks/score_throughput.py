"""Scoring throughput: our batched scorer vs. a naive generate() loop, and the machine's ceiling.

All three are measured in one run on the same rows and the same loaded model, so the ratios are
meaningful even on a noisy machine. Scoring uses the `paper` recipe (base model: k chain-of-thought
samples from a few-shot prompt plus two self-reflection questions), which is pure inference;
"tokens" counts every prompt, generated and reflection token the scorer processes.

    .venv/bin/python benchmarks/score_throughput.py --rows 16 --k 5

Run `dvc repro prepare` first (it writes models/base).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import torch

from clearcurate.config import ModelParams, Params
from clearcurate.core import prompts
from clearcurate.core.records import read_jsonl
from clearcurate.llm.factory import load_lm
from clearcurate.pipeline import setup_logging
from clearcurate.scoring import ScoreConfig, fewshot_examples, reflect

log = logging.getLogger("score_throughput")


def forward_ceiling(lm, texts: list[str]) -> float:
    """Tokens per second of plain batched forward passes over the prompts (no generation)."""
    enc = lm._encode(texts)
    tokens = int(enc["attention_mask"].sum())
    with torch.inference_mode():
        start = time.perf_counter()
        lm.model(**enc, logits_to_keep=1)
        seconds = time.perf_counter() - start
    return tokens / seconds


def naive_loop(lm, rows, gen_prompts, k: int, max_new_tokens: int) -> float:
    """One generate() call per sample and per reflection question, one row at a time."""
    tok, model = lm.tokenizer, lm.model
    start = time.perf_counter()
    with torch.inference_mode():
        for row, gen_prompt in zip(rows, gen_prompts):
            ids = tok(gen_prompt, return_tensors="pt", add_special_tokens=False)
            for _ in range(k):
                model.generate(**ids, do_sample=True, temperature=1.0, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
            first = prompts.reflection_question(0, row["prompt"], row["response"])
            ids = tok(lm.chat(first), return_tensors="pt", add_special_tokens=False)
            out = model.generate(**ids, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
            answer = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
            second = lm.chat(prompts.reflection_question(1, "", ""), history=[(first, answer)])
            ids = tok(second, return_tensors="pt", add_special_tokens=False)
            model.generate(**ids, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/raw/train.jsonl")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--naive-rows", type=int, default=4, help="rows for the (slow) naive loop")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--base", default="models/base", help="the prepared base model (dvc repro prepare)")
    args = parser.parse_args()
    setup_logging()
    lm = load_lm(Params(model=ModelParams(batch_size=args.batch_size)), args.base)
    lm.show_progress = False
    rows = read_jsonl(args.data)[: args.rows]
    cfg = ScoreConfig(recipe="paper", k=args.k, max_new_tokens=args.max_new_tokens)
    shots = fewshot_examples(rows, cfg.fewshot, cfg.seed)
    gen_prompts = [lm.chat(prompts.cot_prompt(r["prompt"], s)) for r, s in zip(rows, shots)]

    ceiling = forward_ceiling(lm, gen_prompts[: args.batch_size])
    # Ours: exactly the calls score_rows makes for the paper recipe (k samples + two reflections).
    start = time.perf_counter()
    sampled = lm.sample(gen_prompts, n=cfg.k, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    reflect(lm, rows)
    ours_s = time.perf_counter() - start
    naive_s = naive_loop(lm, rows[: args.naive_rows], gen_prompts[: args.naive_rows], args.k, args.max_new_tokens)

    reflection_tokens = sum(
        len(lm._ids(lm.chat(prompts.reflection_question(0, r["prompt"], r["response"]), prompts.CHOICE_PREFIX))) + 60
        for r in rows
    )  # + ~60 tokens for the follow-up question, which reuses the first question's cache
    tokens = (
        sum(len(lm._ids(p)) for p in gen_prompts)
        + sum(g.n_tokens for s in sampled for g in s.generations)
        + reflection_tokens
    )
    ours_rps = len(rows) / ours_s
    naive_rps = args.naive_rows / naive_s
    result = {
        "rows": len(rows),
        "k": args.k,
        "max_new_tokens": args.max_new_tokens,
        "ours_seconds": round(ours_s, 1),
        "ours_rows_per_s": round(ours_rps, 4),
        "naive_rows_per_s": round(naive_rps, 4),
        "speedup_vs_naive": round(ours_rps / naive_rps, 2),
        "forward_ceiling_tokens_per_s": round(ceiling, 1),
        "ours_tokens_per_s": round(tokens / ours_s, 1),
        "share_of_ceiling": round(tokens / ours_s / ceiling, 3),
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
