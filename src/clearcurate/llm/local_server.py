"""A small OpenAI-compatible HTTP server over a local transformers model, for tests and benchmarks.

It implements the subset of the API that `model.backend: openai` uses: chat completions (with
`n`, `temperature`, `top_p`, `seed`, `logprobs` / `top_logprobs`, token usage), file upload, and
fine-tuning jobs (a LoRA adapter trained on the uploaded chat file, served as a new model id).
It can be told to misbehave (429 with Retry-After, 500, a reply slower than the client's
timeout, malformed JSON: queued faults served to the next chat requests and file uploads in
order; a failing fine-tuning job), so the client's retries, budget and error
paths are tested over real HTTP with the official client, not with mocks. `latency_s` adds a
per-request delay outside the model lock, standing in for a remote server's network and queue.

Not a production server: one model, one request on it at a time.

    python -m clearcurate.llm.local_server --model-dir models/base --port 8765
"""

from __future__ import annotations

import argparse
import copy
import email.parser
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

from clearcurate.llm.base import neutralize_special_tokens
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.lora import LoraTrainConfig, attach_lora, train_lora

log = logging.getLogger(__name__)
FAULTS = ("429", "500", "timeout", "malformed")


@dataclass
class ServerState:
    """Models, files, jobs, injected faults and counters, shared by the handler threads."""

    lm: LocalLM
    model_name: str
    api_key: str | None = None
    train_cfg: LoraTrainConfig = field(default_factory=lambda: LoraTrainConfig(max_steps=4, batch_size=4, max_length=256))
    latency_s: float = 0.0
    timeout_sleep_s: float = 3.0
    models: dict[str, LocalLM] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: deque[str] = field(default_factory=deque)
    failing_jobs: int = 0
    stats: dict[str, int] = field(default_factory=lambda: {"chat_requests": 0, "uploads": 0, "faults_served": 0, "n_max": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.models[self.model_name] = self.lm


def _token_logprobs(lm: LocalLM, prompt: str, text: str, top: int) -> list[dict[str, Any]]:
    """Per-token logprob and top alternatives of `text` after `prompt`, by teacher forcing."""
    p_ids, t_ids = lm._ids(prompt), lm._ids(text)
    if not t_ids:
        return []
    ids = torch.tensor([p_ids + t_ids], device=lm.device)
    with torch.inference_mode():
        logits = lm.model(input_ids=ids).logits[0, len(p_ids) - 1 : -1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    out = []
    for pos, tok in enumerate(t_ids):
        alts = torch.topk(logprobs[pos], max(top, 1)) if top else None
        out.append({
            "token": lm.tokenizer.decode([tok]),
            "logprob": float(logprobs[pos, tok]),
            "bytes": None,
            "top_logprobs": [] if alts is None else [
                {"token": lm.tokenizer.decode([int(i)]), "logprob": float(v), "bytes": None}
                for v, i in zip(alts.values.tolist(), alts.indices.tolist())
            ],
        })
    return out


def _render(lm: LocalLM, messages: list[dict[str, str]]) -> str:
    clean = [{"role": m["role"], "content": neutralize_special_tokens(lm.tokenizer, str(m.get("content", "")))} for m in messages]
    return lm.tokenizer.apply_chat_template(clean, add_generation_prompt=True, tokenize=False)


def chat_completion(state: ServerState, body: dict[str, Any]) -> dict[str, Any]:
    model = state.models.get(body.get("model", ""))
    if model is None:
        raise KeyError(f"model {body.get('model')!r} not found")
    n = int(body.get("n") or 1)
    max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
    temperature = float(body.get("temperature", 1.0))
    top = int(body.get("top_logprobs") or 0)
    with state.lock:
        prompt = _render(model, body["messages"])
        sampled = model.sample([prompt], n=n, temperature=temperature, max_new_tokens=max_tokens,
                               seed=int(body.get("seed") or 0), top_p=float(body.get("top_p", 1.0)))[0]
        choices = []
        for index, gen in enumerate(sampled.generations):
            choice: dict[str, Any] = {"index": index, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": gen.text}}
            if body.get("logprobs"):
                choice["logprobs"] = {"content": _token_logprobs(model, prompt, gen.text, top)}
            choices.append(choice)
        prompt_tokens = len(model._ids(prompt))
    state.stats["n_max"] = max(state.stats["n_max"], n)
    completion_tokens = sum(g.n_tokens for g in sampled.generations)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
        "model": body["model"], "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _train_job(state: ServerState, job_id: str) -> None:
    """Fine-tune a copy of the base model on the job's chat file; register it as a new model id."""
    job = state.jobs[job_id]
    job["status"] = "running"
    try:
        if state.failing_jobs > 0:
            state.failing_jobs -= 1
            raise ValueError("injected failure: the training file was rejected")
        rows = []
        for number, line in enumerate(state.files[job["training_file"]].decode("utf-8").splitlines(), start=1):
            messages = json.loads(line)["messages"]
            user = [m["content"] for m in messages if m["role"] == "user"]
            answer = [m["content"] for m in messages if m["role"] == "assistant"]
            if not user or not answer:
                raise ValueError(f"line {number}: needs a user and an assistant message")
            rows.append({"prompt": user[-1], "response": answer[-1]})
        epochs = (job.get("hyperparameters") or {}).get("n_epochs")
        cfg = replace(state.train_cfg, epochs=float(epochs)) if epochs else state.train_cfg
        with state.lock:
            peft_model = attach_lora(copy.deepcopy(state.lm.model), cfg)
            train_lora(peft_model, state.lm.tokenizer, rows, cfg, desc=job_id)
        name = f"ft:{job['model']}:{job.get('suffix') or 'clearcurate'}:{job_id[-8:]}"
        state.models[name] = LocalLM(peft_model, state.lm.tokenizer, batch_size=state.lm.batch_size, show_progress=False)
        job.update(status="succeeded", fine_tuned_model=name, finished_at=int(time.time()), trained_tokens=0)
    except Exception as err:  # every failure becomes the job's error, as a server reports it
        job.update(status="failed", error={"code": "training_failed", "message": str(err), "param": None})


class Handler(BaseHTTPRequestHandler):
    state: ServerState  # set on the subclass made by serve()
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # BaseHTTPRequestHandler's signature
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body).encode("utf-8")
        try:
            self._write(status, data, headers)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first (an injected timeout)
            self.close_connection = True

    def _write(self, status: int, data: bytes, headers: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": None, "param": None}}, headers)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorised(self) -> bool:
        if self.state.api_key is None or self.headers.get("Authorization") == f"Bearer {self.state.api_key}":
            return True
        self._error(401, "Incorrect API key provided.", "invalid_api_key")
        return False

    def do_GET(self) -> None:  # http.server's naming
        state = self.state
        if self.path == "/_control/stats":
            return self._send(200, {**state.stats, "models": sorted(state.models)})
        if not self._authorised():
            return None
        if self.path.startswith("/v1/fine_tuning/jobs/"):
            job = state.jobs.get(self.path.rsplit("/", 1)[-1])
            return self._send(200, job) if job else self._error(404, "no such job")
        if self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in state.models]})
        return self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        state, raw = self.state, self._body()
        if self.path == "/_control/faults":
            control = json.loads(raw or b"{}")
            bad = [f for f in control.get("faults", []) if f not in FAULTS]
            if bad:
                return self._error(400, f"unknown faults {bad}: use {FAULTS}")
            state.faults.extend(control.get("faults", []))
            state.failing_jobs += int(control.get("failing_jobs", 0))
            return self._send(200, {"queued": list(state.faults), "failing_jobs": state.failing_jobs})
        if not self._authorised():
            return None
        if self.path == "/v1/chat/completions":
            return self._chat(raw)
        if self.path == "/v1/files":
            return self._upload(raw)
        if self.path == "/v1/fine_tuning/jobs":
            body = json.loads(raw)
            if body.get("training_file") not in state.files:
                return self._error(400, f"training_file {body.get('training_file')!r} not found")
            if body.get("model") != state.model_name:
                return self._error(400, f"model {body.get('model')!r} cannot be fine-tuned here")
            job_id = f"ftjob-{uuid.uuid4().hex[:16]}"
            state.jobs[job_id] = {
                "id": job_id, "object": "fine_tuning.job", "model": body["model"], "status": "queued",
                "training_file": body["training_file"], "suffix": body.get("suffix"), "created_at": int(time.time()),
                "fine_tuned_model": None, "error": None, "hyperparameters": body.get("hyperparameters") or {},
                "organization_id": "local", "result_files": [], "seed": 0, "finished_at": None, "trained_tokens": None,
                "validation_file": None,
            }
            threading.Thread(target=_train_job, args=(state, job_id), daemon=True).start()
            return self._send(200, state.jobs[job_id])
        return self._error(404, f"no route {self.path}")

    def _fault(self) -> bool:
        """Serve the next queued fault, if any; True when it was the whole answer."""
        state = self.state
        fault = state.faults.popleft() if state.faults else None
        if fault:
            state.stats["faults_served"] += 1
        if fault == "429":
            self._error(429, "Rate limit reached; try again shortly.", "rate_limit_exceeded", {"Retry-After": "1", "retry-after-ms": "200"})
            return True
        if fault == "500":
            self._error(500, "The server had an error while processing your request.", "server_error")
            return True
        if fault == "timeout":
            time.sleep(state.timeout_sleep_s)  # longer than the client waits; then answers normally
        if fault == "malformed":
            self._send(200, None, raw=b'{"id": "broken", "choices": [')
            return True
        return False

    def _chat(self, raw: bytes) -> None:
        state = self.state
        state.stats["chat_requests"] += 1
        if self._fault():
            return None
        if state.latency_s:
            time.sleep(state.latency_s)
        try:
            reply = chat_completion(state, json.loads(raw))
        except KeyError as err:
            return self._error(404, str(err.args[0]), "model_not_found")
        except (ValueError, TypeError) as err:
            return self._error(400, f"bad request: {err}")
        return self._send(200, reply)

    def _upload(self, raw: bytes) -> None:
        self.state.stats["uploads"] += 1
        if self._fault():
            return None
        header = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
        message = email.parser.BytesParser().parsebytes(header + raw)
        parts = {p.get_param("name", header="content-disposition"): p for p in message.walk() if not p.is_multipart()}
        if "file" not in parts:
            return self._error(400, "multipart upload needs a 'file' part")
        data = parts["file"].get_payload(decode=True) or b""
        file_id = f"file-{uuid.uuid4().hex[:16]}"
        self.state.files[file_id] = data
        purpose = parts["purpose"].get_payload(decode=True).decode() if "purpose" in parts else "fine-tune"
        return self._send(200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                "filename": parts["file"].get_filename() or "upload.jsonl", "purpose": purpose,
                                "status": "processed"})


def serve(state: ServerState, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start serving in a background thread; `server.server_address[1]` is the port (0 picks a free one)."""
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> None:
    from clearcurate.llm.models import load

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="a prepared model directory (e.g. models/base)")
    parser.add_argument("--model-name", default="local", help="the model id clients ask for")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request (outside the model lock)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--api-key-env", default=None,
                        help="environment variable holding the key clients must send (default: any key is accepted)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model, tokenizer = load(args.model_dir)
    key = os.environ[args.api_key_env] if args.api_key_env else None
    state = ServerState(LocalLM(model, tokenizer, batch_size=args.batch_size, show_progress=False), args.model_name,
                        api_key=key, latency_s=args.latency)
    server, thread = serve(state, args.host, args.port)
    log.info("serving %s on http://%s:%d/v1", args.model_name, *server.server_address[:2])
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
