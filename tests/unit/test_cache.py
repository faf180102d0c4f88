"""The scoring cache: resumable, incremental, and never reused across settings that change a result."""

from __future__ import annotations

import json
import logging
import shutil
import sys

import pytest

from clearcurate import scoring
from clearcurate.cache import ScoreCache, digest, model_fingerprint, source_fingerprint
from clearcurate.llm.lora import LoraTrainConfig
from clearcurate.scoring import ScoreConfig, fewshot_examples, score_rows, store
from clearcurate.scoring.similarity import get_similarity

TRAIN = LoraTrainConfig(batch_size=4, max_length=128, lora_r=4, lora_alpha=8)


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"r{i}", "prompt": f"Question {i}: name a colour.", "response": ["red", "blue", "The sky."][i % 3]}
            for i in range(start, start + n)]


def _score(lm, rows, cache, **cfg):
    recipe = cfg.pop("recipe", "crossfit")
    weights = {"consistency": 1, "reflection": 1, "likelihood": 1} if recipe == "crossfit" else {}
    # max_new_tokens_cap 0: a fixed 3-token sampling budget (the cache logic does not depend on it; 4x less generation)
    config = ScoreConfig(recipe=recipe, k=2, max_new_tokens=3, max_new_tokens_cap=0, fewshot=2, weights=weights, **cfg)
    return score_rows(lm, rows, config, get_similarity("token_f1"), TRAIN, cache=cache, model_id="m")


@pytest.mark.parametrize("recipe", ["crossfit", "paper"])
def test_a_second_run_reads_every_row_from_the_cache(tiny_lm, tmp_path, caplog, recipe):
    rows = _rows(8)
    first = _score(tiny_lm, rows, ScoreCache(tmp_path), recipe=recipe)
    cache = ScoreCache(tmp_path)
    caplog.clear()  # only this run's records (a test before may have left the clearcurate loggers at INFO)
    with caplog.at_level(logging.INFO):
        again = _score(tiny_lm, rows, cache, recipe=recipe)
    assert again == first
    assert cache.misses == {} and cache.hits == {"samples": 8, "reflection": 8}
    assert "train on" not in caplog.text and "reusing the cached adapter" not in caplog.text  # no fold model needed


def test_added_rows_cost_only_themselves_and_reuse_the_fold_adapters(tiny_lm, tmp_path, caplog):
    rows = _rows(30)
    first = {r["id"]: r for r in _score(tiny_lm, rows, ScoreCache(tmp_path))}
    cache = ScoreCache(tmp_path)
    caplog.clear()  # only this run's records (a test before may have left the clearcurate loggers at INFO)
    with caplog.at_level(logging.INFO):
        grown = _score(tiny_lm, rows + _rows(1, start=30), cache)
    assert cache.misses == {"samples": 1, "reflection": 1} and cache.hits == {"samples": 30, "reflection": 30}
    assert "train on" not in caplog.text and "reusing the cached adapter" in caplog.text
    assert [r for r in grown if r["id"] != "r30"] == [first[r["id"]] for r in rows]


def test_changing_a_setting_or_a_response_misses(tiny_lm, tmp_path):
    rows = _rows(24)
    _score(tiny_lm, rows, ScoreCache(tmp_path))
    cache = ScoreCache(tmp_path)
    _score(tiny_lm, rows, cache, temperature=0.7)
    assert cache.misses == {"samples": 24} and cache.hits == {"reflection": 24}
    cache = ScoreCache(tmp_path)  # one edited response: within the folds' tolerance, only that row
    _score(tiny_lm, [{**rows[0], "response": "green"}, *rows[1:]], cache)
    assert cache.misses == {"samples": 1, "reflection": 1}


def test_fold_adapters_are_retrained_when_the_data_changed_a_lot(tiny_lm, tmp_path, caplog):
    _score(tiny_lm, _rows(12), ScoreCache(tmp_path))
    cache = ScoreCache(tmp_path)
    caplog.clear()  # only this run's records (a test before may have left the clearcurate loggers at INFO)
    with caplog.at_level(logging.INFO):
        _score(tiny_lm, _rows(12) + _rows(6, start=12), cache)
    assert caplog.text.count("train on") == 2
    assert cache.misses["samples"] == 18  # new fold models: every row is sampled again


def test_edited_responses_beyond_the_tolerance_retrain_the_folds(tiny_lm, tmp_path, caplog):
    rows = _rows(12)
    _score(tiny_lm, rows, ScoreCache(tmp_path))
    relabelled = [{**r, "response": "green"} if i % 3 == 0 else r for i, r in enumerate(rows)]  # same ids
    caplog.clear()  # only this run's records (a test before may have left the clearcurate loggers at INFO)
    with caplog.at_level(logging.INFO):
        _score(tiny_lm, relabelled, ScoreCache(tmp_path))
    assert caplog.text.count("train on") == 2


def test_a_cache_written_by_other_scoring_code_misses(tiny_lm, tmp_path, caplog, monkeypatch):
    """An older commit never takes rows (or fold adapters) cached by newer scoring code, nor the other way."""
    rows = _rows(12)
    _score(tiny_lm, rows, ScoreCache(tmp_path))
    monkeypatch.setattr(store, "SCORING_VERSION", store.SCORING_VERSION + 1)
    cache = ScoreCache(tmp_path)
    caplog.clear()  # only this run's records (a test before may have left the clearcurate loggers at INFO)
    with caplog.at_level(logging.INFO):
        _score(tiny_lm, rows, cache)
    assert cache.hits == {} and cache.misses == {"samples": 12, "reflection": 12}
    assert caplog.text.count("train on") == 2 and "reusing the cached adapter" not in caplog.text  # new fold slots
    cache = ScoreCache(tmp_path)  # the same code again: every row from the cache
    _score(tiny_lm, rows, cache)
    assert cache.misses == {} and cache.hits == {"samples": 12, "reflection": 12}


