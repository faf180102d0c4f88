"""params.yaml as one typed model: every section's config, validated whole before any stage loads a model.

The config classes live here (not in the modules that use them) so that reading params imports
no model code: a stage's DVC deps then follow what it really runs. Unknown keys, wrong types and
out-of-range values are errors that name the key (and the closest valid one): a typo must never
run silently with a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import statistics
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from clearcurate.core import confidence as cf
from clearcurate.core import presets
from clearcurate.core.budget import token_budget
from clearcurate.core.defects import CHECKS, DEFAULT_CHECKS

RECIPES = ("paper", "crossfit")
AUTO = "auto"
JUDGES = ("agreement", "pairwise")
ORDERS = ("both", "random", "candidate_a", "candidate_b")
FORMATS = ("auto", "jsonl", "alpaca", "chat", "csv", "parquet")


# ---- the sections each module uses -----------------------------------------------------------


def _require(section: str, config: Any, rules: dict[str, tuple[bool, str]]) -> None:
    """Raise for the first setting that breaks its rule, naming it as params.yaml does: `score.k must be >= 0, got -1`."""
    for key, (ok, need) in rules.items():
        if not ok:
            raise ValueError(f"{section}.{key} must be {need}, got {getattr(config, key)!r}")


@dataclass(frozen=True)
class ScoreConfig:
    """The `score` block of params.yaml."""

    recipe: str = "crossfit"
    k: int = 5
    temperature: float = 1.0
    max_new_tokens: int = 32  # sample budget: at least this many tokens ...
    max_new_tokens_cap: int = 256  # ... and up to 1.5 x the response's tokens + 8, at most this (0: fixed)
    alpha: float = 0.8
    beta: float = 0.7
    similarity: str = "token_f1"
    fewshot: int = 3
    folds: int = 2
    fold_by: str = "id"  # crossfit: rows with the same value of this field share a fold (id, prompt or any row field)
    likelihood_scale: float = 5.0  # with explicit weights: nats per response (likelihood_per: response) or per token
    likelihood_per: str = "response"  # with explicit weights: response | token (auto: the preset says)
    relevance_scale: float = 5.0
    length_scale: float = 1.0
    fold_epochs: float = 1.0
    # auto: the preset for the data's answer length (clearcurate.core.presets); a dict: these weights;
    # empty: the paper's beta * O + (1 - beta) * S
    weights: dict[str, float] | str = "auto"
    # A field of the rows naming each row's kind or source (e.g. Dolly's `category`): presets that weigh
    # components against the length trend fit one trend per group (confidence.length_adjusted).
    group_by: str | None = None
    # The defect checks to run on every row (clearcurate.core.defects): a row with a defect is scored low and
    # removed by the filter whatever the threshold. Drop a check that does not fit the data (e.g. language
    # for a translation set).
    defects: tuple[str, ...] = DEFAULT_CHECKS
    seed: int = 0

    def __post_init__(self) -> None:
        if unknown := [d for d in self.defects if d not in CHECKS]:
            close = {u: difflib.get_close_matches(u, CHECKS, n=1) for u in unknown}
            raise ValueError("score.defects names unknown checks: " + ", ".join(
                f"{u!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for u, c in close.items()) + f"; the checks are {list(CHECKS)}")
        if len(set(self.defects)) < len(self.defects):
            raise ValueError(f"score.defects names a check twice: {list(self.defects)}")
        if self.recipe not in RECIPES:
            raise ValueError(f"score.recipe must be one of {RECIPES}, got {self.recipe!r}")
        _require("score", self, {
            "k": (self.k >= 0, ">= 0"),
            "folds": (self.folds >= 2, ">= 2"),
            "alpha": (0.0 <= self.alpha <= 1.0, "in [0, 1]"),
            "beta": (0.0 <= self.beta <= 1.0, "in [0, 1]"),
            "temperature": (self.temperature > 0, "> 0"),
        })
        token_budget(0, self.max_new_tokens, self.max_new_tokens_cap)  # checks floor and cap
        if isinstance(self.weights, str) and self.weights != "auto":
            raise ValueError(f"score.weights must be auto, a mapping of component weights or empty, got {self.weights!r}")
        if self.likelihood_per not in ("response", "token"):
            raise ValueError(f"score.likelihood_per must be response or token, got {self.likelihood_per!r}")
        if not isinstance(self.fold_by, str) or not self.fold_by.strip():
            raise ValueError(f"score.fold_by must be id, prompt or another row field, got {self.fold_by!r}")
        if self.group_by is not None and (not isinstance(self.group_by, str) or not self.group_by.strip()):
            raise ValueError(f"score.group_by must be a field name or null, got {self.group_by!r}")
        for name in ("likelihood", "relevance", "length"):
            if self.recipe == "paper" and isinstance(self.weights, dict) and self.weights.get(name):
                raise ValueError(f"score.weights.{name} needs score.recipe: crossfit (the paper recipe has no {name})")

    def preset_for(self, response_tokens: Sequence[int]) -> str:
        """Which weighting applies to rows with these response lengths: a preset name, `custom` or `paper`."""
        if self.weights != "auto":
            return "custom" if self.weights else "paper"
        return "paper" if self.recipe == "paper" else presets.preset_for(statistics.median(response_tokens) if response_tokens else 0)

    def with_preset(self, name: str) -> ScoreConfig:
        """This configuration with the named preset's weights and likelihood normalisation (`custom`, `paper`: as is)."""
        if name == "paper" and self.weights == "auto":
            return replace(self, weights={})
        if name not in presets.PRESETS:
            return self
        p = presets.PRESETS[name]
        return replace(self, weights=dict(p.weights), likelihood_per=p.likelihood_per, likelihood_scale=p.likelihood_scale)

    def component_weights(self) -> dict[str, float]:
        """Explicit `weights` if given, else the paper's beta * O + (1 - beta) * S (`auto`: resolve with `with_preset` first)."""
        if self.weights == "auto":
            raise ValueError("score.weights: auto depends on the data: apply with_preset(preset_for(...)) first")
        weights = dict(self.weights) if self.weights else cf.paper_weights(self.beta)
        if self.k == 0:  # no samples: consistency, likelihood and length are undefined
            weights = {n: w for n, w in weights.items() if n not in cf.SAMPLED_COMPONENTS}
        return weights




