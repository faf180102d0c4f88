"""params.yaml as one typed model: every section's config, validated whole before any stage loads a model.

The config classes live here (not in the modules that use them) so that reading params imports
no model code: a stage's DVC deps then follow what it really runs. Unknown keys, wrong types and
out-of-range values are errors that name the key (and the closest valid one): a typo must never
run silently with a default.

One module per section (`score`, `filter`, `train`, `correct`, `validate`, `data`, `openai`, `model`) and
`params` for the whole file; the package exports what the rest of clearcurate uses. No module here imports
model code or scoring maths (tests/unit/test_import_rules.py).

What each key means is written once, beside the key in params.yaml: these modules hold the types,
defaults and checks, and docs/ explain concepts and link to keys without restating them
(tests/unit/config/test_reference.py keeps the three in step).
"""

from __future__ import annotations

from clearcurate.config.common import AUTO, FORMATS, JUDGES, ORDERS, RECIPES
from clearcurate.config.correct import CorrectConfig
from clearcurate.config.data import DataParams, IngestConfig, PrepareParams
from clearcurate.config.filter import FilterConfig
from clearcurate.config.model import EvaluateParams, ModelParams, ScorerParams
from clearcurate.config.openai import OPENAI_RUN_SETTINGS, OpenAIConfig
from clearcurate.config.params import PARAMS_FILE, Params, ParamsError, explain, for_stage, load_file, parse
from clearcurate.config.score import ScoreConfig
from clearcurate.config.train import LoraTrainConfig
from clearcurate.config.validate import ValidateConfig

__all__ = [
    "AUTO", "FORMATS", "JUDGES", "OPENAI_RUN_SETTINGS", "ORDERS", "PARAMS_FILE", "RECIPES", "CorrectConfig", "DataParams",
    "EvaluateParams", "FilterConfig", "IngestConfig", "LoraTrainConfig", "ModelParams", "OpenAIConfig", "Params", "ParamsError",
    "PrepareParams", "ScoreConfig", "ScorerParams", "ValidateConfig", "explain", "for_stage", "load_file", "parse",
]


