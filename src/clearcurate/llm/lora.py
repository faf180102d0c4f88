"""LoRA fine-tuning on (prompt, response) records with the model's own chat template.

Loss is computed on response tokens only: the prompt is context, not a target, and training on
it would teach the model to reproduce questions and paragraphs instead of answers.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from clearcurate.config import LoraTrainConfig
from clearcurate.core.records import Record, atomic_dir, write_json
from clearcurate.llm.base import neutralize_special_tokens

log = logging.getLogger(__name__)
IGNORE_INDEX = -100


@dataclass
class TrainResult:
    """What a run did, for the stage's training log."""

    rows: int
    steps: int
    seconds: float
    precision: str  # the arithmetic it trained in (`clearcurate.llm.models.arithmetic`)
    history: list[dict[str, float]] = field(default_factory=list)


def encode_example(tokenizer, prompt: str, response: str, max_length: int) -> dict[str, list[int]]:
    """Token ids and labels for one pair: labels are IGNORE_INDEX on the prompt part."""
    prompt, response = neutralize_special_tokens(tokenizer, prompt), neutralize_special_tokens(tokenizer, response)
    user = [{"role": "user", "content": prompt}]
    prompt_ids = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True)
    full_ids = tokenizer.apply_chat_template(
        [*user, {"role": "assistant", "content": response}], tokenize=True
    )
    if hasattr(prompt_ids, "input_ids"):  # BatchEncoding in newer transformers
        prompt_ids, full_ids = prompt_ids["input_ids"], full_ids["input_ids"]
    prompt_ids, full_ids = list(prompt_ids), list(full_ids)
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError("the chat template does not render the prompt as a prefix of prompt+response")
    # Drop the template's trailing newline after the end-of-turn token: the model should learn to stop.
    eos = tokenizer.eos_token_id
    if eos in full_ids[len(prompt_ids) :]:
        full_ids = full_ids[: len(prompt_ids) + full_ids[len(prompt_ids) :].index(eos) + 1]
    response_ids = full_ids[len(prompt_ids) :]
    keep_prompt, keep_response = fit_lengths(len(prompt_ids), len(response_ids), max_length)
    prompt_ids, response_ids = prompt_ids[len(prompt_ids) - keep_prompt :], response_ids[:keep_response]
    return {"input_ids": prompt_ids + response_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + response_ids}


