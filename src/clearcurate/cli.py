"""The `clearcurate` command line. Pipeline stages run through `dvc repro`; this holds the tools around it."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from clearcurate import __version__
from clearcurate.core.records import InputError, Record, write_jsonl
from clearcurate.data.noisy_data import (
    GSM8K_NOISE,
    GSM8K_TEST_SOURCE,
    GSM8K_TRAIN_SOURCE,
    SOURCES,
    SQUAD_NOISE,
    SQUAD_SOURCE,
    Gsm8kNConfig,
    SquadNConfig,
    build_gsm8k_n,
    build_squad_n,
)
from clearcurate.data.versioning.render import TEXT_WIDTH

log = logging.getLogger("clearcurate")


LABELS_DEFAULT = "data/labels/noise_labels.jsonl"  # where `evaluate` looks (dvc.yaml: its deps include data/labels)


def _write_noisy(out: Path, labels_path: Path, train: list[Record], test: list[Record], labels: list[Record]) -> None:
    write_jsonl(out / "train.jsonl", train)
    write_jsonl(out / "test.jsonl", test)
    write_jsonl(labels_path, labels)
    noisy = sum(label["noisy"] for label in labels)
    log.info("wrote %d train rows (%d noisy), %d test rows to %s; noise labels to %s", len(train), noisy, len(test), out, labels_path)


def _builder_options(parser: argparse.ArgumentParser, config: type, noise_choices: Sequence[str]) -> None:
    """A noisy-set builder's options: where its labels go, then one option per field of its config."""
    parser.add_argument("--labels", default=LABELS_DEFAULT,
                        help=f"noise labels file, kept apart from the data curation reads (default: {LABELS_DEFAULT})")
    for f in fields(config):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                            **({"choices": noise_choices} if f.name == "noise" else {}))


def _make_squad_n(args: argparse.Namespace) -> None:
    cfg = SquadNConfig(**{f.name: getattr(args, f.name) for f in fields(SquadNConfig)})
    _write_noisy(Path(args.out), Path(args.labels), *build_squad_n(args.source, cfg))


def _make_gsm8k_n(args: argparse.Namespace) -> None:
    cfg = Gsm8kNConfig(**{f.name: getattr(args, f.name) for f in fields(Gsm8kNConfig)})
    source = Path(args.source)
    _write_noisy(Path(args.out), Path(args.labels), *build_gsm8k_n(source / GSM8K_TRAIN_SOURCE.name, source / GSM8K_TEST_SOURCE.name, cfg))


def _diff(args: argparse.Namespace) -> None:
    from clearcurate.data import versioning as v
    rev_a, rev_b = (None if r == "workspace" else r for r in (args.rev_a, args.rev_b))
    title_revs = f"{args.rev_a} -> {args.rev_b}"
    shown = None if args.format == "json" else args.limit  # text and markdown describe only the `--limit` rows they show
    try:
        if args.stage:
            diff = v.diff_stage(args.stage, rev_a, rev_b, args.repo, describe=shown)
            text = v.render_outcomes(diff, f"{args.stage} decisions, {title_revs}", args.format, args.limit, args.width)
        else:
            diff = v.diff_revisions(rev_a, rev_b, args.path, args.repo, describe=shown)
            text = v.render_rows(diff, f"{args.path}, {title_revs}", args.format, args.limit, args.width)
    except InputError as err:
        raise SystemExit(f"clearcurate diff: {err}") from None
    print(text)  # the command's output is the report itself (stdout), logs stay on stderr


