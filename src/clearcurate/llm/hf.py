"""Batched calls into a local transformers causal LM.

The three primitives CLEAR needs, each written for throughput on a CPU:
- `sample`: k continuations per prompt; the prompt is prefilled once and its KV cache is
  repeated k times, so the k samples share one prompt forward pass; rows are batched.
- `choice_probs`: one forward pass reads the next-token probabilities of answer letters (A/B/C),
  instead of generating and parsing free text a small model rarely formats correctly.
- `continuation_logprobs`: per-token log-probabilities of given responses (teacher forcing).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    """One generated continuation and its total log-probability under the model."""

    text: str
    logprob: float
    n_tokens: int


class LocalLM:
    """A loaded model + tokenizer with batched, cache-sharing inference."""

    def __init__(self, model, tokenizer, batch_size: int = 8, show_progress: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.eos_ids = {tid for tid in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")) if isinstance(tid, int) and tid >= 0}

    def chat(self, user: str, assistant_prefix: str = "", history: Sequence[tuple[str, str]] = ()) -> str:
        """Render a prompt with the model's chat template, ending inside the assistant turn."""
        messages: list[dict[str, str]] = []
        for question, answer in history:
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        messages.append({"role": "user", "content": user})
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + assistant_prefix

    def _encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
        enc["position_ids"] = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        return enc

    def _batches(self, n_items: int, desc: str):
        return tqdm(range(0, n_items, self.batch_size), desc=desc, disable=not self.show_progress, unit="batch")

    @torch.inference_mode()
    def sample(
        self,
        prompts: Sequence[str],
        n: int = 1,
        temperature: float = 1.0,
        max_new_tokens: int = 32,
        seed: int = 0,
        desc: str = "generate",
    ) -> list[list[Generation]]:
        """k = `n` continuations per prompt; temperature 0 means greedy (then use n=1)."""
        # Longest first: similar lengths share a batch (less padding), and memory peaks early.
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        out: list[list[Generation]] = [[] for _ in prompts]
        generator = torch.Generator().manual_seed(seed)
        for start in self._batches(len(order), desc):
            idx = order[start : start + self.batch_size]
            gens = self._sample_batch([prompts[i] for i in idx], n, temperature, max_new_tokens, generator)
            for j, i in enumerate(idx):
                out[i] = gens[j * n : (j + 1) * n]
        return out

    def _sample_batch(
        self, prompts: list[str], n: int, temperature: float, max_new_tokens: int, generator: torch.Generator
    ) -> list[Generation]:
        enc = self._encode(prompts)
        result = self.model(**enc, use_cache=True, logits_to_keep=1)
        cache = result.cache
        logits = result.logits[:, -1, :].float()
        attention = enc["attention_mask"]
        position = enc["position_ids"][:, -1]
        if n > 1:  # prefill once, then share the prompt's KV cache across the n samples
            cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, dim=0)
            attention = attention.repeat_interleave(n, dim=0)
            position = position.repeat_interleave(n, dim=0)
        rows = logits.shape[0]
        tokens: list[list[int]] = [[] for _ in range(rows)]
        total_lp = torch.zeros(rows)
        done = torch.zeros(rows, dtype=torch.bool)
        for _ in range(max_new_tokens):
            logprobs = torch.log_softmax(logits, dim=-1)
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            else:
                nxt = logits.argmax(dim=-1)
            step_lp = logprobs.gather(-1, nxt[:, None]).squeeze(-1)
            total_lp += torch.where(done, torch.zeros_like(step_lp), step_lp)
            for r in range(rows):
                if not done[r]:
                    tok = int(nxt[r])
                    if tok in self.eos_ids:
                        done[r] = True
                    else:
                        tokens[r].append(tok)
            if bool(done.all()):
                break
            attention = torch.cat([attention, torch.ones(rows, 1, dtype=attention.dtype)], dim=1)
            position = position + 1
            step = self.model(
                input_ids=nxt[:, None],
                attention_mask=attention,
                position_ids=position[:, None],
                cache=cache,
                use_cache=True,
            )
            cache = step.cache
            logits = step.logits[:, -1, :].float()
        return [
            Generation(self.tokenizer.decode(t, skip_special_tokens=True).strip(), float(lp), len(t))
            for t, lp in zip(tokens, total_lp)
        ]

    @torch.inference_mode()
    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str], desc: str = "reflect") -> np.ndarray:
        """P(next token = each choice), renormalised over the choices; one forward pass per batch."""
        ids = [self.tokenizer.encode(c, add_special_tokens=False) for c in choices]
        if any(len(i) != 1 for i in ids):
            raise ValueError(f"each choice must be a single token, got {dict(zip(choices, ids))}")
        choice_ids = torch.tensor([i[0] for i in ids])
        out = np.zeros((len(prompts), len(choices)))
        for start in self._batches(len(prompts), desc):
            enc = self._encode(prompts[start : start + self.batch_size])
            logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :].float()
            out[start : start + len(enc["input_ids"])] = torch.softmax(logits[:, choice_ids], dim=-1).numpy()
        return out

    @torch.inference_mode()
    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "likelihood"
    ) -> list[np.ndarray]:
        """Per-token log-probabilities of each continuation (ending with EOS) given its prompt."""
        eos = self.tokenizer.eos_token or ""
        out: list[np.ndarray] = []
        for start in self._batches(len(prompts), desc):
            ps = prompts[start : start + self.batch_size]
            cs = continuations[start : start + self.batch_size]
            p_ids = [self.tokenizer.encode(p, add_special_tokens=False) for p in ps]
            c_ids = [self.tokenizer.encode(c + eos, add_special_tokens=False) for c in cs]
            width = max(len(a) + len(b) for a, b in zip(p_ids, c_ids))
            pad = self.tokenizer.pad_token_id
            input_ids = torch.full((len(ps), width), pad)
            attention = torch.zeros((len(ps), width), dtype=torch.long)
            for r, (a, b) in enumerate(zip(p_ids, c_ids)):
                seq = a + b
                input_ids[r, width - len(seq) :] = torch.tensor(seq)
                attention[r, width - len(seq) :] = 1
            position = (attention.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(input_ids=input_ids, attention_mask=attention, position_ids=position).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
            for r, b in enumerate(c_ids):
                out.append(logprobs[r, width - 1 - len(b) :].numpy().copy())
        return out
