"""Read the instruction formats users have, and quarantine bad rows instead of losing them.

Formats: JSONL with prompt/response (other names through `columns`), Alpaca (instruction /
input / output, as JSON array or JSONL), chat (`messages`, as in OpenAI fine-tuning files),
and CSV / Parquet through pandas. Every source row ends up either as a prepared record or as a
quarantine record naming the file, the line (or row), a machine-readable `code` and the reason, so nothing is silently
dropped; a file with no usable row stops with a clear error.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearcurate.params import IngestConfig
from clearcurate.records import InputError, Record, content_id

log = logging.getLogger(__name__)
PREVIEW_CHARS = 200


QUARANTINE_CODES = ("unparseable", "not_an_object", "bad_chat", "missing_field", "wrong_type", "empty_field", "duplicate_id", "too_long")


class RowError(ValueError):
    """A row that cannot be used: `code` (one of QUARANTINE_CODES) for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        if code not in QUARANTINE_CODES:
            raise ValueError(f"unknown quarantine code {code!r}")
        super().__init__(message)
        self.code = code


def quarantine_codes(quarantine: Sequence[Record]) -> dict[str, int]:
    """Quarantined rows per code, most frequent first (for logs and metrics/prepare.json)."""
    return dict(Counter(q["code"] for q in quarantine).most_common())


@dataclass(frozen=True)
class Source:
    """One row as read from a file, before it is checked: where it came from, and its raw value."""

    path: str
    line: int
    value: Any = None
    error: str | None = None  # set when the row could not even be parsed


def _detect(path: Path, cfg: IngestConfig) -> str:
    if cfg.format != "auto":
        return cfg.format
    suffix = path.suffix.lower()
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "jsonl")


def _json_lines(path: Path) -> Iterator[Source]:
    """Each non-blank line of a JSONL file; a .json file holding one array is read as its elements."""
    raw = path.read_bytes()
    if path.suffix.lower() == ".json" and raw.lstrip()[:1] == b"[":
        try:
            items = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not a valid JSON array ({exc})") from exc
        for index, item in enumerate(items, start=1):
            yield Source(str(path), index, item)
        return
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Source(str(path), lineno, line[:PREVIEW_CHARS].decode("utf-8", "replace"), f"invalid UTF-8 at byte {exc.start}")
            continue
        try:
            yield Source(str(path), lineno, json.loads(text))
        except json.JSONDecodeError as exc:
            yield Source(str(path), lineno, text[:PREVIEW_CHARS], f"invalid JSON ({exc.msg})")


