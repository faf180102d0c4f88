"""The file level of reading: which format, which encoding, and each row as read (`Source`), line by line
where the format allows, with the line that failed and why."""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearcurate.config import IngestConfig
from clearcurate.core.records import InputError

PREVIEW_CHARS = 200


BOM = b"\xef\xbb\xbf"


_ESCAPED_BYTE = re.compile("[\\udc80-\\udcff]")  # an undecodable byte, as errors="surrogateescape" keeps it


_CSV_FIELD_LIMIT = 2**31 - 1  # the csv module's default (128 KiB) would fail on long responses


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


def detect_format(path: Path, cfg: IngestConfig) -> str:
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


class Utf8Check:
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


def is_utf8(encoding: str) -> bool:
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
    utf8 = is_utf8(encoding)
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
        del items  # valid: read again element by element, to know the line each one starts on
        for lineno, item in _array_elements(text):
            yield Source(str(path), lineno, item)
        return
    if utf8:
        lines: Iterator[tuple[int, bytes | str]] = enumerate(raw.split(b"\n"), start=1)
    else:
        lines = enumerate(_decode(path, raw, encoding).split("\n"), start=1)
    for lineno, line in lines:
        if (src := _json_line(path, lineno, line)) is not None:
            yield src


_BETWEEN_ELEMENTS = re.compile(r"[\s,]*")


def _array_elements(text: str) -> Iterator[tuple[int, Any]]:
    """Each element of a valid JSON array, with the file line it starts on: a quarantine record points
    at line 1423 of an Alpaca file, where an editor finds the row, not at "row 285"."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = 1 + text.count("\n", 0, pos)
    while True:
        start = _BETWEEN_ELEMENTS.match(text, pos).end()
        if start >= len(text) or text[start] == "]":
            return
        line += text.count("\n", pos, start)
        value, pos = decoder.raw_decode(text, start)
        yield line, value
        line += text.count("\n", start, pos)


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


def _streamed_json_lines(path: Path, check: Utf8Check) -> Iterator[Source]:
    """Each non-blank line of a UTF-8 JSONL file, read one line at a time (a million rows never sit in
    memory at once), as `_json_lines` reads them; `check` sees every line for the file-level verdict."""
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.removesuffix(b"\n")
            check.see(lineno, line)
            if (src := _json_line(path, lineno, line.removeprefix(BOM) if lineno == 1 else line)) is not None:
                yield src


def _text_lines(path: Path, encoding: str, check: Utf8Check) -> Iterator[str]:
    """The file's lines one at a time, line endings kept (what the csv module wants). UTF-8 keeps an
    undecodable byte as a surrogate (that row is quarantined) and `check` sees every line's bytes for
    the file-level verdict; another encoding (data.encoding) decodes strictly."""
    utf8 = is_utf8(encoding)
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


def row_sources(path: Path, kind: str, encoding: str, check: Utf8Check) -> Iterator[Source]:
    """The file's rows as read: UTF-8 JSONL and CSV (in any encoding) one line at a time, Parquet in
    batches; a JSONL file in another encoding and a .json array are read whole."""
    if kind == "parquet":
        return _parquet_rows(path)
    if kind == "csv":
        return _csv_rows(path, _text_lines(path, encoding, check))
    if is_utf8(encoding) and path.suffix.lower() != ".json":
        return _streamed_json_lines(path, check)
    raw = path.read_bytes()
    if is_utf8(encoding):
        for lineno, line in enumerate(raw.split(b"\n"), start=1):
            check.see(lineno, line)
    return _json_lines(path, raw, encoding)
