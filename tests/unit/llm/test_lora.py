import json

import pytest
import torch

from clearcurate.llm.lora import (
    IGNORE_INDEX,
    LoraTrainConfig,
    _Collator,
    attach_lora,
    encode_example,
    fit_lengths,
    micro_batches,
    response_loss,
    train_lora,
)

ROWS = [{"prompt": f"Question {i}: what colour is the sky?", "response": "blue" if i % 2 else "The sky is blue."} for i in range(6)]


def test_labels_cover_only_the_response_and_end_of_turn(tiny_lm):
    tok = tiny_lm.tokenizer
    ex = encode_example(tok, "What colour is the sky?", "blue", max_length=512)
    labelled = [t for t in ex["labels"] if t != IGNORE_INDEX]
    assert tok.decode(labelled) == "blue" + tok.eos_token
    assert ex["input_ids"][-len(labelled) :] == labelled


def test_long_prompts_are_cut_from_the_left(tiny_lm):
    ex = encode_example(tiny_lm.tokenizer, "word " * 400, "blue", max_length=64)
    assert len(ex["input_ids"]) == 64 and ex["labels"][-2:] == ex["input_ids"][-2:]


def test_a_row_that_fits_keeps_everything_and_a_shorter_response_keeps_the_old_left_cut():
    assert fit_lengths(100, 20, 320) == (100, 20)
    assert fit_lengths(400, 20, 320) == (300, 20)  # the prompt's left is cut, the response whole
    assert fit_lengths(400, 240, 320) == (80, 240)  # down to a quarter of the window


def test_a_long_response_loses_its_tail_never_its_prompt():
    assert fit_lengths(30, 1000, 320) == (30, 290)  # a short prompt stays whole
    assert fit_lengths(500, 1000, 320) == (80, 240)  # a long one keeps a quarter of the window
    assert fit_lengths(100, 250, 320) == (80, 240)
    assert fit_lengths(1, 5000, 8) == (1, 7)
    for prompt, response in ((1, 1), (3, 400), (400, 3), (319, 319), (5, 321), (2, 2)):
        for window in (2, 3, 8, 320):
            p, r = fit_lengths(prompt, response, window)
            assert p >= 1 and r >= 1 and p + r <= window and p <= prompt and r <= response


def test_a_response_longer_than_max_length_trains_with_its_prompt_and_no_end_of_turn(tiny_lm):
    """Issue 27: such a row once lost its whole prompt, and the batch's loss crashed on a shape mismatch."""
    tok = tiny_lm.tokenizer
    long_response = " ".join(f"word{i}" for i in range(300))
    ex = encode_example(tok, "Write a long essay.", long_response, max_length=64)
    labelled = [t for t in ex["labels"] if t != IGNORE_INDEX]
    assert len(ex["input_ids"]) == 64 and 0 < len(labelled) < 64
    assert tok.decode(ex["input_ids"][: 64 - len(labelled)]).rstrip().endswith("Write a long essay.<|im_end|>\n<|im_start|>assistant")
    assert tok.eos_token_id not in labelled  # cut text never teaches the model to stop there
    assert long_response.startswith(tok.decode(labelled).strip())
    rows = [ex, encode_example(tok, "Short?", "Yes.", max_length=64)]
    batch = _Collator(tok.pad_token_id).pad(rows)
    with torch.no_grad():
        loss = response_loss(tiny_lm.model, batch)
    assert torch.isfinite(loss)


def test_the_collator_refuses_a_row_without_a_prompt(tiny_lm):
    import pytest

    with pytest.raises(ValueError, match="no prompt token"):
        _Collator(tiny_lm.tokenizer.pad_token_id)([{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}])


def test_response_loss_equals_full_logit_cross_entropy(tiny_lm):
    batch = _Collator(tiny_lm.tokenizer.pad_token_id).pad(
        [encode_example(tiny_lm.tokenizer, r["prompt"], r["response"], 256) for r in ROWS[:3]]
    )
    with torch.no_grad():
        fast = response_loss(tiny_lm.model, batch)
        logits = tiny_lm.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
        ).logits
        full = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
        )
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)


def test_micro_batches_pack_rows_longest_first_within_the_token_budget():
    lengths = [50, 300, 120, 80, 200, 60]
    parts = micro_batches(lengths, 512)
    assert sorted(i for part in parts for i in part) == list(range(6))  # every row once
    assert parts[0] == [1]  # 300 tokens: a second row would make 2 x 300 padded tokens
    for part in parts:
        assert [lengths[i] for i in part] == sorted((lengths[i] for i in part), reverse=True)
        assert len(part) == 1 or len(part) * max(lengths[i] for i in part) <= 512
    assert micro_batches([900, 10], 512) == [[0], [1]]  # a row over the budget runs alone
    assert micro_batches(lengths, 0) == [[1, 4, 2, 3, 5, 0]]  # 0: one part


