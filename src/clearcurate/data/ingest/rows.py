"""The row level of reading: a raw object (JSONL, Alpaca, chat, CSV, Parquet) as a record with prompt, response
and id, or a `RowError` with a machine-readable code and the reason."""

from __future__ import annotations

import math
import re
from typing import Any

from clearcurate.config import IngestConfig
from clearcurate.core.records import Record

_SURROGATE = re.compile("[\\ud800-\\udfff]")


QUARANTINE_CODES = ("unparseable", "not_an_object", "bad_chat", "missing_field", "wrong_type", "empty_field", "duplicate_id",
                    "duplicate_content", "too_long", "too_short", "bad_text", "non_finite", "ragged_row")


class RowError(ValueError):
    """A row that cannot be used: `code` (one of QUARANTINE_CODES) for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        if code not in QUARANTINE_CODES:
            raise ValueError(f"unknown quarantine code {code!r}")
        super().__init__(message)
        self.code = code


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


def _check_values(obj: dict[str, Any]) -> None:
    """Every value (extra fields and nested ones included) must survive as strict UTF-8 JSON:
    no lone surrogate (a JSON "\\ud800" escape) and no NaN or Infinity, which Python's json accepts."""
    for name, top in obj.items():
        stack = [name, top]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                if _SURROGATE.search(value):
                    raise RowError("bad_text", f"field {printable(name)!r} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), "
                                               "which is not valid Unicode")
            elif isinstance(value, float):
                if not math.isfinite(value):
                    raise RowError("non_finite", f"field {printable(name)!r} holds {value} (NaN and Infinity are not valid JSON)")
            elif isinstance(value, dict):
                stack += [*value.keys(), *value.values()]
            elif isinstance(value, list):
                stack += value


def _row_id(value: Any) -> str | None:
    """The id as a trimmed string (an integer as its decimal digits); None when absent or blank."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RowError("wrong_type", f"field 'id' must be a string or an integer, got {type(value).__name__}")
    return str(value).strip() or None


def raw_id(obj: Any, cfg: IngestConfig) -> str | None:
    """The row's own id, if it has a usable one, for its quarantine record (whatever else is wrong)."""
    if not isinstance(obj, dict):
        return None
    try:
        return _row_id(obj.get(cfg.columns.get("id", "id")))
    except RowError:
        return None


def row_kind(obj: dict[str, Any], kind: str, cfg: IngestConfig) -> str:
    """The row's format: `kind`, or for JSONL/CSV/Parquet without column names, chat or Alpaca by its fields."""
    if kind in ("jsonl", "csv", "parquet") and not cfg.columns:
        if "messages" in obj:
            return "chat"
        if "instruction" in obj and "output" in obj:
            return "alpaca"
    return kind


def field_names(kind: str, cfg: IngestConfig) -> dict[str, str]:
    """How a file of this row kind (`row_kind`) names a row's prompt and response, for messages: an Alpaca row's
    `output` is what a user looks for in their file, not our `response`."""
    if kind == "alpaca":
        return {"prompt": "instruction", "response": "output"}
    if kind == "chat":
        return {"prompt": "the user message's content", "response": "the assistant message's content"}
    return {name: cfg.columns.get(name, name) for name in ("prompt", "response")}


def normalise(obj: Any, kind: str, cfg: IngestConfig, min_chars: int | None = None, max_chars: int | None = None) -> Record:
    """A raw object as a record with prompt / response / optional id, within the character bounds; RowError says
    what is wrong, in the file's field names."""
    if not isinstance(obj, dict):
        raise RowError("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
    _check_values(obj)
    kind = row_kind(obj, kind, cfg)
    names = field_names(kind, cfg)
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
        value, shown = mapped.get(name), names[name]
        if value is None:
            raise RowError("missing_field", f"missing field {shown!r}")
        if not isinstance(value, str):
            raise RowError("wrong_type", f"field {shown!r} must be a string, got {type(value).__name__}")
        if not value.strip():
            raise RowError("empty_field", f"empty field {shown!r}")
    mapped["id"] = _row_id(mapped.get("id"))
    check_lengths(mapped, min_chars, max_chars, names)
    return mapped


def printable(text: str) -> str:
    """Text that can be written as UTF-8 (a lone surrogate becomes its \\udXXX escape)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_lengths(row: Record, min_chars: int | None, max_chars: int | None, names: dict[str, str]) -> None:
    """Prompt and response within validate's character bounds; `names`: the file's names for them (`field_names`)."""
    for name in ("prompt", "response"):
        n, shown = len(row[name]), names[name]
        if max_chars is not None and n > max_chars:
            raise RowError("too_long", f"{shown} has {n} characters, more than validate.max_chars ({max_chars})")
        if min_chars is not None and n < min_chars:
            raise RowError("too_short", f"{shown} has {n} characters, fewer than validate.min_chars ({min_chars})")