@dataclass(frozen=True)
class FilterConfig:
    """`filter` in params.yaml: keep confidence >= gamma, or >= a quantile of all scores.

    `quantile: auto` estimates the noisy share from the scores themselves (`estimate_noise_share`)
    and removes that share, lowest scores first.
    """

    gamma: float = 0.5
    quantile: float | str | None = None
    max_share: float = 0.5  # auto: never estimate more than this share as noisy

    def __post_init__(self) -> None:
        if isinstance(self.quantile, str):
            if self.quantile != AUTO:
                raise ValueError(f"filter.quantile must be a number in [0, 1], 'auto' or null, got {self.quantile!r}")
        elif self.quantile is not None and not 0.0 <= self.quantile <= 1.0:
            raise ValueError(f"filter.quantile must be in [0, 1], 'auto' or null, got {self.quantile}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"filter.gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 < self.max_share <= 1.0:
            raise ValueError(f"filter.max_share must be in (0, 1], got {self.max_share}")



@dataclass(frozen=True)
class LoraTrainConfig:
    """Hyper-parameters of one LoRA run (the `train` block of params.yaml)."""

    epochs: float = 1.0
    max_steps: int = 0  # > 0: a fixed number of optimizer steps, whatever the dataset size
    learning_rate: float = 1e-3
    batch_size: int = 8
    max_length: int = 320
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    warmup_ratio: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        _require("train", self, {
            "epochs": (self.epochs > 0 or self.max_steps > 0, "> 0 (or max_steps > 0)"),
            "max_steps": (self.max_steps >= 0, ">= 0"),
            "learning_rate": (self.learning_rate > 0, "> 0"),
            "batch_size": (self.batch_size >= 1, ">= 1"),
            "max_length": (self.max_length >= 8, ">= 8"),
            "lora_r": (self.lora_r >= 1, ">= 1"),
            "lora_alpha": (self.lora_alpha > 0, "> 0"),
            "lora_dropout": (0.0 <= self.lora_dropout < 1.0, "in [0, 1)"),
            "warmup_ratio": (0.0 <= self.warmup_ratio < 1.0, "in [0, 1)"),
        })
        if not self.target_modules:
            raise ValueError("train.target_modules must name at least one module")




@dataclass(frozen=True)
class CorrectConfig:
    """The `correct` block of params.yaml (plus score.beta for the pairwise judge)."""

    judge: str = "agreement"
    eta: float = 0.8
    k: int = 5  # agreement: answers sampled per row
    temperature: float = 1.0  # agreement: sampling temperature
    max_new_tokens: int = 32
    order: str = "both"  # pairwise: both orders averaged (debiased), or one slot (for position-bias studies)
    beta: float = 0.7  # pairwise: preference weight against self-reflection on the candidate
    seed: int = 0

    def __post_init__(self) -> None:
        _require("correct", self, {
            "judge": (self.judge in JUDGES, f"one of {JUDGES}"),
            "order": (self.order in ORDERS, f"one of {ORDERS}"),
            "eta": (0.0 <= self.eta <= 1.0, "in [0, 1]"),
            "k": (self.k >= 2 or self.judge != "agreement", ">= 2 for the agreement judge (agreement of one sample is meaningless)"),
            "max_new_tokens": (self.max_new_tokens >= 1, ">= 1"),
        })



@dataclass(frozen=True)
class ValidateConfig:
    """The `validate` block of params.yaml."""

    strict: bool = True
    min_chars: int = 1
    max_chars: int = 20_000
    max_removed_share: float = 0.5  # a filter that would drop more stops the run and says so

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_removed_share <= 1.0:
            raise ValueError(f"validate.max_removed_share must be in [0, 1], got {self.max_removed_share}")
        if not 0 <= self.min_chars <= self.max_chars:
            raise ValueError(f"validate.min_chars must be in [0, max_chars], got {self.min_chars} with max_chars {self.max_chars}")




@dataclass(frozen=True)
class IngestConfig:
    """`data.format` and `data.columns` in params.yaml, plus `prepare.strict`."""

    format: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)  # our name -> the file's column, e.g. {"prompt": "question"}
    strict: bool = False  # true: any quarantined row stops the stage
    encoding: str = "utf-8"  # of JSONL / JSON / CSV files; a UTF-8 byte-order mark is skipped

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"data.format must be one of {FORMATS}, got {self.format!r}")
        unknown = set(self.columns) - {"id", "prompt", "response"}
        if unknown:
            raise ValueError(f"data.columns maps unknown fields {sorted(unknown)}; use id, prompt, response")