def test_micro_batches_give_the_whole_batch_gradient(tiny_model_dir):
    """Issue 31: a batch split into micro-batches (for memory) must train as the whole batch does."""
    from clearcurate.llm.models import load

    base, tok = load(tiny_model_dir)
    rows = [encode_example(tok, r["prompt"] * (1 + i % 3), r["response"], 256) for i, r in enumerate(ROWS)]
    model = attach_lora(base, LoraTrainConfig(lora_r=4, target_modules=("q_proj", "v_proj")))
    whole = _Collator(tok.pad_token_id).pad(rows)
    response_loss(model, whole).backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    split = _Collator(tok.pad_token_id, max_tokens=3 * len(whole["input_ids"][0]) // 2)(rows)
    assert len(split["parts"]) > 1
    targets = int((whole["labels"] != IGNORE_INDEX).sum())
    total = sum(response_loss(model, part, targets) for part in split["parts"])
    total.backward()
    torch.testing.assert_close(total, response_loss(model, whole).detach(), atol=1e-5, rtol=1e-5)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            torch.testing.assert_close(parameter.grad, expected[name], atol=1e-5, rtol=1e-4)


def test_training_in_micro_batches_follows_the_same_losses(tiny_model_dir):
    from clearcurate.llm.models import load

    histories, forwards = [], []
    for max_tokens in (0, 40):
        model, tok = load(tiny_model_dir)
        calls = [0]
        model.register_forward_hook(lambda *_, calls=calls: calls.__setitem__(0, calls[0] + 1))
        cfg = LoraTrainConfig(max_steps=4, batch_size=3, learning_rate=5e-3, precision="fp32", max_batch_tokens=max_tokens)
        result = train_lora(attach_lora(model, cfg), tok, ROWS, cfg)
        histories.append([h["loss"] for h in result.history if "loss" in h])
        forwards.append(calls[0])
    assert len(histories[0]) == 4
    assert forwards[1] > forwards[0] >= 4  # 40 tokens a pass did split the batches (else both ran the same path)
    assert histories[0] == pytest.approx(histories[1], rel=1e-4)


def test_max_steps_fixes_the_budget_and_training_lowers_the_loss(tiny_model_dir):
    from clearcurate.llm.models import load

    model, tok = load(tiny_model_dir)
    cfg = LoraTrainConfig(max_steps=6, batch_size=3, learning_rate=5e-3)
    peft_model = attach_lora(model, cfg)
    result = train_lora(peft_model, tok, ROWS, cfg)
    assert result.steps == 6
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert losses[-1] < losses[0]


def test_an_adapter_is_reused_only_for_the_same_rows_and_settings(tiny_model_dir, tmp_path):
    from clearcurate.llm.lora import TrainResult, reuse_adapter, save_adapter
    from clearcurate.llm.models import load

    model, _ = load(tiny_model_dir)
    cfg = LoraTrainConfig(max_steps=1, batch_size=2)
    save_adapter(attach_lora(model, cfg), tmp_path / "filtered", TrainResult(rows=4, steps=1, seconds=0.0, precision="fp32"), cfg, ROWS[:4])

    assert not reuse_adapter(tmp_path / "filtered", tmp_path / "a", ROWS[:5], cfg)  # one more row
    assert not reuse_adapter(tmp_path / "filtered", tmp_path / "b", [*ROWS[1:4], ROWS[0]], cfg)  # other order
    changed = [{**ROWS[0], "response": "green"}, *ROWS[1:4]]
    assert not reuse_adapter(tmp_path / "filtered", tmp_path / "c", changed, cfg)  # a corrected response
    assert not reuse_adapter(tmp_path / "filtered", tmp_path / "d", ROWS[:4], LoraTrainConfig(max_steps=2, batch_size=2))
    assert not any((tmp_path / n).exists() for n in "abcd")

    assert reuse_adapter(tmp_path / "filtered", tmp_path / "corrected", [dict(r) for r in ROWS[:4]], cfg)
    src, dst = tmp_path / "filtered" / "adapter_model.safetensors", tmp_path / "corrected" / "adapter_model.safetensors"
    assert dst.read_bytes() == src.read_bytes()
    log = json.loads((tmp_path / "corrected" / "train_log.json").read_text())
    assert log["reused_from"] == str(tmp_path / "filtered")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary directory left


def test_the_same_rows_and_seed_give_the_same_adapter_whatever_ran_before(tiny_model_dir):
    """`dvc repro` of unchanged data must rebuild the same model: the adapter's initialisation and its
    training follow cfg.seed, not whatever the global RNG holds."""
    from clearcurate.llm.models import load

    cfg = LoraTrainConfig(max_steps=3, batch_size=3, learning_rate=5e-3, seed=7)

    def trained(noise_draws: int) -> dict[str, torch.Tensor]:
        torch.rand(noise_draws)  # other work moved the global RNG
        model, tok = load(tiny_model_dir)
        peft_model = attach_lora(model, cfg)
        train_lora(peft_model, tok, ROWS, cfg)
        return {k: v.detach().clone() for k, v in peft_model.state_dict().items() if "lora_" in k}

    first, second = trained(1), trained(1000)
    assert first.keys() == second.keys() and first
    for name in first:
        torch.testing.assert_close(first[name], second[name], atol=0, rtol=0)


def test_the_adapter_initialisation_follows_the_seed(tiny_model_dir):
    from clearcurate.llm.models import load

    def initial(seed: int) -> torch.Tensor:
        model, _ = load(tiny_model_dir)
        state = attach_lora(model, LoraTrainConfig(seed=seed)).state_dict()
        return torch.cat([v.flatten() for k, v in sorted(state.items()) if "lora_A" in k])

    torch.testing.assert_close(initial(3), initial(3), atol=0, rtol=0)
    assert not torch.equal(initial(3), initial(4))
