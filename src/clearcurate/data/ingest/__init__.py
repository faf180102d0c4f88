"""Read the instruction formats users have, and quarantine bad rows instead of losing them.

Formats: JSONL with prompt/response (other names through `columns`), Alpaca (instruction /
input / output, as JSON array or JSONL), chat (`messages`, as in OpenAI fine-tuning files),
and CSV / Parquet. Every source row ends up either as a prepared record or as a quarantine
record naming the file, the line (or row), a machine-readable `code` and the reason, so nothing is
silently dropped: reading never raises on a row. A problem with the whole file (missing, a
directory, empty, not UTF-8, every row rejected, a `data.columns` name found nowhere) stops with
one line naming the file and the fix; `FileRejected.quarantine` keeps the rows' reasons.

The package: `files` (formats, encodings, each row as read) and `rows` (a row as a record, or why not);
`iter_rows` here puts them together and decides the file-level outcome.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from clearcurate.config import IngestConfig
from clearcurate.core.records import InputError, Record, content_id
from clearcurate.data.ingest.files import BOM, PREVIEW_CHARS, Source, Utf8Check, check_file, detect_format, is_utf8, row_sources
from clearcurate.data.ingest.rows import QUARANTINE_CODES, RowError, normalise, printable, raw_id

log = logging.getLogger(__name__)
__all__ = ["BOM", "PREVIEW_CHARS", "QUARANTINE_CODES", "FileRejected", "RowError", "Source", "check_file", "iter_rows", "load_rows",
           "quarantine_codes"]


class FileRejected(InputError):
    """A file that cannot be used as a whole; `quarantine` holds the reason for each of its rows read so far."""

    def __init__(self, message: str, quarantine: Sequence[Record] = ()) -> None:
        super().__init__(message)
        self.quarantine = list(quarantine)


def quarantine_codes(quarantine: Sequence[Record]) -> dict[str, int]:
    """Quarantined rows per code, most frequent first (for logs and metrics/prepare.json)."""
    return dict(Counter(q["code"] for q in quarantine).most_common())


def load_rows(
    path: str | Path,
    cfg: IngestConfig,
    token_count: Callable[[str, str], int] | None = None,
    max_tokens: int | None = None,
    min_chars: int | None = None,
    max_chars: int | None = None,
) -> tuple[list[Record], list[Record]]:
    """(prepared rows, quarantined rows) of one file, all in memory; see `iter_rows`."""
    quarantine: list[Record] = []
    rows = list(iter_rows(path, cfg, quarantine, token_count, max_tokens, min_chars, max_chars))
    return rows, quarantine


def iter_rows(
    path: str | Path,
    cfg: IngestConfig,
    quarantine: list[Record],
    token_count: Callable[[str, str], int] | None = None,
    max_tokens: int | None = None,
    min_chars: int | None = None,
    max_chars: int | None = None,
) -> Iterator[Record]:
    """The prepared rows of one file, one at a time; each quarantined row is appended to `quarantine`.

    A UTF-8 JSONL file is read line by line, so only what duplicate detection needs (ids, content
    hashes and their first lines) stays in memory, whatever the file's size.
    Rows without an id get a stable content-hash id; ids are trimmed and compared exactly (case
    matters). A repeated id (with identical or different content) is `duplicate_id`; the same
    prompt and response under another id is `duplicate_content`; both name the line seen first.
    With `min_chars` / `max_chars` (validate.min_chars / max_chars), prompts and responses outside
    them are quarantined (`too_short`, `too_long`); so are rows longer than the model's context,
    with `token_count` and `max_tokens`. File-level problems raise InputError (FileRejected, with
    the quarantine, once rows were read) after the last row, so a consumer that writes the rows
    atomically keeps no file.
    """
    path = check_file(path)
    kind = detect_format(path, cfg)
    check = Utf8Check()
    sources = row_sources(path, kind, cfg.encoding, check)
    count = 0
    first_line: dict[str, tuple[int, str]] = {}
    first_content: dict[str, tuple[int, str]] = {}
    fields_seen: set[str] = set()
    folded: dict[str, str] = {}
    case_only: list[str] = []

    def reject(src: Source, code: str, reason: str, row_id: str | None = None) -> None:
        preview = src.value if isinstance(src.value, str) else json.dumps(src.value, ensure_ascii=False, default=str)
        quarantine.append({"source": src.path, "line": src.line, "id": None if row_id is None else printable(row_id), "code": code,
                           "reason": printable(reason), "raw": printable(preview[:PREVIEW_CHARS])})

    for src in sources:
        if src.error:
            reject(src, src.code, src.error)
            continue
        if isinstance(src.value, dict):
            fields_seen.update(map(str, src.value))
        given = raw_id(src.value, cfg)
        try:
            row = normalise(src.value, kind, cfg, min_chars, max_chars)
        except RowError as exc:
            reject(src, exc.code, str(exc), given)
            continue
        fingerprint = content_id(row["prompt"], row["response"])
        row["id"] = row["id"] or fingerprint
        if row["id"] in first_line and given is not None:
            line, seen = first_line[row["id"]]
            same = "same" if seen == fingerprint else "different"
            reject(src, "duplicate_id", f"duplicate id {row['id']!r} with {same} content (first on line {line})", row["id"])
            continue
        if fingerprint in first_content:
            line, seen_id = first_content[fingerprint]
            reject(src, "duplicate_content", f"same prompt and response as line {line} (id {seen_id!r})", given)
            continue
        if row["id"] in first_line:  # a content-hash id that some row gave as its own id
            reject(src, "duplicate_id", f"duplicate id {row['id']!r} with different content (first on line {first_line[row['id']][0]})")
            continue
        if token_count is not None and max_tokens is not None:
            n = token_count(row["prompt"], row["response"])
            if n > max_tokens:
                reject(src, "too_long", f"longer than the model's context ({n} > {max_tokens} tokens)", row["id"])
                continue
        first_line[row["id"]] = (src.line, fingerprint)
        first_content[fingerprint] = (src.line, row["id"])
        if folded.setdefault(row["id"].casefold(), row["id"]) != row["id"]:
            case_only.append(row["id"])
        count += 1
        yield row

    if case_only:
        log.warning("%s: %d ids differ from another only by case (kept as distinct rows), e.g. %r", path, len(case_only), case_only[0])
    wrong_encoding = check.error(path) if is_utf8(cfg.encoding) and kind != "parquet" else None
    if wrong_encoding:
        raise FileRejected(wrong_encoding, quarantine)
    unmatched = {ours: theirs for ours, theirs in cfg.columns.items() if theirs not in fields_seen}
    if unmatched and (count or quarantine):
        have = ", ".join(sorted(fields_seen)[:20]) or "none"
        raise FileRejected(f"{path}: data.columns maps " + ", ".join(f"{o} to {t!r}" for o, t in unmatched.items())
                           + f", but no row has that field (fields found: {have}); fix data.columns in params.yaml", quarantine)
    if quarantine:
        counts = quarantine_codes(quarantine)
        summary = ", ".join(f"{code}: {n}" for code, n in counts.items())
        log.warning("%s: quarantined %d of %d rows: %s", path, len(quarantine), count + len(quarantine), summary)
        if cfg.strict:
            first = quarantine[0]
            raise FileRejected(f"{first['source']}:{first['line']}: {first['reason']} "
                               f"({len(quarantine)} bad rows; prepare.strict is true)", quarantine)
        if not count:
            encoding = check.hint() if is_utf8(cfg.encoding) and kind != "parquet" else None
            fix = (f"save it as UTF-8, or set data.encoding: {encoding} in params.yaml (its non-ASCII lines are not UTF-8)"
                   if encoding else "fix the file, or data.format / data.columns in params.yaml")
            raise FileRejected(f"{path}: no usable rows (all {len(quarantine)} quarantined), {summary}; {fix}", quarantine)
    if not count:
        raise InputError(f"{path}: no usable rows (empty file); point data.train / data.test in params.yaml at a file with rows")
