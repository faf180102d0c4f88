"""Batched calls into a local transformers causal LM.

The primitives CLEAR needs, each written for throughput on a CPU:
- `sample`: k continuations per prompt; the prompt is prefilled once and its KV cache is
  repeated k times, so the k samples share one prompt forward pass; rows are batched, finished
  rows leave the batch, and the log-probability of a given response can be read off the same
  prefill (teacher forcing on the cached prompt) at almost no extra cost.
- `choice_probs`: one forward pass reads the next-token probabilities of answer letters (A/B/C),
  instead of generating and parsing free text a small model rarely formats correctly; a
  follow-up question in the same conversation reuses the first question's KV cache.

Sampling is seeded per sequence: sample j of a prompt draws every token from its own random
generator, seeded by (seed, j, prompt) (`exponential_race`). So what a prompt gets never depends on
which other prompts share its batch or call, how rows are chunked, or which worker runs it; only
float rounding, which differs slightly with the batch's padding, could flip a draw, and the race
makes that very rare (measured in docs/scale.md). Generators live on the model's device, so a GPU
draws other (equally valid) samples than a CPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from clearcurate.llm.base import Generation, Sampled, neutralize_special_tokens


def _sequence_logprob(logits: torch.Tensor, targets: Sequence[int]) -> float:
    """log p(targets) from one row's logits (positions x vocabulary), each position predicting its target.

    One row at a time: a batch's log-softmax over every position of long texts is a second (and a third,
    with the concatenation) copy of its logits, batch x length x 49k vocabulary floats, which once
    took a scoring run of 300 reasoning traces to 15 GB."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    return float(logprobs[torch.arange(len(targets), device=logits.device), torch.tensor(targets, device=logits.device)].sum())


def per_prompt(max_new_tokens: int | Sequence[int], n_prompts: int) -> list[int]:
    """One generation budget per prompt, from a single budget or a list of them."""
    budgets = [int(max_new_tokens)] * n_prompts if isinstance(max_new_tokens, int) else [int(b) for b in max_new_tokens]
    if len(budgets) != n_prompts or any(b < 1 for b in budgets):
        raise ValueError(f"need one budget >= 1 per prompt ({n_prompts}), got {max_new_tokens!r}")
    return budgets


def sequence_seed(seed: int, sample: int, prompt: str) -> int:
    """The seed of one sampled sequence: a 64-bit hash of (seed, sample index, prompt)."""
    return int(hashlib.sha256(f"{seed}\0{sample}\0{prompt}".encode()).hexdigest()[:16], 16)


def sequence_generators(prompts: Sequence[str], n: int, seed: int, device: torch.device) -> list[torch.Generator]:
    """One random generator per sampled sequence (sample j of prompt r at r * n + j), seeded by `sequence_seed`."""
    return [torch.Generator(device=device).manual_seed(sequence_seed(seed, j, prompt)) for prompt in prompts for j in range(n)]


