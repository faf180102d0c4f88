"""Reading DVC-tracked datasets at a git revision: from the local DVC cache, else the default remote (`dvc.api.open`),
streamed, with one-line errors that say what to run."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

from clearcurate.core.records import InputError, Record, parse_jsonl, progress
from clearcurate.data.versioning.diff import DecisionTable

CURATED = "data/curated/train.jsonl"
LEDGER = "data/curated/outcomes.jsonl"  # every input row's outcome and reason (the correct stage's ledger)


SCORED = "data/scored/train.jsonl"


PREPARED = "data/prepared/train.jsonl"  # prompts and responses of rows the ledger names by id only


# Where each stage's decisions live: (file, outcome) pairs, or the ledger with an `outcome` field.
STAGE_DECISIONS: dict[str, list[tuple[str, str | None]]] = {
    "filter": [("data/filtered/kept.jsonl", "kept"), ("data/filtered/removed.jsonl", "removed")],
    "correct": [(LEDGER, None)],
}


# What each stage decided with, as its metrics file records it: the threshold a diff shows before and after.
STAGE_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "filter": ("metrics/filter.json", ("gamma", "threshold")),
    "correct": ("metrics/correct.json", ("judge", "eta")),
}


def stage_settings(stage: str, rev: str | None, repo: str | None = None) -> dict[str, Any]:
    """The settings `stage` ran with at `rev` (see STAGE_SETTINGS); empty where its metrics file is not there
    or not readable (a revision before the stage recorded them): the diff then shows none."""
    import dvc.api

    path, keys = STAGE_SETTINGS[stage]
    try:
        with dvc.api.open(path, repo=repo, rev=rev, mode="r", encoding="utf-8") as handle:
            recorded = json.load(handle)
    except Exception:  # dvc/scmrepo raise many types; a missing record only leaves the settings out
        return {}
    return {k: recorded[k] for k in keys if k in recorded}


def iter_rows(path: str, rev: str | None, repo: str | None = None) -> Iterator[Record]:
    """Rows of a JSONL file at a git revision, one at a time (a bad line names file, rev and line)."""
    import dvc.api

    where = f"{path}@{rev or 'workspace'}"
    try:
        with dvc.api.open(path, repo=repo, rev=rev, mode="r", encoding="utf-8") as handle:
            for number, row in enumerate(progress(parse_jsonl(handle, where), f"read {where}"), start=1):
                if "id" not in row:
                    raise InputError(f"{where}: row {number} has no 'id'")
                yield row
    except InputError:
        raise
    except Exception as err:  # dvc/scmrepo raise many types: unknown revision, path missing, no remote...
        raise InputError(f"{where}: {_read_hint(err, path, rev, repo)}") from None


def read_rows(path: str, rev: str | None, repo: str | None = None, ids: Collection[str] | None = None) -> dict[str, Record]:
    """Rows of a JSONL file at a git revision, by id (all, or only those in `ids`; a repeated id keeps its last row)."""
    rows: dict[str, Record] = {}
    for row in iter_rows(path, rev, repo):
        i = str(row["id"])
        if ids is None or i in ids:
            rows[i] = row
    return rows


def _tracked(path: str, rev: str | None, repo: str | None) -> bool:
    """Whether DVC (dvc.lock or a .dvc file) or git knows `path` at `rev`, whether or not its data is at hand."""
    from dvc.api import DVCFileSystem

    try:
        return bool(DVCFileSystem(repo, rev=rev).exists(path))
    except Exception:  # only chooses between two hints
        return False


def _read_hint(err: Exception, path: str, rev: str | None, repo: str | None = None) -> str:
    """What a failed read means, in the user's terms, and what to run."""
    error = type(err).__name__
    if error == "PathMissingError" and rev is None:
        return f"{path} is not in the workspace: run `dvc repro` to make it (or `dvc pull` if your team has a remote)"
    if error == "PathMissingError" and _tracked(path, rev, repo):  # in dvc.lock at rev, but no copy of the data here
        return (f"{path} is recorded at {rev} but its data is in neither the local DVC cache nor the remote: "
                f"`dvc push` it where it was made, or make it again (`git checkout {rev} && dvc repro`)")
    if error == "PathMissingError":
        return (f"{path} does not exist at {rev}: that revision did not run the pipeline "
                "(pick a later one, or run `dvc repro` and commit its dvc.lock)")
    if error == "RevError":
        return f"unknown revision {rev!r}: use a commit, branch or tag (`git log --oneline`), or `workspace`"
    if error in ("SCMError", "NotDvcRepoError"):
        return f"not a git + DVC project ({err}): run it in your project's folder, or pass --repo"
    return (f"cannot read it ({error}: {err}); if the data is tracked but not in the local DVC cache, "
            "run `dvc pull` (or `dvc repro` at that revision)")


def read_decisions(stage: str, revs: tuple[str | None, str | None], repo: str | None = None) -> DecisionTable:
    """Each row's decision in two runs of `stage` (filter: kept/removed; correct: the outcome ledger), streamed."""
    if stage not in STAGE_DECISIONS:
        raise ValueError(f"unknown stage {stage!r}: use one of {sorted(STAGE_DECISIONS)}")
    table = DecisionTable()
    for run, rev in enumerate(revs):
        for path, label in STAGE_DECISIONS[stage]:
            for row in iter_rows(path, rev, repo):
                table.add(run, str(row["id"]), label if label is not None else str(row["outcome"]))
    return table


def decision_rows(stage: str, rev: str | None, repo: str | None, ids: Collection[str]) -> dict[str, Record]:
    """The decision rows of `ids` in one run of `stage` (a second pass, for the rows that flipped)."""
    rows: dict[str, Record] = {}
    for path, _ in STAGE_DECISIONS[stage]:
        rows.update(read_rows(path, rev, repo, ids))
    return rows


def rows_or_none(path: str, rev: str | None, repo: str | None, ids: Collection[str]) -> dict[str, Record] | None:
    try:
        return read_rows(path, rev, repo, ids)
    except InputError:
        return None


def scored_confidences(rev: str | None, repo: str | None, ids: Collection[str]) -> dict[str, float] | None:
    """The confidence of each row of `ids` at `rev`, or None when that revision has no scores (then only
    response changes are reported); streamed, so only these floats are kept."""
    try:
        return {i: float(r["confidence"]) for r in iter_rows(SCORED, rev, repo) if "confidence" in r and (i := str(r["id"])) in ids}
    except InputError:
        return None
