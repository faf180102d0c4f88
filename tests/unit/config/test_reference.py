"""One place per parameter: params.yaml names every key with its default, the code's defaults are the
same values, and the docs name only keys that exist."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from clearcurate.config import parse
from clearcurate.config.params import _NOT_IN_PARAMS

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
# The demo's own data, not a default: without it a user's data has no noise labels, so no detection metrics.
DEMO_ONLY = {"evaluate.noise_labels"}


def _fields(section: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(section):
        return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    return dict(section)


def _sections() -> list[str]:
    return [name for name, value in SHIPPED.items() if isinstance(value, dict)]


@pytest.mark.parametrize("section", _sections())
def test_params_yaml_names_every_key_with_the_code_default(section: str) -> None:
    """A key left out of a user's params.yaml takes exactly the value the shipped file shows."""
    shipped, default = _fields(getattr(parse(SHIPPED), section)), _fields(getattr(parse({}), section))
    derived = set(_NOT_IN_PARAMS.get(section, {}))  # e.g. correct.beta comes from score.beta
    assert set(SHIPPED[section]) == set(default) - derived, "params.yaml is the reference: every key belongs in it"
    differ = {k: (shipped[k], default[k]) for k in default if shipped[k] != default[k] and f"{section}.{k}" not in DEMO_ONLY}
    assert not differ, f"params.yaml value vs code default (write the default in one place): {differ}"


def test_the_top_level_keys_too() -> None:
    assert parse(SHIPPED).engine == parse({}).engine == SHIPPED["engine"]


def _named_keys(text: str) -> set[str]:
    """`section.key` (optionally `section.key: value`) in backquotes, for the sections params.yaml has."""
    return {m.group(1) for m in re.finditer(r"`([a-z_]+(?:\.[a-z_]+)+)(?::[^`]*)?`", text) if m.group(1).split(".")[0] in SHIPPED}


def _exists(key: str) -> bool:
    node: Any = SHIPPED
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("doc", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))])
def test_docs_name_only_keys_that_exist(doc: str) -> None:
    """A renamed or removed key cannot linger in the docs; a key the parser refuses by name (one that
    moved) may be named, since the docs say where it went."""
    refused = {f"{section}.{key}" for section, keys in _NOT_IN_PARAMS.items() for key in keys}
    unknown = {k for k in _named_keys((ROOT / doc).read_text(encoding="utf-8")) if not _exists(k) and k not in refused}
    assert not unknown, f"{doc} names keys params.yaml does not have: {sorted(unknown)}"


def test_the_check_sees_a_stale_key() -> None:
    named = _named_keys("set `score.k: 3` or `score.kk` and `model.name`; `other.thing` is not ours")
    assert named == {"score.k", "score.kk", "model.name"}
    assert _exists("score.k") and not _exists("score.kk") and not _exists("score.k.x")