def exponential_race(probs: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """One token per row, drawn from that row's `probs` with noise from that row's generator only.

    Token i wins the race when E_i / p_i is smallest, E_i ~ Exp(1) (the Gumbel-max trick in
    another form): exactly a draw from p. Unlike an inverse-CDF draw, whose threshold sums
    thousands of tail probabilities (a rounding difference of 1e-6 there moves a draw across
    tokens: 4 of 160 SmolLM2 samples changed with the batch's padding), the race is decided by its
    two best ratios alone, which almost never lie within rounding of each other.
    """
    noise = torch.empty_like(probs)
    for row, generator in zip(noise, generators):
        row.uniform_(generator=generator)
    return (-torch.log(noise) / probs).argmin(dim=-1)


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """`probs` restricted to each row's nucleus: the most likely tokens whose mass first reaches `top_p`,
    renormalised (Holtzman et al. 2020, arXiv 1904.09751). Pure sampling draws from the whole tail, and a 135M
    model's unlikely tokens are what turns its free-form samples into text that never ends (issue 31)."""
    if top_p >= 1.0:
        return probs
    ordered, order = probs.sort(dim=-1, descending=True)
    outside = ordered.cumsum(dim=-1) - ordered >= top_p  # the mass before a token already reaches top_p
    ordered = ordered.masked_fill(outside, 0.0)
    kept = torch.zeros_like(probs).scatter(-1, order, ordered)
    return kept / kept.sum(dim=-1, keepdim=True)


def adapter_identity(path: str | Path) -> str:
    """A saved adapter's identity, a hash of its config and weights: equal for the same model, wherever it is stored."""
    files = ("adapter_config.json", "adapter_model.safetensors")
    return hashlib.sha256(b"".join((Path(path) / f).read_bytes() for f in files)).hexdigest()


class LocalLM:
    """A loaded model + tokenizer with batched, cache-sharing inference (`model` None: the tokenizer only,
    for rendering prompts and counting tokens where the model work runs elsewhere)."""

    def __init__(self, model, tokenizer, batch_size: int = 8, show_progress: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.eos_id = tokenizer.eos_token_id

    @contextmanager
    def base_model(self) -> Iterator[None]:
        """Run the enclosed calls on the base model with the adapter switched off (e.g. the judge)."""
        if hasattr(self.model, "disable_adapter"):
            with self.model.disable_adapter():
                yield
        else:
            yield

    # ---- adapters: what the stages and the crossfit recipe switch between -----------------------
    supports_logprobs = True  # continuation_logprobs works (held-out loss, the agreement judge)

    def new_adapter(self, rows: Sequence[dict], cfg, desc: str = "train"):
        """A fresh LoRA adapter on the base model, trained on `rows`; returns (adapter model, TrainResult)."""
        from clearcurate.llm.lora import attach_lora, train_lora

        adapted = attach_lora(self.model, cfg)
        return adapted, train_lora(adapted, self.tokenizer, rows, cfg, desc=desc)

    def open_adapter(self, path: str | Path):
        """A saved adapter on top of the base model (not yet in use: see `using`)."""
        from peft import PeftModel

        from clearcurate.llm.models import peft_quietly

        with peft_quietly():
            return PeftModel.from_pretrained(self.model, path)

    @contextmanager
    def using(self, adapted) -> Iterator[None]:
        """Run the enclosed calls on `adapted`, merged into the weights (inference at base-model
        speed); afterwards the adapter is dropped and the base model is back, bit for bit.

        Unmerging alone leaves float rounding in the weights (W + BA - BA != W), which would make
        every later result depend on which adapters were used before: the merged layers' base
        weights are copied before and restored after.
        """
        saved = {name: p.detach().clone() for name, p in adapted.named_parameters() if ".base_layer." in name}
        adapted.merge_adapter()
        self.model = adapted
        try:
            yield
        finally:
            adapted.unmerge_adapter()
            with torch.no_grad():
                for name, p in adapted.named_parameters():
                    if name in saved:
                        p.copy_(saved[name])
            self.model = adapted.unload()

    def fine_tune(self, rows: Sequence[dict], cfg, out_dir: str | Path, name: str) -> None:
        """Train a LoRA adapter on `rows` and write it (with its training log) to `out_dir`."""
        from accelerate import PartialState

        from clearcurate.llm.lora import save_adapter

        adapted, result = self.new_adapter(rows, cfg, desc=name)
        if PartialState().is_main_process:  # under `accelerate launch` (DDP) every process trains; one writes
            save_adapter(adapted, out_dir, result, cfg, rows)

    def load_adapters(self, adapters: Mapping[str, str | Path]) -> dict[str, str]:
        """Put trained adapters on the base model under their names (switch with `use_adapter`);
        returns each one's identity (a hash of its weights), so identical models are run once."""
        from peft import PeftModel

        from clearcurate.llm.models import peft_quietly

        identity = {}
        for name, path in adapters.items():
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(path, adapter_name=name)
            else:
                with peft_quietly():
                    self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            identity[name] = adapter_identity(path)
        return identity

    def use_adapter(self, name: str) -> None:
        """Run the next calls on the adapter loaded as `name` (`base_model()` still switches it off)."""
        self.model.set_adapter(name)

    def drop_adapters(self) -> None:
        """Remove every loaded adapter (none is merged): the base model is back, bit for bit."""
        self.model = self.model.unload() if hasattr(self.model, "unload") else self.model

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (CPU or a GPU); every input tensor is built there."""
        return next(self.model.parameters()).device

    def chat(self, user: str, assistant_prefix: str = "", history: Sequence[tuple[str, str]] = ()) -> str:
        """Render a prompt with the model's chat template, ending inside the assistant turn."""
        clean = lambda text: neutralize_special_tokens(self.tokenizer, text)  # noqa: E731
        messages: list[dict[str, str]] = []
        for question, answer in history:
            messages += [{"role": "user", "content": clean(question)}, {"role": "assistant", "content": clean(answer)}]
        messages.append({"role": "user", "content": clean(user)})
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + assistant_prefix

    def _encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
        enc["position_ids"] = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        return {name: tensor.to(self.device) for name, tensor in enc.items()}

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _batches(self, order: list[int], desc: str):
        """Batches of indices; callers pass them longest-first so similar lengths share a batch."""
        starts = range(0, len(order), self.batch_size)
        bar = tqdm(starts, desc=desc, disable=not self.show_progress, unit="batch", leave=False)
        for start in bar:
            yield order[start : start + self.batch_size]

    def _by_length(self, texts: Sequence[str]) -> list[int]:
        return sorted(range(len(texts)), key=lambda i: -len(texts[i]))

    def _extend(self, cache, attention: torch.Tensor, suffixes: list[list[int]]):
        """Run right-padded suffix tokens through a cached prefix; returns their logits."""
        width = max(len(s) for s in suffixes)
        ids = torch.full((len(suffixes), width), self.tokenizer.pad_token_id)
        mask = torch.zeros((len(suffixes), width), dtype=attention.dtype)
        for r, s in enumerate(suffixes):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        start = attention.sum(dim=1, keepdim=True)
        position = start + torch.arange(width, device=self.device)[None, :]
        attention = torch.cat([attention, mask], dim=1)
        out = self.model(input_ids=ids, attention_mask=attention, position_ids=position, cache=cache, use_cache=True)
        return out.logits.float()

    @torch.inference_mode()
    def sample(
        self,
        prompts: Sequence[str],
        n: int = 1,
        temperature: float = 1.0,
        max_new_tokens: int | Sequence[int] = 32,
        seed: int = 0,
        desc: str = "generate",
        given: Sequence[str] | None = None,
        top_p: float = 1.0,
    ) -> list[Sampled]:
        """k = `n` continuations per prompt (temperature 0: greedy, use n=1), each token drawn from the
        tempered distribution's `top_p` nucleus (1: all of it).

        `max_new_tokens` is one budget for all prompts or one per prompt (see clearcurate.core.budget).
        With `given`, also returns log p(given[i] + end-of-turn | prompts[i]). A prompt's samples
        depend on `seed`, the prompt, the model and the device only (`sequence_generators`); a
        smaller budget cuts the same samples shorter.
        """
        budgets = per_prompt(max_new_tokens, len(prompts))
        out: list[Sampled | None] = [None] * len(prompts)
        for idx in self._batches(self._by_length(prompts), desc):
            batch_given = [given[i] for i in idx] if given is not None else None
            batch_prompts, batch_budgets = [prompts[i] for i in idx], [budgets[i] for i in idx]
            generators = sequence_generators(batch_prompts, n, seed, self.device) if temperature > 0 else None
            results = self._sample_batch(batch_prompts, n, temperature, batch_budgets, generators, batch_given, top_p)
            for i, result in zip(idx, results):
                out[i] = result
        return out  # type: ignore[return-value]

    def _sample_batch(
        self,
        prompts: list[str],
        n: int,
        temperature: float,
        budgets: list[int],
        generators: list[torch.Generator] | None,
        given: list[str] | None,
        top_p: float = 1.0,
    ) -> list[Sampled]:
        """One batch of `sample`; sequence r * n + j draws from `generators[r * n + j]` (None: greedy)."""
        enc = self._encode(prompts)
        result = self.model(**enc, use_cache=True, logits_to_keep=1)
        cache = result.cache
        logits = result.logits[:, -1, :].float()
        attention = enc["attention_mask"]
        given_lp: list[float | None] = [None] * len(prompts)
        given_n: list[int | None] = [None] * len(prompts)
        if given is not None:  # teacher-force the given responses on the cached prompt, then undo
            suffixes = [[*self._ids(g), self.eos_id] for g in given]
            cont_logits = self._extend(cache, attention, suffixes)
            cache.crop(-cont_logits.shape[1])
            for r, s in enumerate(suffixes):  # token 0 is predicted by the prompt's last logits, token t by the suffix's t-1
                given_lp[r] = _sequence_logprob(torch.cat([logits[r : r + 1], cont_logits[r, : len(s) - 1]]), s)
                given_n[r] = len(s)
            del cont_logits
        position = enc["position_ids"][:, -1]
        if n > 1:  # prefill once, then share the prompt's KV cache across the n samples
            cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, dim=0)
            attention = attention.repeat_interleave(n, dim=0)
            position = position.repeat_interleave(n, dim=0)
        rows = logits.shape[0]
        budget = [b for b in budgets for _ in range(n)]  # per generated row
        tokens: list[list[int]] = [[] for _ in range(rows)]
        total_lp = [0.0] * rows
        alive = list(range(rows))  # rows still generating; finished ones leave the batch
        for _ in range(max(budget)):
            logprobs = torch.log_softmax(logits, dim=-1)
            if generators is not None:
                probs = nucleus(torch.softmax(logits / temperature, dim=-1), top_p)
                nxt = exponential_race(probs, [generators[row] for row in alive])
            else:
                nxt = logits.argmax(dim=-1)
            step_lp = logprobs.gather(-1, nxt[:, None]).squeeze(-1).tolist()
            keep: list[int] = []
            for j, (row, tok) in enumerate(zip(alive, nxt.tolist())):
                total_lp[row] += step_lp[j]
                if tok != self.eos_id:
                    tokens[row].append(tok)
                    if len(tokens[row]) < budget[row]:
                        keep.append(j)
            if not keep:
                break
            if len(keep) < len(alive):
                keep_t = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(keep_t)
                nxt, attention, position = nxt[keep_t], attention[keep_t], position[keep_t]
                alive = [alive[j] for j in keep]
            attention = torch.cat([attention, torch.ones(len(alive), 1, dtype=attention.dtype, device=self.device)], dim=1)
            position = position + 1
            step = self.model(
                input_ids=nxt[:, None], attention_mask=attention, position_ids=position[:, None], cache=cache, use_cache=True
            )
            cache = step.cache
            logits = step.logits[:, -1, :].float()
        gens = [
            Generation(self.tokenizer.decode(t, skip_special_tokens=True).strip(), lp, len(t))
            for t, lp in zip(tokens, total_lp)
        ]
        return [Sampled(gens[r * n : (r + 1) * n], given_lp[r], given_n[r]) for r in range(len(prompts))]

    def greedy(self, prompts: Sequence[str], max_new_tokens: int | Sequence[int] = 32, desc: str = "generate") -> list[str]:
        """The most likely continuation of each prompt (greedy decoding)."""
        return [s.generations[0].text for s in self.sample(prompts, 1, 0.0, max_new_tokens, desc=desc)]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text under the model's tokenizer (for generation budgets)."""
        return [len(self._ids(t)) for t in texts]

    @torch.inference_mode()
    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "logprob"
    ) -> list[tuple[float, int]]:
        """(log p(continuation + end-of-turn | prompt), its token count) per pair, one forward pass per batch.

        Left padding puts every continuation at the end of its row, so logits are computed only
        for the last (longest continuation + 1) positions.
        """
        if len(prompts) != len(continuations):
            raise ValueError("need one continuation per prompt")
        out: list[tuple[float, int]] = [(0.0, 0)] * len(prompts)
        full = [p + c for p, c in zip(prompts, continuations)]
        for idx in self._batches(self._by_length(full), desc):
            suffixes = [[*self._ids(continuations[i]), self.eos_id] for i in idx]
            seqs = [self._ids(prompts[i]) + s for i, s in zip(idx, suffixes)]
            width, keep = max(map(len, seqs)), max(map(len, suffixes)) + 1
            ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, seq in enumerate(seqs):
                ids[r, width - len(seq) :] = torch.tensor(seq)
                mask[r, width - len(seq) :] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            position = (mask.cumsum(-1) - 1).clamp(min=0)
            res = self.model(input_ids=ids, attention_mask=mask, position_ids=position, logits_to_keep=keep)
            for r, (i, s) in enumerate(zip(idx, suffixes)):  # the last keep-1 logits predict the last keep-1 tokens
                out[i] = (_sequence_logprob(res.logits[r, keep - 1 - len(s) : keep - 1], s), len(s))
        return out

    @torch.inference_mode()
    def choice_probs(
        self,
        prompts: Sequence[str],
        choices: Sequence[str],
        desc: str = "choose",
        followup: Callable[[int, str], str] | None = None,
    ) -> list[np.ndarray]:
        """P(next token = each choice), renormalised over the choices; one forward pass per batch.

        With `followup(i, letter)` (the text that continues prompt i after its most likely letter,
        up to where the next letter is read), a second question is asked in the same conversation
        on top of the first one's KV cache. Returns one array per question, shape (rows, choices).
        """
        ids = [self._ids(c) for c in choices]
        if any(len(i) != 1 for i in ids):
            raise ValueError(f"each choice must be a single token, got {dict(zip(choices, ids))}")
        choice_ids = torch.tensor([i[0] for i in ids], device=self.device)
        rounds = 2 if followup else 1
        out = [np.zeros((len(prompts), len(choices))) for _ in range(rounds)]
        for idx in self._batches(self._by_length(prompts), desc):
            enc = self._encode([prompts[i] for i in idx])
            res = self.model(**enc, use_cache=followup is not None, logits_to_keep=1)
            first = torch.softmax(res.logits[:, -1, choice_ids].float(), dim=-1)
            out[0][idx] = first.cpu().numpy()
            if followup is None:
                continue
            suffixes = [self._ids(followup(i, choices[int(first[r].argmax())])) for r, i in enumerate(idx)]
            logits = self._extend(res.cache, enc["attention_mask"], suffixes)
            last = torch.tensor([len(s) - 1 for s in suffixes], device=self.device)
            second = logits[torch.arange(len(idx), device=self.device), last][:, choice_ids]
            out[1][idx] = torch.softmax(second, dim=-1).cpu().numpy()
        return out
