"""The stage's model from params: loaded whole, or only its tokenizer where the model work runs on Ray."""

from __future__ import annotations

import torch

from clearcurate.cache import model_fingerprint
from clearcurate.config import parse
from clearcurate.llm.factory import SAME_AS_BASE, load_lm, load_scorer, prepare_scorer, scorer_dir


def test_a_ray_driver_gets_the_tokenizer_without_the_weights(tiny_model_dir, tiny_lm):
    driver = load_lm(parse({"model": {"batch_size": 3}}), tiny_model_dir, weights=False)
    assert driver.model is None and driver.tokenizer.padding_side == "left" and driver.batch_size == 3
    texts = ["Name a colour.", "What is 2 + 2?"]
    assert [driver.chat(t) for t in texts] == [tiny_lm.chat(t) for t in texts]  # prompts rendered as the actors will
    assert driver.token_counts(texts) == tiny_lm.token_counts(texts)
    whole = load_lm(parse({}), tiny_model_dir)
    assert whole.model is not None and whole.token_counts(texts) == driver.token_counts(texts)


def test_the_scorer_is_the_model_being_trained_unless_params_name_another(tiny_model_dir, tmp_path):
    same = parse({"model": {"name": "tiny"}})
    prepare_scorer(same, tmp_path / "same")
    assert [f.name for f in (tmp_path / "same").iterdir()] == [SAME_AS_BASE]  # a marker, not a second copy of the weights
    assert scorer_dir(tiny_model_dir, tmp_path / "same") == tiny_model_dir
    scorer = load_scorer(same, tiny_model_dir, tmp_path / "same")
    assert scorer.model is not None  # the base model, so the scoring cache's keys stay those of the base

    other = parse({"model": {"name": "tiny"}, "scorer": {"name": "tiny", "seed": 7}})
    prepare_scorer(other, tmp_path / "other")
    where = scorer_dir(tiny_model_dir, tmp_path / "other")
    assert where == tmp_path / "other" and model_fingerprint(where) != model_fingerprint(tiny_model_dir)
    scorer = load_scorer(other, tiny_model_dir, tmp_path / "other")
    student = load_lm(other, tiny_model_dir)
    assert not torch.equal(scorer.model.model.embed_tokens.weight, student.model.model.embed_tokens.weight)
    assert load_scorer(other, tiny_model_dir, tmp_path / "other", weights=False).model is None