def _flat(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _with_intervals(values: Mapping[str, Any]) -> dict[str, Any]:
    """`f1`, `f1_ci_low` and `f1_ci_high` as one cell, "36.5 [26.1, 46.3]": a number with its 95% CI, in one column."""
    out = {}
    for key, value in values.items():
        low, high = values.get(f"{key}_ci_low"), values.get(f"{key}_ci_high")
        if key.endswith(("_ci_low", "_ci_high")) and key.rsplit("_ci_", 1)[0] in values:
            continue
        out[key] = f"{_short(value)} [{low:.3g}, {high:.3g}]" if isinstance(low, float) and isinstance(high, float) else value
    return out


def _by_row(values: Any) -> bool:
    """A section that is itself a table: several entries of plain numbers (filter's length bands, say). Their keys
    may differ: DVC leaves out a null (a band without rows has no removed share), which the table shows as NaN."""
    return (isinstance(values, Mapping) and len(values) > 1
            and all(isinstance(v, Mapping) and v and not any(isinstance(x, Mapping) for x in v.values()) for v in values.values()))


def metrics_text(shown: Mapping[str, Any], width: int = 100) -> str:
    """`dvc metrics show --json` for a person, within `width` columns: per file, the sections that
    share their keys (one per model) as one table with a row each, a section made of such entries
    (`removed_by_length`'s bands) as its own table, everything else as `key value` lines. DVC's own
    table puts every key of every file in one row (33 columns, 1,173 characters)."""
    import pandas as pd

    def pairs(label: str, values: Mapping[str, Any]) -> list[str]:
        text = label + "  ".join(f"{k} {_short(v)}" for k, v in _flat(values))
        return textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)

    def table(rows: Mapping[str, Mapping[str, Any]], indent: str) -> list[str]:
        frame = pd.DataFrame.from_dict(dict(rows), orient="index")
        return [indent + row for row in frame.to_string(float_format=_short).splitlines()]

    lines = []
    for rev, found in shown.items():
        if len(shown) > 1:
            lines.append(f"{rev}:")
        for path, entry in found.get("data", {}).items():
            lines.append(path)
            if "error" in entry:
                lines.append(f"  could not read it: {entry['error'].get('msg', entry['error'])}")
                continue
            data = entry.get("data", {})
            tables = {name: v for name, v in data.items() if _by_row(v)}
            sections = {name: _with_intervals(dict(_flat(v))) for name, v in data.items()
                        if isinstance(v, Mapping) and v and name not in tables}
            scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
            if scalars:
                lines += pairs("", scalars)
            groups: dict[tuple[str, ...], list[str]] = {}
            for name, values in sections.items():
                groups.setdefault(tuple(values), []).append(name)
            for names in groups.values():
                if len(names) == 1:
                    lines += pairs(f"{names[0]}: ", sections[names[0]])
                    continue
                lines += table({n: sections[n] for n in names}, "  ")
            for name, rows in tables.items():
                lines += [f"  {name}:", *table({k: _with_intervals(dict(_flat(v))) for k, v in rows.items()}, "    ")]
    return "\n".join(lines)


def _metrics(args: argparse.Namespace) -> None:
    proc = subprocess.run([sys.executable, "-m", "dvc", "metrics", "show", "--json", *args.dvc_args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"clearcurate metrics: dvc metrics show failed: {proc.stderr.strip()}")
    shown = json.loads(proc.stdout or "{}")
    if not any(found.get("data") for found in shown.values()):
        raise SystemExit("clearcurate metrics: no metrics files found; run it in the project after `dvc repro`")
    print(metrics_text(shown))  # the report itself (stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clearcurate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"clearcurate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    squad = sub.add_parser(
        "make-squad-n",
        help="build SQuAD-N (noisy SQuAD, as in the CLEAR paper) with separate noise labels",
    )
    squad.add_argument("--source", default=str(SQUAD_SOURCE), help="flat SQuAD v1.1 JSONL, optionally .gz (default: the bundled copy)")
    squad.add_argument("--out", default="data/raw", help="output folder for train.jsonl and test.jsonl")
    _builder_options(squad, SquadNConfig, SQUAD_NOISE)
    squad.set_defaults(func=_make_squad_n)
    gsm = sub.add_parser(
        "make-gsm8k-n",
        help="build GSM8K-N (another question's solution, or --noise plausible: one step altered) with separate noise labels",
    )
    gsm.add_argument(
        "--source", default=str(SOURCES), help="folder with gsm8k-train.jsonl.gz and gsm8k-test.jsonl.gz (default: the bundled copies)"
    )
    gsm.add_argument("--out", required=True, help="output folder for train.jsonl and test.jsonl")
    _builder_options(gsm, Gsm8kNConfig, GSM8K_NOISE)
    gsm.set_defaults(func=_make_gsm8k_n)
    diff = sub.add_parser(
        "diff",
        help="what changed inside a DVC-tracked dataset between two git revisions, row by row",
        description="Reads both versions through dvc.api (DVC cache, else the default remote). "
        "REV may be any git revision, or 'workspace' for the files on disk.",
    )
    diff.add_argument("rev_a", metavar="REV_A")
    diff.add_argument("rev_b", metavar="REV_B")
    diff.add_argument("path", metavar="PATH", nargs="?", default="data/curated/train.jsonl",
                      help="JSONL dataset with an id per row (default: the curated training set)")
    diff.add_argument("--stage", choices=["filter", "correct"], default=None,
                      help="compare the decisions of two runs of a stage instead (rows that flipped)")
    diff.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    diff.add_argument("--limit", type=int, default=50, help="rows shown per section in text/markdown (json: all)")
    diff.add_argument("--width", type=int, default=TEXT_WIDTH, help="characters of each prompt and response shown (0: the whole text)")
    diff.add_argument("--repo", default=None, help="repository path or URL (default: the current one)")
    diff.set_defaults(func=_diff)
    metrics = sub.add_parser(
        "metrics",
        help="`dvc metrics show`, readable in 100 columns: one small table or a few lines per metrics file",
        description="Runs `dvc metrics show --json DVC_ARGS` (e.g. -a, or the files to show) and prints each file's "
        "metrics: sections with the same keys (one per model) as a table, the rest as `key value` lines.",
    )
    metrics.add_argument("dvc_args", metavar="DVC_ARGS", nargs=argparse.REMAINDER, help="passed to `dvc metrics show`")
    metrics.set_defaults(func=_metrics)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # libraries (DVC, botocore): warnings only
    logging.getLogger("clearcurate").setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