def _table_rows(path: Path, kind: str) -> Iterator[Source]:
    """CSV / Parquet rows through pandas; CSV line numbers count the header as line 1."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False) if kind == "csv" else pd.read_parquet(path)
    offset = 2 if kind == "csv" else 1
    for index, row in enumerate(frame.to_dict(orient="records")):
        yield Source(str(path), index + offset, {k: (None if v is None or v != v else v) for k, v in row.items()})


def _from_alpaca(obj: dict[str, Any]) -> dict[str, Any]:
    instruction, extra = obj.get("instruction"), obj.get("input") or ""
    prompt = instruction if not (isinstance(instruction, str) and extra) else f"{instruction}\n\n{extra}"
    rest = {k: v for k, v in obj.items() if k not in ("instruction", "input", "output")}
    return {**rest, "prompt": prompt, "response": obj.get("output")}


def _from_chat(obj: dict[str, Any]) -> dict[str, Any]:
    """A single-turn conversation: optional system message, one user turn, one final assistant turn."""
    messages = obj.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise RowError("bad_chat", "'messages' must be a list of {role, content} objects")
    roles = [m.get("role") for m in messages]
    if roles and roles[0] == "system":
        system, messages, roles = messages[0].get("content"), messages[1:], roles[1:]
    else:
        system = None
    if roles != ["user", "assistant"]:
        raise RowError("bad_chat", f"only single-turn chats (user, assistant) are supported, got roles {roles}")
    prompt = messages[0].get("content")
    if isinstance(system, str) and system.strip() and isinstance(prompt, str):
        prompt = f"{system}\n\n{prompt}"
    rest = {k: v for k, v in obj.items() if k != "messages"}
    return {**rest, "prompt": prompt, "response": messages[1].get("content")}


def _normalise(obj: Any, kind: str, cfg: IngestConfig) -> Record:
    """A raw object as a record with prompt / response / optional id; RowError says what is wrong."""
    if not isinstance(obj, dict):
        raise RowError("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
    if kind in ("jsonl", "csv", "parquet") and not cfg.columns:
        if "messages" in obj:
            kind = "chat"
        elif "instruction" in obj and "output" in obj:
            kind = "alpaca"
    if kind == "alpaca":
        obj = _from_alpaca(obj)
    elif kind == "chat":
        obj = _from_chat(obj)
    mapped = dict(obj)
    for ours, theirs in cfg.columns.items():
        if theirs not in obj:
            raise RowError("missing_field", f"missing field {theirs!r} (mapped to {ours})")
        mapped[ours] = obj[theirs]
    for name in ("prompt", "response"):
        value = mapped.get(name)
        if value is None:
            raise RowError("missing_field", f"missing field {name!r}")
        if not isinstance(value, str):
            raise RowError("wrong_type", f"field {name!r} must be a string, got {type(value).__name__}")
        if not value.strip():
            raise RowError("empty_field", f"empty field {name!r}")
    if mapped.get("id") not in (None, "") and not isinstance(mapped["id"], (str, int)):
        raise RowError("wrong_type", f"field 'id' must be a string or an integer, got {type(mapped['id']).__name__}")
    return mapped


def load_rows(
    path: str | Path,
    cfg: IngestConfig,
    token_count: Callable[[str, str], int] | None = None,
    max_tokens: int | None = None,
) -> tuple[list[Record], list[Record]]:
    """(prepared rows, quarantined rows) of one file; see the module docstring.

    Rows without an id get a stable content-hash id. A repeated id with identical content and
    one with different content are both quarantined, naming the line that holds the id first.
    With `token_count` and `max_tokens`, rows longer than the model's context are quarantined too.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    kind = _detect(path, cfg)
    sources = _table_rows(path, kind) if kind in ("csv", "parquet") else _json_lines(path)
    rows: list[Record] = []
    quarantine: list[Record] = []
    first_line: dict[str, tuple[int, str]] = {}

    def reject(src: Source, code: str, reason: str, row_id: str | None = None) -> None:
        preview = src.value if isinstance(src.value, str) else json.dumps(src.value, ensure_ascii=False, default=str)
        quarantine.append({"source": src.path, "line": src.line, "id": row_id, "code": code, "reason": reason,
                           "raw": preview[:PREVIEW_CHARS]})

    for src in sources:
        if src.error:
            reject(src, "unparseable", src.error)
            continue
        try:
            row = _normalise(src.value, kind, cfg)
        except RowError as exc:
            reject(src, exc.code, str(exc))
            continue
        row["id"] = str(row["id"]) if row.get("id") not in (None, "") else content_id(row["prompt"], row["response"])
        fingerprint = content_id(row["prompt"], row["response"])
        if row["id"] in first_line:
            line, seen = first_line[row["id"]]
            same = "same" if seen == fingerprint else "different"
            reject(src, "duplicate_id", f"duplicate id {row['id']!r} with {same} content (first on line {line})", row["id"])
            continue
        if token_count is not None and max_tokens is not None:
            n = token_count(row["prompt"], row["response"])
            if n > max_tokens:
                reject(src, "too_long", f"longer than the model's context ({n} > {max_tokens} tokens)", row["id"])
                continue
        first_line[row["id"]] = (src.line, fingerprint)
        rows.append(row)

    if quarantine:
        counts = quarantine_codes(quarantine)
        log.warning("%s: quarantined %d of %d rows: %s", path, len(quarantine), len(rows) + len(quarantine),
                    ", ".join(f"{code}: {n}" for code, n in counts.items()))
        if cfg.strict:
            first = quarantine[0]
            raise InputError(f"{first['source']}:{first['line']}: {first['reason']} "
                             f"({len(quarantine)} bad rows; prepare.strict is true)")
    if not rows:
        raise InputError(f"{path}: no usable rows" + (f" (all {len(quarantine)} quarantined)" if quarantine else " (empty file)"))
    return rows, quarantine
