"""Reading and writing instruction records (JSONL), with stable ids and atomic writes.

Every stage reads and writes JSONL so that DVC can hash, diff and share each artifact,
and so a user can open any intermediate result with a text editor or pandas.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

Record = dict[str, Any]
T = TypeVar("T")
PROGRESS_ENV = "CLEARCURATE_PROGRESS"  # 0: no progress bars (e.g. for log files)


def show_progress() -> bool:
    """Whether long work shows progress bars: yes, unless CLEARCURATE_PROGRESS=0."""
    return os.environ.get(PROGRESS_ENV, "1") != "0"


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """`items` passed through a progress bar on a terminal: a pass over a million rows takes minutes,
    and a stage that says nothing for that long looks hung. Off when stderr is not a terminal."""
    return iter(tqdm(items, desc=desc, total=total, unit="row", mininterval=2, leave=False, disable=None if show_progress() else True))


class InputError(ValueError):
    """Bad input data; the message names the file, line and problem."""


def content_id(prompt: str, response: str) -> str:
    """A stable id from the row's content, so re-running prepare never renumbers rows."""
    digest = hashlib.sha256(json.dumps([prompt, response], ensure_ascii=False).encode("utf-8"))
    return "h" + digest.hexdigest()[:16]


def parse_jsonl(lines: Iterable[str], where: str) -> Iterator[Record]:
    """JSON objects from lines (blank lines skipped); anything else is an error naming `where` and the line."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}:{lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise InputError(f"{where}:{lineno}: expected a JSON object, got {type(row).__name__}")
        yield row


def iter_jsonl(path: str | Path) -> Iterator[Record]:
    """The rows of a JSONL file one at a time (gzip-compressed if it ends in .gz), so a stage can
    stream a million rows; blank lines are skipped, anything else that is not a JSON object is an error."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        yield from parse_jsonl(fh, str(path))


def read_jsonl(path: str | Path) -> list[Record]:
    """All rows of a JSONL file (see `iter_jsonl`), for files that fit in memory."""
    return list(iter_jsonl(path))


class JsonlWriter:
    """Rows written one at a time to a temp file that `atomic_jsonl` renames into place."""

    def __init__(self, fh: IO[str]) -> None:
        self._fh = fh
        self.count = 0

    def write(self, row: Record) -> None:
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1


@contextmanager
def atomic_jsonl(path: str | Path) -> Iterator[JsonlWriter]:
    """Write rows atomically (temp file + rename), so a killed stage never leaves a truncated file;
    an exception inside the block leaves the previous file (or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield JsonlWriter(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, rows: Iterable[Record]) -> int:
    """Write rows atomically (see `atomic_jsonl`); `rows` may be a generator, so nothing is held."""
    with atomic_jsonl(path) as out:
        for row in rows:
            out.write(row)
    return out.count


def write_json(path: str | Path, obj: Any) -> None:
    """Write one JSON document atomically (metrics, logs, manifests)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Write a directory (a model, an adapter) into a temporary sibling, then rename it into place.

    A stage killed while writing leaves no directory (or the previous one), never a half-written
    safetensors file that a later stage would try to load.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    tmp.chmod(0o755)  # mkdtemp's 0700 would make shared model folders private
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

