"""Read the instruction formats users have, and quarantine bad rows instead of losing them.

Formats: JSONL with prompt/response (other names through `columns`), Alpaca (instruction /
input / output, as JSON array or JSONL), chat (`messages`, as in OpenAI fine-tuning files),
and CSV / Parquet. Every source row ends up either as a prepared record or as a quarantine
record naming the file, the line (or row), a machine-readable `code` and the reason, so nothing is
silently dropped: reading never raises on a row. A problem with the whole file (missing, a
directory, empty, not UTF-8, every row rejected, a `data.columns` name found nowhere) stops with
one line naming the file and the fix; `FileRejected.quarantine` keeps the rows' reasons.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearcurate.core.records import InputError, Record, content_id
from clearcurate.params import IngestConfig

log = logging.getLogger(__name__)
PREVIEW_CHARS = 200
BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\\ud800-\\udfff]")
_ESCAPED_BYTE = re.compile("[\\udc80-\\udcff]")  # an undecodable byte, as errors="surrogateescape" keeps it
_CSV_FIELD_LIMIT = 2**31 - 1  # the csv module's default (128 KiB) would fail on long responses


QUARANTINE_CODES = ("unparseable", "not_an_object", "bad_chat", "missing_field", "wrong_type", "empty_field", "duplicate_id",
                    "duplicate_content", "too_long", "too_short", "bad_text", "non_finite", "ragged_row")


class RowError(ValueError):
    """A row that cannot be used: `code` (one of QUARANTINE_CODES) for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        if code not in QUARANTINE_CODES:
            raise ValueError(f"unknown quarantine code {code!r}")
        super().__init__(message)
        self.code = code


class FileRejected(InputError):
    """A file that cannot be used as a whole; `quarantine` holds the reason for each of its rows read so far."""

    def __init__(self, message: str, quarantine: Sequence[Record] = ()) -> None:
        super().__init__(message)
        self.quarantine = list(quarantine)


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
    code: str = "unparseable"  # the quarantine code for `error`


def check_file(path: str | Path) -> Path:
    """The path, if it names a readable, non-empty file; else one InputError line naming it and the fix."""
    path = Path(path)
    where = "point data.train / data.test in params.yaml at"
    if not path.exists():
        raise InputError(f"{path}: no such file; {where} an existing file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file; {where} a data file inside it")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file; {where} a data file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: no usable rows (empty file); {where} a file with rows")
    return path


def _detect(path: Path, cfg: IngestConfig) -> str:
    if cfg.format != "auto":
        return cfg.format
    suffix = path.suffix.lower()
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "jsonl")


def _guess_encoding(raw: bytes) -> str:
    """A likely encoding for bytes that are not UTF-8 (a hint for the error message, not a detector)."""
    if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


class _Utf8Check:
    """Whether a file as a whole is in another encoding, from its lines as they stream past (the
    whole file is never held): at least two lines are invalid UTF-8 and no line holds valid non-ASCII
    UTF-8, or the file starts with a UTF-16 byte-order mark. Only a line or so damaged: its rows are
    quarantined as `unparseable` instead."""

    def __init__(self) -> None:
        self.head = b""
        self.bad: list[int] = []
        self.good = 0
        self.cp1252 = True  # every byte so far decodes as cp1252 (the hint in the message)

    def see(self, lineno: int, line: bytes) -> None:
        if lineno == 1:
            self.head = line[:2]
        if line.isascii():
            return
        if self.cp1252:
            try:
                line.decode("cp1252")
            except UnicodeDecodeError:
                self.cp1252 = False
        try:
            line.decode("utf-8")
            self.good += 1
        except UnicodeDecodeError:
            self.bad.append(lineno)

    def hint(self) -> str | None:
        """The likely encoding when the file starts with a UTF-16 byte-order mark, or some lines are not
        UTF-8 and no non-ASCII line is (perhaps too few lines for `error`'s verdict)."""
        if not self.bad:
            return None
        if self.head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "utf-16"
        return None if self.good else "cp1252" if self.cp1252 else "latin-1"

    def error(self, path: Path) -> str | None:
        """The file-level error, or None when the file is UTF-8 (or only a line or so is damaged)."""
        if not self.bad:
            return None
        guess = self.hint()
        if guess is None or (guess != "utf-16" and len(self.bad) < 2):
            return None
        lines = ", ".join(map(str, self.bad[:5])) + (", ..." if len(self.bad) > 5 else "")
        return (f"{path}: not UTF-8 (invalid bytes on lines {lines}; it looks like {guess}); "
                f"save it as UTF-8, or set data.encoding: {guess} in params.yaml")


def _decode(path: Path, raw: bytes, encoding: str) -> str:
    """The whole file in a user-chosen encoding (data.encoding other than utf-8)."""
    try:
        return raw.decode(encoding).removeprefix("\ufeff")
    except LookupError:
        raise InputError(f"{path}: data.encoding {encoding!r} is not an encoding Python knows; fix data.encoding in params.yaml") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid {encoding} (byte {exc.start}); fix data.encoding in params.yaml") from None


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def _parse_json(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg})"
    except (ValueError, RecursionError) as exc:  # an integer with too many digits, nesting too deep
        return None, f"invalid JSON ({type(exc).__name__}: {str(exc)[:100]})"


