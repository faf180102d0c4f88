"""params.yaml is validated whole: a typo, a wrong type or an out-of-range value names the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clearcurate.config import Params, ParamsError, load_file, params, parse

ROOT = Path(__file__).resolve().parents[3]


def _error(values: dict) -> str:
    with pytest.raises(ParamsError) as err:
        parse(values)
    return str(err.value)


def test_the_shipped_params_file_is_valid_and_matches_the_code_defaults() -> None:
    shipped = load_file(ROOT / "params.yaml")
    assert shipped.score.weights == "auto" and shipped.filter.quantile == 0.2
    # every key in params.yaml is a field of its section (nothing is read only by accident)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert set(raw) == set(params._valid_keys(()))


def test_dvc_exp_run_set_param_changes_only_the_value_it_sets(tmp_path: Path) -> None:
    """Issue 31: `dvc exp run -S` rewrites params.yaml with its own YAML dumper; params.yaml is written the way
    that dumper writes (block lists, empty nulls), so an experiment's diff is the one value it set."""
    from dvc.utils.hydra import apply_overrides

    copy = tmp_path / "params.yaml"
    shipped = (ROOT / "params.yaml").read_text(encoding="utf-8")
    copy.write_text(shipped, encoding="utf-8")
    apply_overrides(str(copy), ["filter.quantile=0.35", "train.max_batch_tokens=1024"])
    before, after = shipped.splitlines(), copy.read_text(encoding="utf-8").splitlines()
    assert len(before) == len(after)
    changed = [(old, new) for old, new in zip(before, after) if old != new]
    assert [new.split("#")[0].strip() for _, new in changed] == ["quantile: 0.35", "max_batch_tokens: 1024"]


@pytest.mark.parametrize("values, message", [
    ({"score": {"alpah": 0.5}}, "score.alpah: unknown key; did you mean score.alpha?"),
    ({"scor": {}}, "scor: unknown key; did you mean score?"),
    ({"train": {"lora_rr": 4}}, "train.lora_rr: unknown key; did you mean train.lora_r?"),
    ({"openai": {"max_concurency": 2}}, "openai.max_concurency: unknown key; did you mean openai.max_concurrency?"),
    ({"validate": {"zzz": 1}}, "validate.zzz: unknown key; valid keys here: strict, min_chars"),
    ({"filter": {"quantile": "abc"}}, "filter.quantile must be a number in [0, 1], 'auto' or null, got 'abc'"),
    ({"filter": {"quantile": 1.5}}, "filter.quantile must be in [0, 1]"),
    ({"score": {"k": -1}}, "score.k must be >= 0, got -1"),
    ({"engine": "spark"}, "engine: Input should be 'local' or 'ray', got 'spark'"),
    ({"score": {"engine": "ray"}}, "score.engine has moved to the top level of params.yaml: write `engine: local` or `engine: ray`"),
    ({"score": {"k": "five"}}, "score.k: Input should be a valid integer"),
    ({"train": {"learning_rate": 0}}, "train.learning_rate must be > 0"),
    ({"model": {"backend": "vllm"}}, "model.backend: Input should be 'hf' or 'openai'"),
    ({"model": {"batch_size": 0}}, "model.batch_size: Input should be greater than or equal to 1"),
    ({"data": {"format": "xml"}}, "data.format must be one of"),
    ({"data": {"columns": {"question": "q"}}}, "data.columns maps unknown fields ['question']"),
    ({"correct": {"beta": 0.5}}, "beta is not a correct key: the pairwise judge uses score.beta"),
    ({"openai": {"api_key": "sk-123"}}, "api_key must not be in params"),
    ({"evaluate": {"max_new_tokens": 0}}, "evaluate.max_new_tokens: Input should be greater than or equal to 1"),
    ({"score": {"defects": ["refusl"]}}, "score.defects names unknown checks: 'refusl' (did you mean 'refusal'?)"),
    ({"score": {"fold_by": ""}}, "score.fold_by must be id, prompt or another row field"),
    ({"scorer": {"backend": "vllm"}}, "scorer.backend: Input should be 'hf' or 'openai'"),
    ({"scorer": {"nmae": "x"}}, "scorer.nmae: unknown key; did you mean scorer.name?"),
])
def test_each_problem_names_the_key(values: dict, message: str) -> None:
    assert message in _error(values)


def test_the_engine_is_one_top_level_setting_and_ray_needs_a_local_model() -> None:
    assert parse({}).engine == "local" and parse({"engine": "ray"}).engine == "ray"
    api = {"model": {"backend": "openai"}, "score": {"recipe": "paper"}, "correct": {"judge": "pairwise"}}
    assert parse({**api, "engine": "local"}).engine == "local"
    message = "engine: ray runs the local model on a Ray cluster; with model.backend: openai use engine: local"
    assert message in _error({**api, "engine": "ray"})


def test_a_scorer_apart_from_the_student_is_checked_with_the_rest() -> None:
    assert not parse({}).scorer.separate() and parse({}).scorer_backend() == "hf"
    endpoint = {"scorer": {"backend": "openai", "name": "Qwen/Qwen2.5-7B-Instruct"}}
    assert "with scorer.backend: openai use score.recipe: paper" in _error(endpoint)
    p = parse({**endpoint, "score": {"recipe": "paper"}})
    assert p.scorer.separate() and p.scorer_backend() == "openai" and p.model.backend == "hf"
    local = {"scorer": {"name": "models/qwen2.5-1.5b-instruct"}, "engine": "ray", "correct": {"judge": "pairwise"}}
    assert "correct.judge: pairwise with a separate scorer runs the judge in the stage" in _error(local)
    assert parse({**local, "correct": {"judge": "agreement"}}).scorer.name == "models/qwen2.5-1.5b-instruct"


def test_every_problem_is_reported_at_once() -> None:
    text = _error({"score": {"alpah": 1}, "model": {"nmae": "x"}})
    assert "score.alpah" in text and "model.nmae" in text


def test_missing_keys_take_the_defaults_and_sections_are_typed() -> None:
    p = parse({"train": {"target_modules": ["q_proj"]}, "filter": {"quantile": "auto"}})
    assert p.train.target_modules == ("q_proj",) and p.filter.quantile == "auto"
    assert p == Params(train=p.train, filter=p.filter)
    assert p.correct_config().beta == p.score.beta
    assert p.ingest().strict is False


def test_a_broken_file_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("score: [unclosed\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_file(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="expected a mapping"):
        load_file(bad)
    with pytest.raises(ParamsError, match="not found"):
        load_file(tmp_path / "missing.yaml")