@dataclass(frozen=True)
class OpenAIConfig:
    """The `openai:` block of params.yaml. The API key is read from the environment variable
    named by `api_key_env` (never from params), so it cannot reach params, logs or artifacts."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini-2024-07-18"
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    max_retries: int = 6
    timeout_s: float = 60.0
    backoff_s: float = 0.5  # first retry waits about this long, doubling up to backoff_max_s
    backoff_max_s: float = 30.0
    n_per_request: bool = True  # the server honours n > 1 (vLLM, OpenAI); false: k requests
    top_logprobs: int = 10  # 0: the server gives no logprobs; read letters from text only
    max_requests: int = 0  # per run; 0 = no limit
    max_tokens: int = 0  # prompt + completion tokens per run; 0 = no limit
    price_input_per_mtok: float = 0.0  # USD per million tokens, for the cost estimate in metrics
    price_output_per_mtok: float = 0.0
    context_tokens: int = 128000  # prepare quarantines longer rows (estimated at 4 characters per token)
    poll_s: float = 10.0  # fine-tuning job polling interval
    n_epochs: int = 0  # fine-tuning epochs; 0 = the server's default


    def __post_init__(self) -> None:
        _require("openai", self, {
            "max_concurrency": (self.max_concurrency >= 1, ">= 1"),
            "max_retries": (self.max_retries >= 0, ">= 0"),
            "timeout_s": (self.timeout_s > 0, "> 0"),
            "backoff_s": (self.backoff_s >= 0, ">= 0"),
            "backoff_max_s": (self.backoff_max_s >= self.backoff_s, ">= backoff_s"),
            "top_logprobs": (0 <= self.top_logprobs <= 20, "in [0, 20]"),
            "max_requests": (self.max_requests >= 0, ">= 0 (0: no limit)"),
            "max_tokens": (self.max_tokens >= 0, ">= 0 (0: no limit)"),
            "price_input_per_mtok": (self.price_input_per_mtok >= 0, ">= 0"),
            "price_output_per_mtok": (self.price_output_per_mtok >= 0, ">= 0"),
            "context_tokens": (self.context_tokens >= 1, ">= 1"),
            "poll_s": (self.poll_s > 0, "> 0"),
            "n_epochs": (self.n_epochs >= 0, ">= 0"),
        })

    def api_key(self) -> str:
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise RuntimeError(f"model.backend openai needs an API key in the environment variable {self.api_key_env}")
        return key


# ---- params.yaml as a whole -------------------------------------------------------------------


PARAMS_FILE = Path("params.yaml")
# How a run talks to the server, not what it computes: read from params.yaml by every stage but
# declared by none in dvc.yaml, so raising a budget or the concurrency never reruns a stage.
OPENAI_RUN_SETTINGS = (
    "api_key_env", "max_concurrency", "max_retries", "timeout_s", "backoff_s", "backoff_max_s",
    "max_requests", "max_tokens", "price_input_per_mtok", "price_output_per_mtok", "poll_s",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelParams(_Section):
    """`model`: which model, on which backend."""

    backend: Literal["hf", "openai"] = "hf"
    name: str = "smollm2-135m"
    batch_size: int = Field(8, ge=1)
    seed: int = 0


class ScorerParams(_Section):
    """`scorer`: the model that scores the data (`score`) and judges candidates (`correct.judge: pairwise`).

    By default the model being trained. A user who fine-tunes a small model can often afford a larger
    one to score with, which knows answers the small one gets wrong (docs/backends.md#a-scorer-apart-from-the-student).
    """

    name: str | None = None  # null: the model being trained; else a model source as in model.name (or an endpoint's model id)
    backend: Literal["hf", "openai"] | None = None  # null: model.backend
    seed: int = 0  # the `tiny` source's weights

    def separate(self) -> bool:
        """Whether scoring uses another model than the one being trained."""
        return self.name is not None or self.backend is not None


class DataParams(_Section):
    """`data`: where the rows are and how to read them."""

    train: str = "data/raw/train.jsonl"
    test: str = "data/raw/test.jsonl"
    format: str = "auto"
    columns: dict[str, str] = Field(default_factory=dict)
    encoding: str = "utf-8"

    @model_validator(mode="after")
    def _readable(self) -> DataParams:
        IngestConfig(format=self.format, columns=dict(self.columns))  # its checks name the bad key
        return self


class PrepareParams(_Section):
    strict: bool = False


class EvaluateParams(_Section):
    """`evaluate`: answer budgets and the (optional) noise labels."""

    max_new_tokens: int = Field(32, ge=1)
    max_new_tokens_cap: int = Field(256, ge=0)
    noise_labels: str | None = None


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

    # Where the model work of score, correct and evaluate runs: this process, or a Ray cluster
    # (clearcurate.engines.ray; its address and worker count come from the environment, not params).
    # Results are the same either way.
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
