"""A local .gguf file is a model source (model.name or scorer.name): dequantized once into safetensors."""

from __future__ import annotations

import json

from clearcurate.llm.models import SMOLLM2_GGUF, _smollm2_dir, convert_to_safetensors, load


def test_a_gguf_file_converts_to_the_model_it_holds(tmp_path):
    out = convert_to_safetensors(str(_smollm2_dir() / SMOLLM2_GGUF), tmp_path / "scorer")
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30  # SmolLM2-135M
    assert "quantization_config" not in config
    model, tokenizer = load(out)
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 136_000_000
    assert tokenizer.padding_side == "left" and tokenizer.eos_token == "<|im_end|>"
