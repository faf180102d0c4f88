"""params.yaml as a whole: one typed model of every section, validated whole (typos and conflicts are errors
that name the key), and a stage's view of it (the keys it declares in dvc.yaml)."""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from clearcurate.config.correct import CorrectConfig
from clearcurate.config.data import DataParams, IngestConfig, PrepareParams
from clearcurate.config.filter import FilterConfig
from clearcurate.config.model import EvaluateParams, ModelParams, ScorerParams
from clearcurate.config.openai import OPENAI_RUN_SETTINGS, OpenAIConfig
from clearcurate.config.score import ScoreConfig
from clearcurate.config.train import LoraTrainConfig
from clearcurate.config.validate import ValidateConfig

PARAMS_FILE = Path("params.yaml")


_NOT_IN_PARAMS = {
    "score": {"engine": "has moved to the top level of params.yaml: write `engine: local` or `engine: ray` there, "
                        "not under score (it now covers correct and evaluate too; docs/scale.md)"},
    "correct": {"beta": "is not a correct key: the pairwise judge uses score.beta"},
    "openai": {"api_key": "must not be in params: put the key in the environment variable named by openai.api_key_env"},
}


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Params:
    """The whole of params.yaml. A missing section or key takes the default shown in params.yaml.

    A pydantic dataclass, not a BaseModel: a BaseModel field may not be called `validate`.
    """

    engine: Literal["local", "ray"] = "local"
    model: ModelParams = ModelParams()
    scorer: ScorerParams = ScorerParams()
    data: DataParams = DataParams()
    prepare: PrepareParams = PrepareParams()
    score: ScoreConfig = ScoreConfig()
    filter: FilterConfig = FilterConfig()
    train: LoraTrainConfig = LoraTrainConfig()
    correct: CorrectConfig = CorrectConfig()
    openai: OpenAIConfig = OpenAIConfig()
    validate: ValidateConfig = ValidateConfig()
    evaluate: EvaluateParams = EvaluateParams()

    @field_validator(*_NOT_IN_PARAMS, mode="before")
    @classmethod
    def _not_here(cls, value: Any, info: ValidationInfo) -> Any:
        """Keys that params.yaml must not set in this section (or no longer does), with what to do instead."""
        for key, why in _NOT_IN_PARAMS[info.field_name].items():
            if isinstance(value, dict) and key in value:
                raise ValueError(f"{info.field_name}.{key} {why}")
        return value

    def conflicts(self) -> list[str]:
        """Settings that are valid alone but not together (checked on the whole file only: a stage's
        view holds defaults for the sections it does not declare)."""
        problems = []
        if self.scorer_backend() == "openai" and self.score.recipe != "paper":
            problems.append(f"score.recipe: crossfit trains LoRA fold models locally; with {self.scorer_backend_key()}: openai "
                            "use score.recipe: paper")
        if self.scorer.separate() and self.engine == "ray" and self.correct.judge == "pairwise":
            problems.append("correct.judge: pairwise with a separate scorer runs the judge in the stage, not on the Ray engine: "
                            "use engine: local, or correct.judge: agreement")
        if self.scorer_backend() == "openai" and self.engine == "ray" and self.model.backend != "openai":
            problems.append("scorer.backend: openai scores through the endpoint; with engine: ray use a local scorer (scorer.backend: hf)")
        if self.model.backend == "openai" and self.engine == "ray":
            problems.append("engine: ray runs the local model on a Ray cluster; with model.backend: openai use engine: local")
        if self.model.backend == "openai" and self.correct.judge == "agreement":
            problems.append("correct.judge: agreement compares log-probabilities, which a chat API does not return; "
                            "with model.backend: openai use correct.judge: pairwise")
        return problems

    def scorer_backend(self) -> str:
        """The backend of the model that scores (`scorer.backend`, else `model.backend`)."""
        return self.scorer.backend or self.model.backend

    def scorer_backend_key(self) -> str:
        return "scorer.backend" if self.scorer.backend else "model.backend"

    def ingest(self) -> IngestConfig:
        """How prepare reads the user's files (`data.format`, `data.columns`, `data.encoding`, `prepare.strict`)."""
        return IngestConfig(format=self.data.format, columns=dict(self.data.columns), strict=self.prepare.strict,
                            encoding=self.data.encoding)

    def correct_config(self) -> CorrectConfig:
        """`correct`, with the pairwise judge's preference weight taken from score.beta."""
        return replace(self.correct, beta=self.score.beta)


_ADAPTER = TypeAdapter(Params)


class ParamsError(ValueError):
    """params.yaml (or a stage's view of it) is invalid; the message names every bad key."""


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at `loc` (top level, or inside a section)."""
    sections = typing.get_type_hints(Params)
    if not loc:
        return list(sections)
    kind = sections.get(loc[0])
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(kind.model_fields)
    if kind is not None and dataclasses.is_dataclass(kind):
        return [f.name for f in dataclasses.fields(kind)]
    return []


def explain(err: ValidationError, source: str) -> str:
    """One line per problem, in params.yaml's terms: `score.alpah: unknown key; did you mean score.alpha?`."""
    lines = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        key = ".".join(loc)
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            valid = _valid_keys(loc[:-1])
            close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.6)
            prefix = ".".join(loc[:-1]) + "." if len(loc) > 1 else ""
            hint = f"did you mean {prefix}{close[0]}?" if close else f"valid keys here: {', '.join(valid)}"
            lines.append(f"{key}: unknown key; {hint}")
        elif e["type"] == "value_error":  # the config's own check; its message names the key when it can
            message = str(e["ctx"]["error"])
            lines.append(message if message.startswith(f"{key}.") else f"{key}: {message}")
        else:
            lines.append(f"{key}: {e['msg']}, got {e['input']!r}")
    return f"{source}: invalid params\n  " + "\n  ".join(lines)


def parse(values: dict[str, Any] | None, source: str = str(PARAMS_FILE), whole: bool = True) -> Params:
    """Validate a params mapping (`whole`: all of params.yaml, so settings that conflict are errors
    too); a ParamsError names each bad key and how to fix it."""
    try:
        parsed = _ADAPTER.validate_python(values or {})
    except ValidationError as err:
        raise ParamsError(explain(err, source)) from None
    problems = parsed.conflicts() if whole else []
    if problems:
        raise ParamsError(f"{source}: invalid params\n  " + "\n  ".join(problems))
    return parsed


def load_file(path: str | Path = PARAMS_FILE) -> Params:
    """The whole params file, validated (benchmarks and tools; stages use `for_stage`)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found (run from the project root)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    return parse(raw, str(path))


def for_stage(stage: str, path: str | Path = PARAMS_FILE) -> Params:
    """What a DVC stage may use: the whole file is validated first (a typo anywhere stops every
    stage), then the stage gets only the keys it declares in dvc.yaml, read through dvc.api, plus
    the openai run settings. Undeclared keys keep their code defaults, so a stage's outputs depend
    on nothing DVC does not track."""
    import dvc.api

    whole = load_file(path)
    view = dvc.api.params_show(stages=stage)
    declared_openai = view.get("openai") or {}
    view["openai"] = {**{k: getattr(whole.openai, k) for k in OPENAI_RUN_SETTINGS}, **declared_openai}
    return parse(view, f"{path} (as declared for stage {stage} in dvc.yaml)", whole=False)