def _json_lines(path: Path, raw: bytes, encoding: str) -> Iterator[Source]:
    """Each non-blank line of a JSONL file; a .json file holding one array is read as its elements."""
    utf8 = _is_utf8(encoding)
    if utf8:
        raw = raw.removeprefix(BOM)
    if path.suffix.lower() == ".json" and raw.lstrip()[:1] == b"[":
        try:
            text = raw.decode("utf-8") if utf8 else _decode(path, raw, encoding)
        except UnicodeDecodeError as exc:
            guess = _guess_encoding(raw)
            raise InputError(f"{path}: not UTF-8 (byte {exc.start}; it looks like {guess}); "
                             f"save it as UTF-8, or set data.encoding: {guess} in params.yaml") from None
        items, error = _parse_json(text)
        if error or not isinstance(items, list):
            raise InputError(f"{path}: not a valid JSON array ({error or type(items).__name__}); fix it, or save the rows as JSONL")
        for index, item in enumerate(items, start=1):
            yield Source(str(path), index, item)
        return
    if utf8:
        lines: Iterator[tuple[int, bytes | str]] = enumerate(raw.split(b"\n"), start=1)
    else:
        lines = enumerate(_decode(path, raw, encoding).split("\n"), start=1)
    for lineno, line in lines:
        if (src := _json_line(path, lineno, line)) is not None:
            yield src


def _json_line(path: Path, lineno: int, line: bytes | str) -> Source | None:
    """One JSONL line as read (None when blank); bytes are decoded as UTF-8, and a line that is not is quarantined."""
    if not line.strip():
        return None
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Source(str(path), lineno, line[:PREVIEW_CHARS].decode("utf-8", "replace"), f"invalid UTF-8 at byte {exc.start}")
    value, error = _parse_json(line)
    return Source(str(path), lineno, line[:PREVIEW_CHARS] if error else value, error)


def _streamed_json_lines(path: Path, check: _Utf8Check) -> Iterator[Source]:
    """Each non-blank line of a UTF-8 JSONL file, read one line at a time (a million rows never sit in
    memory at once), as `_json_lines` reads them; `check` sees every line for the file-level verdict."""
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.removesuffix(b"\n")
            check.see(lineno, line)
            if (src := _json_line(path, lineno, line.removeprefix(BOM) if lineno == 1 else line)) is not None:
                yield src


def _text_lines(path: Path, encoding: str, check: _Utf8Check) -> Iterator[str]:
    """The file's lines one at a time, line endings kept (what the csv module wants). UTF-8 keeps an
    undecodable byte as a surrogate (that row is quarantined) and `check` sees every line's bytes for
    the file-level verdict; another encoding (data.encoding) decodes strictly."""
    utf8 = _is_utf8(encoding)
    try:
        handle = path.open(encoding="utf-8" if utf8 else encoding, errors="surrogateescape" if utf8 else "strict", newline="")
    except LookupError:
        raise InputError(f"{path}: data.encoding {encoding!r} is not an encoding Python knows; fix data.encoding in params.yaml") from None
    with handle:
        try:
            for lineno, line in enumerate(handle, start=1):
                if utf8:
                    check.see(lineno, line.rstrip("\r\n").encode("utf-8", "surrogateescape"))
                yield line.removeprefix("\ufeff") if lineno == 1 else line
        except UnicodeDecodeError:  # the text layer decodes ahead in blocks: find the line in a second pass
            raise InputError(f"{path}: not valid {encoding} (line {_undecodable_line(path, encoding)}); "
                             "fix data.encoding in params.yaml") from None


def _undecodable_line(path: Path, encoding: str) -> int:
    """The first line (counted at b"\\n") holding bytes that `encoding` cannot decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return lineno
    return lineno


def _csv_rows(path: Path, lines: Iterator[str]) -> Iterator[Source]:
    """CSV rows by the header's names (the header is line 1; a row's line is where it starts), read
    as they stream past. Every value is a string; a row with more or fewer fields than the header is
    `ragged_row`."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(lines)
    header: list[str] | None = None
    end = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            yield Source(str(path), start, f"line {start}", f"invalid CSV ({exc})")
            continue
        end = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        preview = ",".join(fields)[:PREVIEW_CHARS]
        if header is None:
            header = [f.strip() for f in fields]
            repeated = sorted({f for f in header if header.count(f) > 1})
            if repeated:
                raise InputError(f"{path}: the header names columns {repeated} more than once; rename them")
            continue
        if any(_ESCAPED_BYTE.search(f) for f in fields):
            yield Source(str(path), start, preview.encode("utf-8", "replace").decode("utf-8"), "invalid UTF-8 bytes")
        elif len(fields) != len(header):
            yield Source(str(path), start, preview, f"{len(fields)} fields where the header has {len(header)}", "ragged_row")
        else:
            yield Source(str(path), start, dict(zip(header, fields)))


