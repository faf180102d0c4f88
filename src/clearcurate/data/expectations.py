"""Great Expectations gates on every curated artifact, all defined in this one module.

A stage validates its output before writing it as final, so a run that would drop, duplicate or
corrupt rows stops with a short message (expectation, column, a few offending ids) instead of
passing bad data on. The full GE result is written as JSON and rendered as Data Docs (static
HTML) next to it, rewritten to load vendored scripts and styles so it renders offline.
`validate.strict: false` turns failures into warnings for exploration.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clearcurate.config import ValidateConfig
from clearcurate.core.outcomes import Outcome
from clearcurate.core.records import Record, write_json
from clearcurate.data.reports import VENDOR, remote_loads

log = logging.getLogger(__name__)
SHOWN_IDS = 5

# What Great Expectations' Data Docs templates (great_expectations 1.x) load from CDNs, and the
# vendored copy (clearcurate/web/vendor) each page loads instead. Quoted, so only whole URLs match.
DOCS_CDN = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/vega-embed.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark/bootstrap-prefers-dark.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
}
# GE's logo, on the page and in its stylesheet: GE ships a copy in static/images.
_GE_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[\w.-]+\.amazonaws\.com/[\w.-]+\.png(\?[^\"')\s]*)?")


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


def scored_suite(input_rows: int, components: Iterable[str], optional: Iterable[str] = ()) -> list:
    """Scored rows: the same ids as the input, confidence and every component in [0, 1], no nulls.

    Expects an `id_in_input` column (see `outcome_columns`: a column, not a value set of every input id).
    `optional` components may be missing on some rows (an API model's unparsed self-reflection)
    and are range-checked where present.
    """
    import great_expectations.expectations as gxe

    out: list = [
        gxe.ExpectTableRowCountToEqual(value=input_rows),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeInSet(column="id_in_input", value_set=[True]),
    ]
    for col in ("confidence", *components):
        out += [
            gxe.ExpectColumnValuesToNotBeNull(column=col),
            gxe.ExpectColumnValuesToBeBetween(column=col, min_value=0.0, max_value=1.0),
        ]
    out += [gxe.ExpectColumnValuesToBeBetween(column=col, min_value=0.0, max_value=1.0) for col in optional]
    return out


def outcome_suite(input_rows: int, gamma: float, cfg: ValidateConfig) -> list:
    """Filter / correct outcomes: every one of the `input_rows` input ids exactly once, known outcomes,
    corrections only below gamma.

    Expects columns id, `id_in_input`, outcome, score (the row's confidence) and `corrected_below_gamma`
    (see `outcome_columns`). Whether an id is an input id is a column rather than an expectation
    holding every input id: that one carried a million ids into the suite, its JSON result and its
    Data Docs page (8x the validation time at 100k rows). The removed share is bounded with `mostly`
    on the outcome column.
    """
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToEqual(value=input_rows),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeInSet(column="id_in_input", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="outcome", value_set=[o.value for o in Outcome]),
        gxe.ExpectColumnValuesToBeInSet(column="corrected_below_gamma", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(
            column="outcome", value_set=[Outcome.KEPT.value, Outcome.CORRECTED.value], mostly=max(1.0 - cfg.max_removed_share, 1e-9)
        ),
    ]


def outcome_columns(
    ids: Sequence[str], outcomes: Sequence[str], scores: Sequence[float], gamma: float, input_ids: Collection[str],
    removed_for_defect: Collection[str] = (),
) -> pd.DataFrame:
    """One row per outcome with the score it was decided on (NaN where none) and whether its id is
    one of `input_ids`, ready for `outcome_suite`. A corrected row must have been removed by the filter:
    below gamma, or (`removed_for_defect`) for a defect, whatever its score. Built from columns: a stage
    with a million rows holds these, not a record per row."""
    df = pd.DataFrame({"id": ids, "outcome": pd.Series(outcomes, dtype=object), "score": np.asarray(scores, dtype=float)})
    df["id_in_input"] = df["id"].isin(input_ids if isinstance(input_ids, (set, frozenset)) else set(input_ids))
    df["corrected_below_gamma"] = (df["outcome"] != Outcome.CORRECTED) | (df["score"] < gamma) | df["id"].isin(set(removed_for_defect))
    return df


class InstructionColumns:
    """The columns `instruction_suite` checks, gathered row by row in little memory.

    The suite asks of a prompt or response only that it exists, is not null and has a length within
    validate.min_chars / max_chars. A text that passes is stored as one shared text that passes too;
    anything else (too short or long, null, not text) is kept as it is. So every verdict, and every
    value a failure reports, is the full text's, while a million passing rows cost a pointer each.
    """

    def __init__(self, cfg: ValidateConfig) -> None:
        self._cfg = cfg
        self._passing = "x" * cfg.min_chars
        self.columns: dict[str, list[Any]] = {"id": [], "prompt": [], "response": []}

    def _stand_in(self, value: Any) -> Any:
        if isinstance(value, str) and self._cfg.min_chars <= len(value) <= self._cfg.max_chars:
            return self._passing
        return value

    def add(self, row: Record) -> None:
        self.columns["id"].append(row.get("id"))
        self.columns["prompt"].append(self._stand_in(row.get("prompt")))
        self.columns["response"].append(self._stand_in(row.get("response")))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns)


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


def _offline_docs(docs_dir: Path) -> None:
    """Point every Data Docs page and GE stylesheet at local copies, so the docs render without network.

    GE's templates load jQuery, Bootstrap, vega and their styles from CDNs; the vendored copies go
    to `static/vendor` inside the site (which stays self-contained). Idempotent: a stage that
    validates twice rebuilds some pages, and they are rewritten again.
    """
    static = docs_dir / "static"
    shutil.copytree(VENDOR, static / "vendor", dirs_exist_ok=True)
    vendored = static / "vendor"
    pages = [*docs_dir.rglob("*.html"), *(p for p in static.rglob("*.css") if vendored not in p.parents)]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        local = Path(os.path.relpath(static, page.parent)).as_posix()
        new = _GE_LOGO.sub(f"{local}/images/logo-long.png", text)
        for url, path in DOCS_CDN.items():
            new = new.replace(f'"{url}"', f'"{local}/vendor/{path}"')
        if new != text:
            page.write_text(new, encoding="utf-8")
        remote = remote_loads(page)
        if remote:  # a GE upgrade brought a CDN the table above does not know
            log.warning("%s still loads %s from the network (add it to expectations.DOCS_CDN)", page, ", ".join(remote))


def validate(
    name: str, frame: pd.DataFrame, expectations: list, cfg: ValidateConfig, report_dir: str | Path
) -> bool:
    """Run `expectations` on `frame`; write `<report_dir>/<name>.json` and Data Docs in `<report_dir>/docs/<name>`.

    One Data Docs site per artifact: GE's index drops the pages of results its context does not
    hold, so two artifacts validated into one site (prepare's train and test) kept only the last.
    Returns whether all passed. On failure raises ExpectationError in strict mode, else logs a warning.
    """
    import great_expectations as gx

    report_dir = Path(report_dir)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GE sets this module's logger to INFO itself: one "ephemeral docs site" line per run otherwise.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # a few checks; bars would be noise
    docs_dir = report_dir / "docs" / name
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
    _offline_docs(docs_dir)
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
