"""DVC stage `evaluate`: every model on the clean test set, plus the scorer's detection quality.

The base model is loaded once; the three adapters are attached to it and switched in turn.
Noise labels (known only for the bundled demo data) are read here and nowhere else.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from clearcurate.evaluation import correction_scores, detection_scores, squad_scores
from clearcurate.llm.openai_api import OpenAIChatLM, api_metrics, read_model_ref
from clearcurate.pipeline import api_budget, load_lm, openai_params, setup_logging, stage_params
from clearcurate.records import read_jsonl, write_json, write_jsonl

log = logging.getLogger("evaluate")
ADAPTERS = {"baseline": "models/baseline", "filtered": "models/filtered", "corrected": "models/corrected"}


def main() -> None:
    setup_logging()
    params = stage_params("evaluate")
    test = read_jsonl("data/prepared/test.jsonl")
    references = [r.get("answers") or [r["response"]] for r in test]
    lm = load_lm(params["model"], adapter_dir=ADAPTERS["baseline"], openai_params=openai_params(params))
    prompts = [lm.chat(r["prompt"]) for r in test]
    max_new = int(params["evaluate"]["max_new_tokens"])
    metrics: dict[str, dict[str, float]] = {}
    predictions: list[dict[str, str]] = []
    # The same model (retrain reused the filtered adapter or model id) gives the same greedy answers.
    if isinstance(lm, OpenAIChatLM):
        identity = {name: read_model_ref(path) for name, path in ADAPTERS.items()}

        def select(name: str) -> None:
            lm.model_name = identity[name]
    else:
        for name, path in ADAPTERS.items():
            if name != "baseline":
                lm.model.load_adapter(path, adapter_name=name)
        identity = {
            name: hashlib.sha256(b"".join((Path(path) / f).read_bytes() for f in ("adapter_config.json", "adapter_model.safetensors"))).hexdigest()
            for name, path in ADAPTERS.items()
        }

        def select(name: str) -> None:
            lm.model.set_adapter(name if name != "baseline" else "default")
    decoded: dict[str, list[str]] = {}
    with api_budget("evaluate"):  # a spent API budget stops cleanly
        for name in ("base", *ADAPTERS):
            if name == "base":
                with lm.base_model():
                    texts = lm.greedy(prompts, max_new, desc="eval base")
            elif identity[name] in decoded:
                log.info("%s is the same model as an earlier one: its answers are reused", name)
                texts = decoded[identity[name]]
            else:
                select(name)
                texts = decoded[identity[name]] = lm.greedy(prompts, max_new, desc=f"eval {name}")
            metrics[name] = squad_scores(texts, references)
            predictions += [{"model": name, "id": r["id"], "prediction": t} for r, t in zip(test, texts)]
            log.info("%-9s EM %.1f  F1 %.1f", name, metrics[name]["exact_match"], metrics[name]["f1"])

    labels_path = Path(params["evaluate"]["noise_labels"])
    if labels_path.exists():
        noisy = {r["id"]: bool(r["noisy"]) for r in read_jsonl(labels_path)}
        confidence = {r["id"]: float(r["confidence"]) for r in read_jsonl("data/scored/train.jsonl")}
        removed = {r["id"] for r in read_jsonl("data/filtered/removed.jsonl")}
        metrics["detection"] = detection_scores(confidence, noisy, removed)
        log.info("detection: %s", metrics["detection"])
        labels = {r["id"]: r for r in read_jsonl(labels_path)}
        metrics["correction"] = correction_scores(read_jsonl("data/curated/decisions.jsonl"), labels)
        log.info("Auto-Correct against the noise labels: %s", metrics["correction"])
    write_json("metrics/evaluate.json", {**metrics, **api_metrics(lm)})
    write_json(
        "metrics/test_scores.json",
        [{"model": m, **metrics[m]} for m in ("base", *ADAPTERS)],
    )
    write_jsonl("reports/predictions.jsonl", predictions)


if __name__ == "__main__":
    main()
