"""The benchmark's data sets are frozen: manifest.json records each set's role and a hash of its rows,
and rebuilding every set must give those rows."""

from __future__ import annotations

import json
import subprocess
import sys

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
    assert shared and all(MANIFEST[n]["role"] == "test for detection only" for n in shared)
    assert all(s["role"] in ("dev", "dev (retired test set)", "test", "test for detection only")
               and s["frozen"] for s in MANIFEST.values())
    natural = [n for n, s in MANIFEST.items() if "natural" in s["noise"] and s["role"] == "test"]
    assert {"truthfulqa-test-300", "bbm-test-250"} <= set(natural)