def _plain(value: Any) -> Any:
    """A Parquet value as JSON-able Python: lists, dicts, str, int, float, bool, None; anything else as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _parquet_rows(path: Path) -> Iterator[Source]:
    """Parquet rows (row 1 is the first), read by pyarrow in batches as plain Python values; nulls are None."""
    import pyarrow.parquet as pq

    index = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):  # a batch at a time, not the whole table
            for row in batch.to_pylist():
                index += 1
                yield Source(str(path), index, {str(k): _plain(v) for k, v in row.items()})
    except Exception as exc:  # pyarrow's errors have no common base worth naming
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {str(exc)[:200]}); check data.format") from None


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
                    raise RowError("bad_text", f"field {_safe(name)!r} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), "
                                               "which is not valid Unicode")
            elif isinstance(value, float):
                if not math.isfinite(value):
                    raise RowError("non_finite", f"field {_safe(name)!r} holds {value} (NaN and Infinity are not valid JSON)")
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


def _raw_id(obj: Any, cfg: IngestConfig) -> str | None:
    """The row's own id, if it has a usable one, for its quarantine record (whatever else is wrong)."""
    if not isinstance(obj, dict):
        return None
    try:
        return _row_id(obj.get(cfg.columns.get("id", "id")))
    except RowError:
        return None


def _normalise(obj: Any, kind: str, cfg: IngestConfig) -> Record:
    """A raw object as a record with prompt / response / optional id; RowError says what is wrong."""
    if not isinstance(obj, dict):
        raise RowError("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
    _check_values(obj)
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
    mapped["id"] = _row_id(mapped.get("id"))
    return mapped


def _safe(text: str) -> str:
    """Text that can be written as UTF-8 (a lone surrogate becomes its \\udXXX escape)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_lengths(row: Record, min_chars: int | None, max_chars: int | None) -> None:
    for name in ("prompt", "response"):
        n = len(row[name])
        if max_chars is not None and n > max_chars:
            raise RowError("too_long", f"{name} has {n} characters, more than validate.max_chars ({max_chars})")
        if min_chars is not None and n < min_chars:
            raise RowError("too_short", f"{name} has {n} characters, fewer than validate.min_chars ({min_chars})")


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


def _sources(path: Path, kind: str, encoding: str, check: _Utf8Check) -> Iterator[Source]:
    """The file's rows as read: UTF-8 JSONL and CSV (in any encoding) one line at a time, Parquet in
    batches; a JSONL file in another encoding and a .json array are read whole."""
    if kind == "parquet":
        return _parquet_rows(path)
    if kind == "csv":
        return _csv_rows(path, _text_lines(path, encoding, check))
    if _is_utf8(encoding) and path.suffix.lower() != ".json":
        return _streamed_json_lines(path, check)
    raw = path.read_bytes()
    if _is_utf8(encoding):
        for lineno, line in enumerate(raw.split(b"\n"), start=1):
            check.see(lineno, line)
    return _json_lines(path, raw, encoding)


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
    kind = _detect(path, cfg)
    check = _Utf8Check()
    sources = _sources(path, kind, cfg.encoding, check)
    count = 0
    first_line: dict[str, tuple[int, str]] = {}
    first_content: dict[str, tuple[int, str]] = {}
    fields_seen: set[str] = set()
    folded: dict[str, str] = {}
    case_only: list[str] = []

    def reject(src: Source, code: str, reason: str, row_id: str | None = None) -> None:
        preview = src.value if isinstance(src.value, str) else json.dumps(src.value, ensure_ascii=False, default=str)
        quarantine.append({"source": src.path, "line": src.line, "id": None if row_id is None else _safe(row_id), "code": code,
                           "reason": _safe(reason), "raw": _safe(preview[:PREVIEW_CHARS])})

    for src in sources:
        if src.error:
            reject(src, src.code, src.error)
            continue
        if isinstance(src.value, dict):
            fields_seen.update(map(str, src.value))
        given = _raw_id(src.value, cfg)
        try:
            row = _normalise(src.value, kind, cfg)
            _check_lengths(row, min_chars, max_chars)
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
    wrong_encoding = check.error(path) if _is_utf8(cfg.encoding) and kind != "parquet" else None
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
            encoding = check.hint() if _is_utf8(cfg.encoding) and kind != "parquet" else None
            fix = (f"save it as UTF-8, or set data.encoding: {encoding} in params.yaml (its non-ASCII lines are not UTF-8)"
                   if encoding else "fix the file, or data.format / data.columns in params.yaml")
            raise FileRejected(f"{path}: no usable rows (all {len(quarantine)} quarantined), {summary}; {fix}", quarantine)
    if not count:
        raise InputError(f"{path}: no usable rows (empty file); point data.train / data.test in params.yaml at a file with rows")
