"""Fine-tuning jobs on the server, and the model ids a model directory records with backend openai."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clearcurate.config import OpenAIConfig
from clearcurate.core.records import atomic_dir, write_json
from clearcurate.llm.openai_api.retry import retrying

log = logging.getLogger(__name__)


MODEL_FILE = "openai_model.json"  # what a model directory holds with backend openai: the model id


def write_model_ref(out_dir: str | Path, model: str, train_log: dict[str, Any] | None = None, **extra: Any) -> None:
    """A model 'artifact' for the openai backend: the id later stages call, atomically written.

    `train_log` (config and data fingerprint) lets `training.reuse_adapter` reuse a fine-tuned
    model id exactly as it reuses a local adapter.
    """
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / MODEL_FILE, {"model": model, **extra})
        if train_log is not None:
            write_json(tmp / "train_log.json", train_log)


def read_model_ref(model_dir: str | Path) -> str:
    path = Path(model_dir) / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: this model directory was not made with model.backend: openai")
    return str(json.loads(path.read_text(encoding="utf-8"))["model"])


def chat_training_file(rows: Sequence[dict[str, Any]]) -> bytes:
    """Rows in the OpenAI chat fine-tuning format: one {"messages": [user, assistant]} per line."""
    lines = [
        json.dumps({"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}]},
                   ensure_ascii=False)
        for r in rows
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def fine_tune(cfg: OpenAIConfig, rows: Sequence[dict[str, Any]], base_model: str, suffix: str) -> dict[str, Any]:
    """Upload the rows, create a fine-tuning job, poll it to the end; returns the job's final record.

    A failed or cancelled job raises with the server's own message.
    """
    from openai import OpenAI

    if not rows:
        raise ValueError(f"{suffix}: no training rows")
    with OpenAI(base_url=cfg.base_url, api_key=cfg.api_key(), timeout=cfg.timeout_s, max_retries=0) as client:
        return _run_job(client, cfg, rows, base_model, suffix)


def _run_job(client: Any, cfg: OpenAIConfig, rows: Sequence[dict[str, Any]], base_model: str, suffix: str) -> dict[str, Any]:
    call, start = retrying(cfg), time.perf_counter()  # each API call retried as chat requests are
    upload = call(client.files.create, file=(f"{suffix}.jsonl", chat_training_file(rows)), purpose="fine-tune")
    hyper = {"n_epochs": cfg.n_epochs} if cfg.n_epochs else {}
    job = call(
        client.fine_tuning.jobs.create,
        model=base_model, training_file=upload.id, suffix=suffix[:18], **({"hyperparameters": hyper} if hyper else {}),
    )
    log.info("%s: fine-tuning job %s on %s (%d rows, file %s)", suffix, job.id, base_model, len(rows), upload.id)
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(cfg.poll_s)
        job = call(client.fine_tuning.jobs.retrieve, job.id)
        log.info("%s: job %s %s (%.0f s)", suffix, job.id, job.status, time.perf_counter() - start)
    if job.status != "succeeded":
        error = getattr(job, "error", None)
        message = getattr(error, "message", None) or "no message from the server"
        raise RuntimeError(f"{suffix}: fine-tuning job {job.id} {job.status}: {message}")
    return {"model": job.fine_tuned_model, "job": job.id, "training_file": upload.id, "base_model": base_model,
            "rows": len(rows), "seconds": round(time.perf_counter() - start, 1)}
