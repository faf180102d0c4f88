"""Great Expectations gates on every curated artifact, all defined in this one module.

A stage validates its output before writing it as final, so a run that would drop, duplicate or
corrupt rows stops with a short message (expectation, column, a few offending ids) instead of
passing bad data on. The full GE result is written as JSON and rendered as Data Docs (static
HTML) next to it. `validate.strict: false` turns failures into warnings for exploration.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clearcurate.outcomes import Outcome
from clearcurate.params import ValidateConfig
from clearcurate.records import Record, write_json

log = logging.getLogger(__name__)
SHOWN_IDS = 5


class ExpectationError(RuntimeError):
    """A curated artifact failed its expectation suite (strict mode)."""


# ---- suites: what each artifact must satisfy ------------------------------------------------


def instruction_suite(cfg: ValidateConfig) -> list:
    """Raw / prepared rows: required columns, non-empty text within bounds, unique ids."""
    import great_expectations.expectations as gxe

    out: list = [gxe.ExpectColumnValuesToBeUnique(column="id")]
    for col in ("id", "prompt", "response"):
        out += [gxe.ExpectColumnToExist(column=col), gxe.ExpectColumnValuesToNotBeNull(column=col)]
    for col in ("prompt", "response"):
        out.append(gxe.ExpectColumnValueLengthsToBeBetween(column=col, min_value=cfg.min_chars, max_value=cfg.max_chars))
    return out


def scored_suite(input_ids: Sequence[str], components: Iterable[str], optional: Iterable[str] = ()) -> list:
    """Scored rows: the same ids as the input, confidence and every component in [0, 1], no nulls.

    `optional` components may be missing on some rows (an API model's unparsed self-reflection)
    and are range-checked where present.
    """
    import great_expectations.expectations as gxe

    out: list = [
        gxe.ExpectTableRowCountToEqual(value=len(input_ids)),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeInSet(column="id", value_set=list(input_ids)),
    ]
    for col in ("confidence", *components):
        out += [
            gxe.ExpectColumnValuesToNotBeNull(column=col),
            gxe.ExpectColumnValuesToBeBetween(column=col, min_value=0.0, max_value=1.0),
        ]
    out += [gxe.ExpectColumnValuesToBeBetween(column=col, min_value=0.0, max_value=1.0) for col in optional]
    return out


def outcome_suite(input_ids: Sequence[str], gamma: float, cfg: ValidateConfig) -> list:
    """Filter / correct outcomes: every input id exactly once, known outcomes, corrections only below gamma.

    Expects columns id, outcome, score (the row's confidence) and `corrected_below_gamma`
    (see `outcome_frame`). The removed share is bounded with `mostly` on the outcome column.
    """
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToEqual(value=len(input_ids)),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeInSet(column="id", value_set=list(input_ids)),
        gxe.ExpectColumnValuesToBeInSet(column="outcome", value_set=[o.value for o in Outcome]),
        gxe.ExpectColumnValuesToBeInSet(column="corrected_below_gamma", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(
            column="outcome", value_set=[Outcome.KEPT.value, Outcome.CORRECTED.value], mostly=max(1.0 - cfg.max_removed_share, 1e-9)
        ),
    ]


def outcome_frame(outcomes: Sequence[Record], scores: dict[str, float], gamma: float) -> pd.DataFrame:
    """One row per outcome with the score it was decided on, ready for `outcome_suite`."""
    df = pd.DataFrame(
        {
            "id": [o["id"] for o in outcomes],
            "outcome": [str(o["outcome"]) for o in outcomes],
            "score": [scores.get(o["id"], math.nan) for o in outcomes],
        }
    )
    df["corrected_below_gamma"] = (df["outcome"] != Outcome.CORRECTED) | (df["score"] < gamma)
    return df


# ---- running a suite -------------------------------------------------------------------------


def _summary(result: Any) -> list[str]:
    """One line per failed expectation: its type, column and a few offending ids or values."""
    lines = []
    missing = {
        r.expectation_config.kwargs["column"]
        for r in result.results
        if not r.success and r.expectation_config.type == "expect_column_to_exist"
    }
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        column = cfg.kwargs.get("column", "table")
        if column in missing:  # one line for a missing column, not one per expectation on it
            if cfg.type == "expect_column_to_exist":
                lines.append(f"{cfg.type}({column}): the column is missing")
            continue
        res = r.result or {}
        ids = [str(x.get("id")) for x in res.get("unexpected_index_list") or [] if isinstance(x, dict) and "id" in x]
        detail = f"{res['unexpected_count']} rows" if "unexpected_count" in res else f"observed {res.get('observed_value')}"
        if ids:
            detail += ", e.g. ids " + ", ".join(ids[:SHOWN_IDS])
        elif res.get("partial_unexpected_list"):
            detail += ", e.g. " + ", ".join(repr(v)[:60] for v in res["partial_unexpected_list"][:SHOWN_IDS])
        info = r.exception_info or {}
        if info.get("raised_exception"):
            detail = f"could not run: {str(info.get('exception_message'))[:120]}"
        lines.append(f"{cfg.type}({column}): {detail}")
    return lines


def validate(
    name: str, frame: pd.DataFrame, expectations: list, cfg: ValidateConfig, report_dir: str | Path
) -> bool:
    """Run `expectations` on `frame`; write `<report_dir>/<name>.json` and Data Docs in `<report_dir>/docs`.

    Returns whether all passed. On failure raises ExpectationError in strict mode, else logs a warning.
    """
    import great_expectations as gx

    report_dir = Path(report_dir)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # a few checks; bars would be noise
    docs_dir = report_dir / "docs"
    context.add_data_docs_site(
        site_name="clearcurate",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    batch = context.data_sources.add_pandas("clearcurate").add_dataframe_asset(name)
    batch_def = batch.add_batch_definition_whole_dataframe("all rows")
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_def, suite=suite))
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": ["id"] if "id" in frame else []}
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["clearcurate"])],
            result_format=result_format,
        )
    )
    with tempfile.TemporaryDirectory():  # GE may write scratch files; keep them out of the repo
        run = checkpoint.run(batch_parameters={"dataframe": frame})
    (result,) = run.run_results.values()
    write_json(report_dir / f"{name}.json", result.to_json_dict())
    if result.success:
        log.info("expectations %s: %d passed", name, len(result.results))
        return True
    message = (
        f"expectations '{name}' failed ({report_dir / (name + '.json')}):\n  "
        + "\n  ".join(_summary(result))
    )
    if cfg.strict:
        raise ExpectationError(message)
    log.warning("%s\n(validate.strict is false: continuing)", message)
    return False
