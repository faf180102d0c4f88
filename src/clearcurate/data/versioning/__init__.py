"""Row-level diffs of DVC-tracked datasets across git revisions.

`dvc diff` says that a file's hash changed; a team reviewing a curation change wants to know
which rows were added, dropped or rewritten, whose confidence moved, and which decisions
flipped when a threshold changed. Both revisions are read through `dvc.api.open` (from the
local DVC cache, else the default remote), so nothing has to be checked out. Files are streamed:
a first pass keeps each row's decision, or a digest of its response and its confidence, and a
second pass fetches the full rows of only those that changed, so a million rows fit in about
200 MB. The comparison itself (`RowTable.diff`, `diff_rows`, `diff_outcomes`) is pure and
works on rows keyed by id.


The package: `read` (dvc.api reading), `diff` (the pure comparison) and `render` (text, markdown,
JSON); `diff_stage` and `diff_revisions` here put them together for `clearcurate diff`.
"""

from __future__ import annotations

from clearcurate.core.records import InputError
from clearcurate.data.versioning.diff import (
    CONFIDENCE_TOLERANCE,
    DecisionTable,
    IdColumn,
    OutcomeDiff,
    RowDiff,
    RowTable,
    describe_flipped,
    describe_rows,
    diff_outcomes,
    diff_rows,
    fill_word_diffs,
    response_text,
    sort_flipped,
    word_diff,
)
from clearcurate.data.versioning.read import (
    CURATED,
    LEDGER,
    PREPARED,
    SCORED,
    STAGE_DECISIONS,
    decision_rows,
    iter_rows,
    read_decisions,
    read_rows,
    rows_or_none,
    scored_confidences,
    stage_settings,
)
from clearcurate.data.versioning.render import TEXT_WIDTH, one_line, render_outcomes, render_rows

__all__ = [
    "CONFIDENCE_TOLERANCE", "CURATED", "LEDGER", "PREPARED", "SCORED", "STAGE_DECISIONS", "TEXT_WIDTH", "DecisionTable", "IdColumn",
    "OutcomeDiff", "RowDiff", "RowTable", "describe_flipped", "describe_rows", "diff_outcomes", "diff_revisions", "diff_rows",
    "diff_stage", "fill_word_diffs", "iter_rows", "one_line", "read_decisions", "read_rows", "render_outcomes", "render_rows",
    "sort_flipped", "stage_settings", "word_diff",
]


def diff_stage(stage: str, rev_a: str | None, rev_b: str | None, repo: str | None = None, describe: int | None = None) -> OutcomeDiff:
    """The decisions of two runs of `stage` and the settings each ran with (its threshold), the flipped rows
    sorted by transition and confidence (`sort_flipped`), with each one's prompt, response, confidences and
    reasons (only the first `describe` flipped rows', what a text report shows; None: every one's)."""
    diff = read_decisions(stage, (rev_a, rev_b), repo).diff(stage)
    diff.settings_a, diff.settings_b = stage_settings(stage, rev_a, repo), stage_settings(stage, rev_b, repo)
    if not diff.flipped:
        return diff
    confidences = scored_confidences(rev_a, repo, set(diff.flipped)), scored_confidences(rev_b, repo, set(diff.flipped))
    sort_flipped(diff, *confidences)
    flipped = set(diff.flipped) if describe is None else set(list(diff.flipped)[: max(describe, 0)])
    rows_a, rows_b = decision_rows(stage, rev_a, repo, flipped), decision_rows(stage, rev_b, repo, flipped)
    texts = None
    if any("prompt" not in (rows_b.get(i) or rows_a.get(i) or {}) for i in flipped):  # the ledger has ids only
        texts = rows_or_none(PREPARED, rev_b, repo, flipped) or rows_or_none(PREPARED, rev_a, repo, flipped)
    return describe_flipped(diff, rows_a, rows_b, *confidences, texts, only=None if describe is None else flipped)


def diff_revisions(rev_a: str | None, rev_b: str | None, path: str = CURATED, repo: str | None = None,
                   describe: int | None = 0) -> RowDiff:
    """Diff one dataset between two revisions; confidences come from the rows or else the scored set.

    Streamed: a first pass fills a `RowTable` (digests of the responses, confidences), a second
    fetches the texts of the changed responses for their word diffs, and of the first `describe` added
    and removed rows (None: all), with, for the curated set, each run's outcome and reason from its ledger.
    """
    table = RowTable()
    for version, rev in enumerate((rev_a, rev_b)):
        for row in iter_rows(path, rev, repo):
            table.add(version, str(row["id"]), row)
    use_scored = [False, False]
    if not (table.has_own(0) and table.has_own(1)):
        for version, rev in enumerate((rev_a, rev_b)):
            try:
                for row in iter_rows(SCORED, rev, repo):
                    if "confidence" in row:
                        table.add_scored(version, str(row["id"]), row["confidence"])
            except InputError:  # no scores at that revision: only response changes are reported
                continue
            use_scored[version] = table.scored_rows[version] > 0
    diff = table.diff((use_scored[0], use_scored[1]))
    if diff.response_changed:
        changed = set(diff.response_changed)
        old = {i: response_text(r) for i, r in read_rows(path, rev_a, repo, changed).items()}
        new = {i: response_text(r) for i, r in read_rows(path, rev_b, repo, changed).items()}
        fill_word_diffs(diff, old, new)
    if describe != 0 and (diff.added or diff.removed):
        added, removed = (set(ids if describe is None else ids[:describe]) for ids in (diff.added, diff.removed))
        ids = added | removed
        ledgers = (rows_or_none(LEDGER, rev_a, repo, ids), rows_or_none(LEDGER, rev_b, repo, ids)) if path == CURATED else (None, None)
        describe_rows(diff, read_rows(path, rev_a, repo, removed), read_rows(path, rev_b, repo, added),
                      scored_confidences(rev_a, repo, ids), scored_confidences(rev_b, repo, ids), *ledgers)
    return diff
