"""The `train` section: one LoRA run's hyper-parameters (baseline, train, retrain, and the cross-fit fold models)."""

from __future__ import annotations

from dataclasses import dataclass

from clearcurate.config.common import require

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class LoraTrainConfig:
    """Hyper-parameters of one LoRA run (the `train` block of params.yaml)."""

    epochs: float = 1.0
    max_steps: int = 16
    learning_rate: float = 1e-3
    batch_size: int = 8
    max_batch_tokens: int = 512  # a batch runs as micro-batches of at most this many padded tokens (0: whole); memory, not results
    max_length: int = 320
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    warmup_ratio: float = 0.1
    precision: str = "auto"  # auto: bf16 autocast where the device computes bf16 natively (clearcurate.llm.models.arithmetic)
    seed: int = 0

    def __post_init__(self) -> None:
        require("train", self, {
            "epochs": (self.epochs > 0 or self.max_steps > 0, "> 0 (or max_steps > 0)"),
            "max_steps": (self.max_steps >= 0, ">= 0"),
            "learning_rate": (self.learning_rate > 0, "> 0"),
            "batch_size": (self.batch_size >= 1, ">= 1"),
            "max_batch_tokens": (self.max_batch_tokens >= 0, ">= 0 (0: no limit)"),
            "max_length": (self.max_length >= 8, ">= 8"),
            "lora_r": (self.lora_r >= 1, ">= 1"),
            "lora_alpha": (self.lora_alpha > 0, "> 0"),
            "lora_dropout": (0.0 <= self.lora_dropout < 1.0, "in [0, 1)"),
            "warmup_ratio": (0.0 <= self.warmup_ratio < 1.0, "in [0, 1)"),
            "precision": (self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
        })
        if not self.target_modules:
            raise ValueError("train.target_modules must name at least one module")
