"""evaluate's model work: each model's greedy answer and held-out loss per test row, the same for any split into blocks."""

from clearcurate.answers import BASE, model_answers
from helpers import assert_same_records


def test_answers_do_not_depend_on_the_rows_computed_with_them(tiny_lm):
    """What the Ray engine relies on: it answers test rows in blocks, the local engine all at once."""
    rows = [{"id": f"t{i}", "prompt": tiny_lm.chat(f"Question {i}{'?' * i}"), "reference": ["red", "a deep blue"][i % 2],
             "max_new_tokens": 2 + i % 3} for i in range(5)]
    whole = model_answers(tiny_lm, rows, [BASE], with_loss=True)
    assert all(set(a) == {BASE} and isinstance(a[BASE]["text"], str) and a[BASE]["nll"] > 0 for a in whole)
    assert_same_records(model_answers(tiny_lm, rows[:2], [BASE], True) + model_answers(tiny_lm, rows[2:], [BASE], True), whole)
    assert [a[BASE]["nll"] for a in model_answers(tiny_lm, rows, [BASE], with_loss=False)] == [None] * len(rows)


def test_one_pass_answers_equal_separate_greedy_decoding_and_reference_loss(tiny_lm):
    """evaluate scores the reference on the prompt's KV cache before decoding: the same as two separate passes."""
    rows = [{"id": f"t{i}", "prompt": tiny_lm.chat(f"Name colour number {i}{'!' * i}"), "reference": ["red", "a deep blue sea"][i % 2],
             "max_new_tokens": 3 + i % 2} for i in range(5)]
    answers = model_answers(tiny_lm, rows, [BASE], with_loss=True)
    prompts = [r["prompt"] for r in rows]
    with tiny_lm.base_model():
        texts = tiny_lm.greedy(prompts, [r["max_new_tokens"] for r in rows])
        pairs = tiny_lm.continuation_logprobs(prompts, [r["reference"] for r in rows])
    assert [a[BASE]["text"] for a in answers] == texts
    for a, (logprob, tokens) in zip(answers, pairs):
        assert abs(a[BASE]["nll"] - (-logprob / tokens)) < 1e-4


def test_answers_are_cached_by_model_and_rows_and_reused(tiny_lm, tmp_path):
    """A filter experiment changes one model: evaluate answers with it alone and reuses the others' answers."""
    from clearcurate.answers import cached_answers
    from clearcurate.cache import ScoreCache

    rows = [{"id": f"t{i}", "prompt": tiny_lm.chat(f"Question {i}"), "reference": "red", "max_new_tokens": 2} for i in range(3)]
    cache = ScoreCache(tmp_path)
    first, reused = cached_answers(tiny_lm, None, rows, {BASE: BASE}, True, {}, cache, "model-a")
    assert reused == [] and first == model_answers(tiny_lm, rows, [BASE], True)
    again, reused = cached_answers(tiny_lm, None, rows, {BASE: BASE}, True, {}, cache, "model-a")
    assert reused == [BASE] and again == first and cache.hits == {"answers": 1}
    other_rows = [*rows[:2], {**rows[2], "reference": "blue"}]  # another reference: another held-out loss, recomputed
    _, reused = cached_answers(tiny_lm, None, other_rows, {BASE: BASE}, True, {}, cache, "model-a")
    assert reused == []
    _, reused = cached_answers(tiny_lm, None, rows, {BASE: BASE}, True, {}, cache, "model-b")  # other base weights
    assert reused == []
