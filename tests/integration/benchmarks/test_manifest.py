"""The benchmark's data sets are frozen: manifest.json records each set's role and a hash of its rows,
and rebuilding every set must give those rows."""

from __future__ import annotations

import json
import subprocess
import sys

import manifest
import yaml

from helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "curation" / "manifest.py"
MANIFEST = json.loads((ROOT / "benchmarks" / "curation" / "manifest.json").read_text(encoding="utf-8"))["sets"]


def test_every_set_rebuilds_to_the_rows_the_manifest_froze():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_demo_and_the_sets_defaults_were_chosen_on_are_not_test_sets():
    """The demo's rows are squad-n-20's; neither may be reported as unseen data, nor may a set that
    shares their test questions be for its downstream numbers."""
    assert MANIFEST["demo"]["hash"] == MANIFEST["squad-n-20"]["hash"]
    assert MANIFEST["squad-n-20"]["role"].startswith("dev") and MANIFEST["dolly-n-20"]["role"].startswith("dev")
    shared = {n for n, s in MANIFEST.items() if s["hash"].get("test") == MANIFEST["squad-n-20"]["hash"]["test"]} - {"squad-n-20", "demo"}
    assert shared and all(MANIFEST[n]["role"] in ("test for detection only", manifest.RETIRED_ROLE) for n in shared)
    assert all(s["role"] in ("dev", "dev (retired test set)", "test", "test for detection only")
               and s["frozen"] for s in MANIFEST.values())
    natural = [n for n, s in MANIFEST.items() if "natural" in s["noise"] and s["role"] == "test"]
    assert {"truthfulqa-test-part", "bbm-test-part"} <= set(natural)


def test_no_default_changed_since_a_test_sets_numbers_were_read():
    """The rule "a test set whose numbers were read before a change to a default is retired", checked: each
    read test set recorded the defaults' fingerprint when its numbers were first read."""
    today = manifest.defaults_fingerprint()
    for name, s in MANIFEST.items():  # a retired set keeps its read record: it was read under other defaults
        assert not (name in manifest.RETIRED and s["role"].startswith("test")), f"{name} is retired but still a test set"
    read = {n: s["read"] for n, s in MANIFEST.items() if s["role"].startswith("test") and "read" in s}
    assert read, "no test set is recorded as read: the check below would pass vacuously"
    # A test set whose numbers the report publishes has been read: it must say so, or this check would skip it.
    reported = json.loads((ROOT / "benchmarks" / "curation" / "results.json").read_text(encoding="utf-8"))["datasets"]
    unread = sorted(n for n, d in reported.items() if d.get("role", "").startswith("test") and n not in read)
    assert not unread, f"{unread}: in results.json but not recorded as read (manifest.py --read NAME)"
    for name, when in read.items():
        assert when["defaults"] == today, (
            f"a default changed after {name}'s numbers were read on {when['date']}: retire it (manifest.RETIRED) "
            "and build a fresh test set, or undo the change")


def test_the_defaults_fingerprint_moves_with_a_default_and_not_with_the_batch_size(tmp_path, monkeypatch):
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    base = manifest.defaults_fingerprint(ROOT / "params.yaml")

    def fingerprint(section: str, key: str, value: object) -> str:
        changed = tmp_path / f"{section}-{key}.yaml"
        changed.write_text(yaml.safe_dump({**params, section: {**params[section], key: value}}), encoding="utf-8")
        return manifest.defaults_fingerprint(changed)

    assert fingerprint("model", "batch_size", 32) == base
    assert fingerprint("filter", "quantile", 0.3) != base
    monkeypatch.setattr(manifest.presets, "FLUENCY_SCALE", 2.0)
    assert manifest.defaults_fingerprint(ROOT / "params.yaml") != base


def test_a_set_drawn_again_shares_no_row_with_any_set_of_its_kind_before_it():
    """A retired fresh set's replacement (`specs.FRESH_AGAIN`) avoids the rows of every earlier set of its kind,
    the retired fresh one included; and every retired test set names what replaced it, or why nothing can."""
    import specs

    from clearcurate.data.noisy_data import SOURCES

    every = specs.plan(quick=False)
    assert specs.FRESH_AGAIN and all(s in every for s in specs.FRESH_AGAIN)
    for again in specs.FRESH_AGAIN:
        earlier = [s for s in every[: every.index(again)] if s.kind == again.kind]
        assert again.fresh and set(again.avoids) <= {s.name for s in earlier}
        train, test, _ = specs.build(again, SOURCES)
        mine = {r["id"] for r in (*train, *test)}
        assert len(mine) == again.n_train + again.n_test
        for other in earlier:
            o_train, o_test, _ = specs.build(other, SOURCES)
            assert not mine & {r["id"] for r in (*o_train, *o_test)}, (again.name, other.name)
        assert MANIFEST[again.name]["role"] == "test"
    for name, why in manifest.RETIRED.items():
        if name.endswith("-fresh") or name.endswith("-test-300") or name.endswith("-test-250"):
            assert "replaces it" in why or "can replace it" in why, name
