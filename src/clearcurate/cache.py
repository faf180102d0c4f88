"""An on-disk cache of per-row scoring results and fold adapters.

Scoring is the pipeline's most expensive stage, so its work is kept row by row: an interrupted
`dvc repro` resumes where it stopped, and rows added to a dataset cost only themselves. Every
key is a hash of what determines the result (model weights, the row's prompt and response, the
settings that affect it), so a changed setting misses the cache instead of reusing a stale result.

Location: `.clearcurate/cache/` under the working directory (ignored by git and DVC), or the folder
named by the environment variable `CLEARCURATE_CACHE`. Deleting the folder clears it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from clearcurate.core.records import Record, atomic_dir, write_json, write_jsonl

DEFAULT_DIR = Path(".clearcurate/cache")
ENV_VAR = "CLEARCURATE_CACHE"
# Part of every key: bump it when what is cached, or how it is computed, changes meaning.
CACHE_VERSION = 1
FAILURES = "failed.jsonl"  # the rows the last run could not score (an engine's row-level failures)


def cache_dir() -> Path:
    """Where the cache lives: $CLEARCURATE_CACHE, else .clearcurate/cache in the working directory."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def digest(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (dict keys sorted)."""
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_fingerprint(modules: Sequence[str]) -> str:
    """Hash of the source files of these modules (found, not imported), so results of other code never match.

    Scoring puts it into its row keys (clearcurate.scoring.code_version), not into `digest` itself:
    keys that others build with `digest` (the benchmark's result cells) do not move with the code.
    """
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"no source for module {name!r}")
        h.update(name.encode() + hashlib.sha256(Path(spec.origin).read_bytes()).digest())
    return h.hexdigest()


def model_fingerprint(model_dir: str | Path) -> str:
    """Hash of a model directory's weights and config, so results of other weights never match."""
    model_dir = Path(model_dir)
    h = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.json")):
        file_hash = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 24):
                file_hash.update(chunk)
        h.update(path.name.encode() + file_hash.digest())
    return h.hexdigest()


class ScoreCache:
    """Per-row results (JSON files) and fold adapters under one root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.json"

    def _read(self, kind: str, key: str) -> Record | None:
        path = self._path(kind, key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):  # missing or unreadable: recompute
            return None

    def get(self, kind: str, key: str) -> Record | None:
        value = self._read(kind, key)
        counter = self.hits if value is not None else self.misses
        counter[kind] = counter.get(kind, 0) + 1
        return value

    def has_all(self, kind: str, keys: Sequence[str]) -> bool:
        """Whether every key has a readable entry (without counting hits)."""
        return all(self._read(kind, k) is not None for k in keys)

    def put(self, kind: str, key: str, value: Record) -> None:
        write_json(self._path(kind, key), value)  # atomic: a kill never leaves half an entry

    # ---- fold adapters ----------------------------------------------------------------------
    def fold_adapter(self, slot: str, train_rows: Sequence[str], tolerance: float) -> Path | None:
        """A saved fold adapter for `slot` trained on (nearly) these rows, or None.

        `train_rows` are per-row content hashes (id, prompt, response), so an edited response
        counts as a changed row.

        A fold-f adapter never trained on a fold-f row (folds are fixed by id), so it stays a valid
        out-of-fold scorer when rows are added; it is reused while the rows it trained on and the
        current ones differ by at most `tolerance` in either direction, and retrained beyond that.
        """
        index = self.root / "folds" / f"{slot}.json"
        if not index.exists():
            return None
        entry = self._read_index(index)
        if entry is None:
            return None
        adapter = self.root / "folds" / entry["adapter"]
        old, new = set(entry["train_rows"]), set(train_rows)
        if not new or not old or not (adapter / "adapter_config.json").exists():
            return None
        shared = len(old & new)
        if shared / len(new) < 1 - tolerance or shared / len(old) < 1 - tolerance:
            return None
        return adapter

    @staticmethod
    def _read_index(index: Path) -> Record | None:
        try:
            entry = json.loads(index.read_text(encoding="utf-8"))
            return entry if {"adapter", "train_rows"} <= entry.keys() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            return None

    def save_fold_adapter(self, slot: str, train_rows: Sequence[str], write: Callable[[Path], object]) -> Path:
        """Save a freshly trained fold adapter and make it the one `fold_adapter` finds for `slot`.

        `write(folder)` writes the adapter's files (a peft model's `save_pretrained`, or files an
        engine trained elsewhere). Every training run gets a new name (CPU training is not
        bit-reproducible), so samples cached under one adapter are never mixed with another's.
        """
        name = f"{slot}-{uuid.uuid4().hex[:16]}"
        adapter = self.root / "folds" / name
        with atomic_dir(adapter) as tmp:
            write(tmp)
        write_json(self.root / "folds" / f"{slot}.json", {"adapter": name, "train_rows": sorted(train_rows)})
        return adapter

    def record_failures(self, failures: Mapping[str, str]) -> Path:
        """Write the rows a run could not score, with why, to `failed.jsonl` (replacing the last run's list)."""
        path = self.root / FAILURES
        write_jsonl(path, ({"id": row_id, "reason": reason} for row_id, reason in failures.items()))
        return path