def fit_lengths(prompt_tokens: int, response_tokens: int, max_length: int) -> tuple[int, int]:
    """How many prompt and response tokens a training row keeps within `max_length` (the long-row rule).

    A row that fits keeps everything. Otherwise the prompt is cut from the left (a question after its
    context survives), but keeps at least a quarter of the window (all of itself if shorter), and the
    response keeps the rest: a longer one loses its tail, its end of turn with it, so the model never
    learns to stop mid-text. So no row is trained as a response without its prompt: a response of
    `max_length` tokens once pushed the whole prompt out and the batch's loss crashed (issue 27). Rows
    whose response leaves a quarter of the window are cut as before (the prompt only).
    """
    if max_length < 2:
        raise ValueError(f"train.max_length must be at least 2 tokens (one of prompt, one of response), got {max_length}")
    if prompt_tokens < 1 or response_tokens < 1:
        raise ValueError("a training row needs at least one prompt token and one response token")
    if prompt_tokens + response_tokens <= max_length:
        return prompt_tokens, response_tokens
    keep_prompt = min(prompt_tokens, max(max_length - response_tokens, max_length // 4, 1))
    return keep_prompt, max_length - keep_prompt


def micro_batches(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Split one training batch (its rows' token lengths) into parts of at most `max_tokens` padded tokens.

    A part costs its rows times its longest row (left padding), and a step's activations grow with that
    product: 8 free-form rows of 320 tokens took `baseline` past 4 GB, and longer rows to 10 GB (issue 31).
    Rows go longest first, so rows of similar length share a part and little is padding. Each part is
    run forward and backward in turn and the losses are summed over the whole batch's response tokens
    (`train_lora`), so the gradient is the batch's own, up to float rounding. A row longer than the budget
    is a part alone. `max_tokens` 0: one part.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    parts: list[list[int]] = []
    for i in order:
        if parts and (not max_tokens or (len(parts[-1]) + 1) * lengths[parts[-1][0]] <= max_tokens):
            parts[-1].append(i)
        else:
            parts.append([i])
    return parts


class _Collator:
    """Left-pads a batch so every row's response ends at the last position, in micro-batches of at most
    `max_tokens` padded tokens (`micro_batches`; 0: one), returned as `{"parts": [...]}`.

    With left padding the loss needs logits only for the last `keep` positions (the longest
    response), so the 49k-vocabulary output layer never runs over prompt tokens; that is most of
    the memory and about a third of the time of a step on a small model.
    """

    def __init__(self, pad_id: int, max_tokens: int = 0) -> None:
        self.pad_id = pad_id
        self.max_tokens = max_tokens

    def __call__(self, batch: Sequence[dict[str, list[int]]]) -> dict[str, list[dict[str, torch.Tensor]]]:
        parts = micro_batches([len(b["input_ids"]) for b in batch], self.max_tokens)
        return {"parts": [self.pad([batch[i] for i in part]) for part in parts]}

    def pad(self, batch: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """One left-padded tensor batch of `batch`'s rows."""
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id)
        labels = torch.full((len(batch), width), IGNORE_INDEX)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[r, width - n :] = torch.tensor(b["input_ids"])
            labels[r, width - n :] = torch.tensor(b["labels"])
            mask[r, width - n :] = 1
        # Every row has a prompt token before its first label (`fit_lengths`), so keep <= width.
        first_label = int((labels != IGNORE_INDEX).float().argmax(dim=1).min())
        if first_label == 0:
            raise ValueError("a training row has no prompt token before its response (encode_example keeps at least one)")
        return {
            "input_ids": ids,
            "labels": labels,
            "attention_mask": mask,
            "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
            "keep": torch.tensor(width - first_label + 1),
        }


def response_loss(model, batch: dict[str, torch.Tensor], targets: int = 0) -> torch.Tensor:
    """Next-token cross-entropy over response tokens, computing logits only where needed: the mean over
    this batch's response tokens, or with `targets` > 0 their sum divided by `targets` (the whole batch's
    count, when this is one of its micro-batches)."""
    keep = int(batch["keep"])
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        logits_to_keep=keep,
    )
    logits = out.logits[:, :-1, :].float()
    labels = batch["labels"][:, -keep + 1 :]
    total = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return total / (targets or int((labels != IGNORE_INDEX).sum()))


def release_memory() -> None:
    """Give the memory a training run freed back to the system (glibc's `malloc_trim`; elsewhere a no-op).

    The allocator keeps freed activation blocks in its heap: in `score` the resident set grew from
    2.0 to 3.3 GB over two fold models and the sampling that followed stacked on top of it (issue 31).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim from the running process's own symbols, or None (macOS, Windows, musl)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


def attach_lora(model, cfg: LoraTrainConfig):
    """Wrap a base model with a fresh LoRA adapter (peft), initialised from `cfg.seed`.

    peft draws the adapter's A matrices from the global RNG; unseeded, every run started from a
    different adapter and `dvc repro` of the same data gave another model (demo EM moved by 2 points).
    """
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    from clearcurate.llm.models import peft_quietly

    set_seed(cfg.seed)

    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    with peft_quietly():
        return get_peft_model(model, lora)


def train_lora(peft_model, tokenizer, rows: Sequence[Record], cfg: LoraTrainConfig, desc: str = "train") -> TrainResult:
    """Fine-tune the adapter of `peft_model` in place on `rows` with the transformers Trainer."""
    from transformers import Trainer, TrainingArguments, set_seed

    from clearcurate.llm.models import arithmetic

    class _ResponseLossTrainer(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            """Forward and backward one micro-batch at a time (`micro_batches`); the losses sum to the batch's mean."""
            model.train()
            parts = self._prepare_inputs(inputs)["parts"]
            targets = sum(int((p["labels"] != IGNORE_INDEX).sum()) for p in parts)
            total = torch.zeros((), device=self.args.device)
            for part in parts:
                with self.compute_loss_context_manager():
                    loss = response_loss(model, part, targets)
                self.accelerator.backward(loss)
                total += loss.detach()
            return total

    if not rows:
        raise ValueError(f"{desc}: no training rows")
    set_seed(cfg.seed)
    examples = [encode_example(tokenizer, r["prompt"], r["response"], cfg.max_length) for r in rows]
    steps = cfg.max_steps or math.ceil(len(examples) / cfg.batch_size) * math.ceil(cfg.epochs)
    # Nothing is saved there (save_strategy "no"), but the Trainer wants a folder: one per run, so
    # two runs on one machine never share it.
    scratch = tempfile.TemporaryDirectory(prefix="clearcurate-trainer-")
    device = next(peft_model.parameters()).device
    precision = arithmetic(cfg.precision, device)
    args = TrainingArguments(
        output_dir=scratch.name,
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=int(cfg.warmup_ratio * steps),
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=device.type == "cpu",  # train where the model was loaded
        bf16=precision == "bf16",  # autocast: matrix products in bfloat16, weights, gradients and optimizer in float32
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=False,
    )
    trainer = _ResponseLossTrainer(
        model=peft_model,
        args=args,
        train_dataset=examples,
        data_collator=_Collator(tokenizer.pad_token_id, cfg.max_batch_tokens),
    )
    peft_model.train()
    start = time.perf_counter()
    with scratch:
        trainer.train()
    seconds = time.perf_counter() - start
    peft_model.eval()
    history = [
        {k: float(v) for k, v in h.items() if isinstance(v, (int, float))}
        for h in trainer.state.log_history
    ]
    steps = trainer.state.global_step
    del trainer
    release_memory()
    log.info("%s: %d rows, %d steps in %.0f s (%s)", desc, len(examples), steps, seconds, precision)
    return TrainResult(rows=len(examples), steps=steps, seconds=seconds, precision=precision, history=history)


def data_fingerprint(rows: Sequence[Record]) -> str:
    """A hash of what a run trains on, in order: same fingerprint and config = the same training run."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row["prompt"], row["response"]], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def save_adapter(peft_model, out_dir: str | Path, result: TrainResult, cfg: LoraTrainConfig, rows: Sequence[Record]) -> None:
    """Write the adapter (safetensors) and a JSON training log (with the data fingerprint) next to it."""
    with atomic_dir(out_dir) as tmp:
        peft_model.save_pretrained(tmp, safe_serialization=True)
        write_json(tmp / "train_log.json", {"config": asdict(cfg), "data_sha256": data_fingerprint(rows), **asdict(result)})


def reuse_adapter(source_dir: str | Path, out_dir: str | Path, rows: Sequence[Record], cfg: LoraTrainConfig) -> bool:
    """Copy the adapter in `source_dir` to `out_dir` if it was trained on exactly `rows` with `cfg`.

    Auto-Correct often changes nothing (no candidate clears eta); retraining on the identical rows
    would only cost minutes and add run-to-run noise (CPU training is not bit-reproducible), so the
    corrected model then *is* the filtered one. Returns False, copying nothing, otherwise.
    """
    log_path = Path(source_dir) / "train_log.json"
    if not log_path.exists():
        return False
    previous = json.loads(log_path.read_text(encoding="utf-8"))
    same_config = previous.get("config") == json.loads(json.dumps(asdict(cfg)))
    if not same_config or previous.get("data_sha256") != data_fingerprint(rows):
        return False
    with atomic_dir(out_dir) as tmp:
        shutil.copytree(source_dir, tmp, dirs_exist_ok=True)
        write_json(tmp / "train_log.json", {**previous, "reused_from": str(source_dir)})
    return True
