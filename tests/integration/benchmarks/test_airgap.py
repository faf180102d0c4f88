"""airgap.py carries the benchmark's packages to a GPU machine with no network: the pins it carries are the
ones every other result ran with, and a join of its parts is checked before anything is installed."""

from __future__ import annotations

import importlib.metadata
import os

import airgap
import pytest

from helpers import ROOT


def test_every_carried_package_is_pinned_and_is_the_version_the_tests_run():
    pins = airgap.locked_versions(ROOT / "requirements.lock", airgap.PACKAGES)
    model = airgap.model_pin(ROOT / "pyproject.toml")
    for pin in [*pins, model]:
        name, version = pin.split("==")
        assert importlib.metadata.version(name) == version, pin


def test_an_unpinned_package_is_an_error(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("transformers==5.24.0\n    # via clearcurate\n")
    assert airgap.locked_versions(lock, ("transformers",)) == ["transformers==5.24.0"]
    with pytest.raises(SystemExit, match="no pin for peft"):
        airgap.locked_versions(lock, ("transformers", "peft"))


def test_parts_join_to_the_bytes_split(tmp_path):
    data = os.urandom(5 * 2**19)  # 2.5 MiB: parts of 1, 1 and 0.5 MiB
    manifest = airgap.split(data, tmp_path, 1, {"wheels": ["a.whl"]})
    assert manifest["parts"] == ["part-00", "part-01", "part-02"] and manifest["wheels"] == ["a.whl"]
    assert [(tmp_path / p).stat().st_size for p in manifest["parts"]] == [2**20, 2**20, 2**19]
    assert airgap.join(tmp_path) == (manifest, data)
    airgap.split(data[: 2**20], tmp_path, 1, {})  # a second split leaves no part of the first behind
    assert sorted(p.name for p in tmp_path.glob("part-*")) == ["part-00"]


def test_a_missing_or_damaged_part_is_named_before_anything_is_installed(tmp_path):
    data = os.urandom(3 * 2**19)
    airgap.split(data, tmp_path, 1, {})
    (tmp_path / "part-01").unlink()
    with pytest.raises(SystemExit, match="part-01 have not arrived"):
        airgap.join(tmp_path)
    airgap.split(data, tmp_path, 1, {})
    damaged = bytearray((tmp_path / "part-00").read_bytes())
    damaged[7] ^= 1
    (tmp_path / "part-00").write_bytes(bytes(damaged))
    with pytest.raises(SystemExit, match="SHA-256"):
        airgap.join(tmp_path)
