import torch

from clearcurate.training import (
    IGNORE_INDEX,
    LoraTrainConfig,
    _Collator,
    attach_lora,
    encode_example,
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


def test_response_loss_equals_full_logit_cross_entropy(tiny_lm):
    batch = _Collator(tiny_lm.tokenizer.pad_token_id)(
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


def test_max_steps_fixes_the_budget_and_training_lowers_the_loss(tiny_model_dir):
    from clearcurate.llm.models import load

    model, tok = load(tiny_model_dir)
    cfg = LoraTrainConfig(max_steps=6, batch_size=3, learning_rate=5e-3)
    peft_model = attach_lora(model, cfg)
    result = train_lora(peft_model, tok, ROWS, cfg)
    assert result.steps == 6
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert losses[-1] < losses[0]