def test_the_code_version_follows_the_source_of_the_scoring_modules(tmp_path, monkeypatch):
    module = tmp_path / "scoring_like.py"
    module.write_text("def f():\n    return 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "scoring_like", raising=False)
    before = source_fingerprint(["scoring_like", "clearcurate.core.prompts"])
    assert source_fingerprint(["scoring_like", "clearcurate.core.prompts"]) == before
    module.write_text("def f():\n    return 2\n", encoding="utf-8")
    assert source_fingerprint(["scoring_like", "clearcurate.core.prompts"]) != before
    modules = set(scoring.SCORING_MODULES)
    assert {"clearcurate.scoring", "clearcurate.scoring.samples", "clearcurate.scoring.crossfit", "clearcurate.llm.hf"} <= modules
    assert "clearcurate.scoring.combine" not in scoring.SCORING_MODULES  # it combines cached values: editing it rescores nothing
    assert scoring.code_version().startswith(f"{store.SCORING_VERSION}-")
    with pytest.raises(ValueError, match="no source"):
        source_fingerprint(["clearcurate.no_such_module"])


def test_a_cache_needs_the_model_fingerprint(tiny_lm, tmp_path):
    cfg = ScoreConfig(recipe="paper", k=1, max_new_tokens=2)
    with pytest.raises(ValueError, match="model_id"):
        score_rows(tiny_lm, _rows(2), cfg, get_similarity("token_f1"), cache=ScoreCache(tmp_path))


def test_fewshot_examples_barely_move_when_rows_are_added():
    rows = _rows(40)
    before = fewshot_examples(rows, 3, seed=0)
    after = fewshot_examples(rows + _rows(1, start=40), 3, seed=0)
    changed = sum(a != b for a, b in zip(before, after))
    assert changed <= 3
    assert all(len(s) == 3 and (r["prompt"], r["response"]) not in s for r, s in zip(rows, before))


def test_keys_and_fingerprints_are_stable(tiny_model_dir, tmp_path):
    assert digest({"b": 1, "a": [1, 2]}) == digest({"a": [1, 2], "b": 1}) != digest({"a": [2, 1], "b": 1})
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")  # another path and other mtimes: the same model
    assert model_fingerprint(copy) == model_fingerprint(tiny_model_dir)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "rope_theta": 1.0}))  # other config, same weights
    assert model_fingerprint(copy) != model_fingerprint(tiny_model_dir)
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert model_fingerprint(tmp_path) != model_fingerprint(tiny_model_dir)


def test_an_unreadable_entry_is_recomputed(tmp_path):
    cache = ScoreCache(tmp_path)
    cache.put("samples", "ab" * 32, {"x": 1})
    (tmp_path / "samples" / "ab" / f"{'ab' * 32}.json").write_text("{truncated", encoding="utf-8")
    assert cache.get("samples", "ab" * 32) is None and cache.misses == {"samples": 1}


def test_samples_depend_on_the_row_not_on_chunks_or_resuming(tiny_lm, tmp_path):
    """Per-row seeding: scored in chunks of 2 or of 8, or resumed with half the rows cached, a row gets the same samples.

    Confidences agree to float rounding: the padding of a row's batch moves log-probabilities by ~1e-6.
    """
    import shutil

    from clearcurate.llm.hf import LocalLM

    rows = _rows(12)
    first = _score(LocalLM(tiny_lm.model, tiny_lm.tokenizer, batch_size=4, show_progress=False), rows, ScoreCache(tmp_path / "a"))
    shutil.copytree(tmp_path / "a" / "folds", tmp_path / "b" / "folds")  # the same fold models, no cached rows
    ones = LocalLM(tiny_lm.model, tiny_lm.tokenizer, batch_size=1, show_progress=False)
    rechunked = _score(ones, rows, cache := ScoreCache(tmp_path / "b"))
    assert cache.misses == {"samples": 12, "reflection": 12}
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    for entry in sorted((tmp_path / "c" / "samples").glob("*/*.json"))[::2]:  # a run killed halfway
        entry.unlink()
    resumed = _score(ones, rows, cache := ScoreCache(tmp_path / "c"))
    assert cache.misses == {"samples": 6}
    for again in (rechunked, resumed):
        assert [r["samples"] for r in again] == [r["samples"] for r in first]
        assert [r["confidence"] for r in again] == pytest.approx([r["confidence"] for r in first], abs=1e-6)


def test_failed_rows_are_recorded_with_their_reasons(tmp_path):
    from clearcurate.core.records import read_jsonl
    from clearcurate.llm.base import RowsFailed

    failures = {f"r{i}": f"samples: ValueError: reason {i}" for i in range(7)}
    path = ScoreCache(tmp_path).record_failures(failures)
    assert read_jsonl(path) == [{"id": k, "reason": v} for k, v in failures.items()]
    message = str(RowsFailed(failures))
    assert message.startswith("7 rows failed: r0: samples: ValueError: reason 0;") and message.endswith("(and 2 more)")
