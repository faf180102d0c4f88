"""runtime.sessions on the tiny model: what a stage's session holds with the local engine, and which model
scores and judges when params name a scorer apart from the model being trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clearcurate.cache import model_fingerprint
from clearcurate.config import parse
from clearcurate.llm.factory import prepare_scorer
from clearcurate.llm.models import convert_to_safetensors
from clearcurate.runtime import sessions
from helpers import ROOT


def params(**scorer):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["model"]["name"] = "tiny"
    raw["scorer"].update(scorer)
    return parse(raw, "params.yaml")


@pytest.fixture(scope="module")
def same_scorer(tmp_path_factory, tiny_model_dir) -> Path:
    """models/scorer as `prepare` writes it when the scorer is the model being trained: a marker only."""
    out = tmp_path_factory.mktemp("scorer") / "scorer"
    prepare_scorer(params(), out)
    return out


@pytest.fixture(scope="module")
def other_scorer(tmp_path_factory) -> Path:
    """Another model's weights (the tiny preset with other random weights)."""
    return convert_to_safetensors("tiny", tmp_path_factory.mktemp("other") / "scorer", seed=1)


def test_a_local_scoring_session_runs_in_this_process_on_the_base_model(tiny_model_dir, same_scorer):
    with sessions.scoring(params(), tiny_model_dir, same_scorer) as s:
        assert s.engine is None and s.placement == {"engine": "local"}
        assert s.model_dir == tiny_model_dir and s.model_id == model_fingerprint(tiny_model_dir)
        assert s.lm.model is not None  # the weights are here: no engine holds them
        assert s.usage() == {}  # a local model has no API usage to report
        assert s.judge is None


def test_a_scorer_apart_from_the_student_scores_and_keys_the_cache_by_its_own_weights(tiny_model_dir, other_scorer):
    with sessions.scoring(params(name="tiny", seed=1), tiny_model_dir, other_scorer) as s:
        assert s.model_dir == other_scorer
        assert s.model_id == model_fingerprint(other_scorer) != model_fingerprint(tiny_model_dir)


def test_the_pairwise_judge_is_the_scorer_only_when_it_is_another_model(tiny_model_dir, same_scorer, other_scorer):
    assert not sessions.separate_judge(tiny_model_dir, same_scorer) and sessions.separate_judge(tiny_model_dir, other_scorer)
    with sessions.trained_model(params(), "correct", tiny_model_dir, judge_from=same_scorer) as s:
        assert s.judge is None and s.model_id == model_fingerprint(tiny_model_dir)
    with sessions.trained_model(params(name="tiny", seed=1), "correct", tiny_model_dir, judge_from=other_scorer) as s:
        assert s.judge is not None and s.judge is not s.lm
        assert s.usage() == {}


def test_auto_corrects_cache_key_changes_with_a_separate_judge_only(tiny_model_dir, same_scorer, other_scorer):
    adapter = tiny_model_dir  # any prepared folder: the key hashes its files
    same = sessions.correction_models_id(tiny_model_dir, adapter, same_scorer)
    assert same == sessions.correction_models_id(tiny_model_dir, adapter, None)  # as before scorers existed
    assert sessions.correction_models_id(tiny_model_dir, adapter, other_scorer) != same
