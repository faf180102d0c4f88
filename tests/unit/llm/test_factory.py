"""The stage's model from params: loaded whole, or only its tokenizer where the model work runs on Ray."""

from __future__ import annotations

from clearcurate.llm.factory import load_lm
from clearcurate.params import parse


def test_a_ray_driver_gets_the_tokenizer_without_the_weights(tiny_model_dir, tiny_lm):
    driver = load_lm(parse({"model": {"batch_size": 3}}), tiny_model_dir, weights=False)
    assert driver.model is None and driver.tokenizer.padding_side == "left" and driver.batch_size == 3
    texts = ["Name a colour.", "What is 2 + 2?"]
    assert [driver.chat(t) for t in texts] == [tiny_lm.chat(t) for t in texts]  # prompts rendered as the actors will
    assert driver.token_counts(texts) == tiny_lm.token_counts(texts)
    whole = load_lm(parse({}), tiny_model_dir)
    assert whole.model is not None and whole.token_counts(texts) == driver.token_counts(texts)
