"""Resolving `model.name` into a prepared safetensors directory, loading it, and picking the device."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from clearcurate.llm.models import (
    KEEP_CONVERSIONS,
    MODEL_CACHE_ENV,
    _tiny_model,
    cached_conversion,
    convert_to_safetensors,
    load,
    pick_device,
)


def test_the_tiny_preset_is_a_safetensors_llama_with_the_smollm2_tokenizer(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".py", ".gguf"))]  # safetensors only, no code
    assert not list(tiny_model_dir.parent.glob(f".{tiny_model_dir.name}*"))  # no temporary directory left over
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 2 and config["hidden_size"] == 64

    model, tokenizer = load(tiny_model_dir)
    assert config["vocab_size"] == len(tokenizer) == model.get_input_embeddings().num_embeddings
    assert tokenizer.pad_token is not None and model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert "<|im_start|>" in tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


def test_load_gives_an_eval_model_with_left_padding_in_float32(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("CLEARCURATE_DEVICE", "cpu")
    model, tokenizer = load(tiny_model_dir)
    assert not model.training  # dropout off: scores are deterministic
    assert tokenizer.padding_side == "left"  # batched generation continues right after each prompt
    assert {p.dtype for p in model.parameters()} == {torch.float32} and model.device == torch.device("cpu")


def test_the_tiny_preset_is_exactly_the_seeded_random_model(tiny_model_dir):
    saved = load_file(tiny_model_dir / "model.safetensors")
    vocab = json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]
    same, other = _tiny_model(vocab, seed=0).state_dict(), _tiny_model(vocab, seed=1).state_dict()
    for name, tensor in saved.items():  # the tied lm_head is stored once
        torch.testing.assert_close(tensor, same[name], rtol=0, atol=0)
    assert not torch.equal(saved["model.embed_tokens.weight"], other["model.embed_tokens.weight"])


def test_a_built_in_model_is_converted_once_per_machine_and_copied_after(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path / "cache"))
    first = convert_to_safetensors("tiny", tmp_path / "a", seed=0)
    kept = cached_conversion("tiny", 0)
    assert kept.parent == tmp_path / "cache" and (kept / "config.json").is_file()
    assert not list(kept.parent.glob(".*"))  # no temporary folder left over
    with caplog.at_level("INFO", logger="clearcurate.llm.models"):
        second = convert_to_safetensors("tiny", tmp_path / "b", seed=0)
    assert f"kept in {kept}" in caplog.text
    files = lambda d: {p.name: p.read_bytes() for p in d.iterdir()}  # noqa: E731
    assert files(first) == files(second) == files(kept)
    assert cached_conversion("tiny", 1) != kept  # another seed is another model
    for seed in (1, 2, 3):  # older conversions go, the newest few stay
        convert_to_safetensors("tiny", tmp_path / f"seed{seed}", seed=seed)
    assert not kept.exists() and len(list(kept.parent.glob("tiny-*"))) == KEEP_CONVERSIONS
    assert cached_conversion(str(tmp_path / "a"), 0) is None  # a user's own model: converted where it is
    monkeypatch.setenv(MODEL_CACHE_ENV, "off")
    assert cached_conversion("tiny", 0) is None


@pytest.mark.parametrize("name", ["./no-such-model", "/no/such/model/dir"])
def test_a_missing_local_model_directory_is_a_clear_error_and_writes_nothing(name, tmp_path):
    out = tmp_path / "base"
    with pytest.raises(FileNotFoundError, match=f"model.name '{name}': no such directory"):
        convert_to_safetensors(name, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_missing_gguf_file_is_a_clear_error_and_writes_nothing(tmp_path):
    out = tmp_path / "base"
    with pytest.raises(FileNotFoundError, match="no such GGUF file"):
        convert_to_safetensors(str(tmp_path / "model.Q4_K_M.gguf"), out)
    assert not out.exists()


def test_an_unprepared_directory_is_not_loaded(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not a model")
    with pytest.raises(FileNotFoundError, match="not a prepared model directory: run `dvc repro prepare`"):
        load(tmp_path)


def test_the_device_comes_from_clearcurate_device_else_a_gpu_when_there_is_one(monkeypatch):
    monkeypatch.setenv("CLEARCURATE_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "1")  # under accelerate/torchrun: one GPU per process
    for auto in ("auto", "", "  "):
        monkeypatch.setenv("CLEARCURATE_DEVICE", auto)
        assert pick_device() == (torch.device("cuda", 1) if torch.cuda.is_available() else torch.device("cpu"))
    monkeypatch.delenv("CLEARCURATE_DEVICE")
    assert pick_device() == (torch.device("cuda", 1) if torch.cuda.is_available() else torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_asking_for_a_gpu_without_one_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CLEARCURATE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CLEARCURATE_DEVICE=cuda, but torch sees no CUDA GPU"):
        pick_device()
