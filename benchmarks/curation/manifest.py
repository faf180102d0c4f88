"""Every data set the benchmark and the development scripts use, with its role, where its rows come
from and a hash of them: `manifest.json`. (dev_natural.py's two sets are the exception: their wrong answers
were written by the model and are stored with its measurements in raw/dev, not rebuilt from the sources.)

A test set is one no default was chosen on. Its numbers may be read once a change is final; a test
set whose numbers were read before a change to a default is retired (it becomes a development set)
and a fresh one replaces it. The roles below say which sets are which, and why; `--check` rebuilds
every set and fails when one no longer gives its recorded rows (a builder changed under a frozen set).
`--read` records that a test set's numbers were read, with a fingerprint of the defaults then
(`defaults_fingerprint`); a test fails while any read test set's fingerprint differs from today's.

    .venv/bin/python benchmarks/curation/manifest.py           # write manifest.json (keeps each set's frozen date)
    .venv/bin/python benchmarks/curation/manifest.py --check   # rebuild every set, compare with manifest.json
    .venv/bin/python benchmarks/curation/manifest.py --read dolly-n-20-fresh-2   # its numbers were read today
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import dev
import dev_freeform
import dev_growth
import dev_lengths
import natural_sets
from pydantic import TypeAdapter
from specs import HERE, NATURAL_KINDS, build, plan

from clearcurate.config import params as params_mod
from clearcurate.core import presets
from clearcurate.core.records import Record, read_jsonl, write_json
from clearcurate.data.noisy_data import SOURCES

log = logging.getLogger("manifest")
MANIFEST = HERE / "manifest.json"
ROOT = HERE.parents[1]
RETIRED_ROLE = "dev (retired test set)"

# Benchmark sets that were looked at while defaults were chosen, or whose numbers were read before a default changed:
# development sets now, not test sets.
RETIRED = {
    "squad-n-20": "the same rows as the demo (data/raw/), on which filter.quantile, score.fold_epochs and "
                  "score.likelihood_scale were chosen",
    "dolly-n-20": "the free-form preset was adopted in a commit that reported this set's AUROC; dolly-n-20-fresh replaces it",
    **{name: "its numbers were read before the primary endpoints were named (issue 29); "
             f"{name}-fresh replaces it" for name in ("squad-n-20-1k", "squad-plausible-20-1k")},
    **{name: "its numbers were read (2026-12-04) before train.lora_dropout, train.precision and correct.max_new_tokens_cap "
             f"changed (issues 30 and 31, chosen on the demo, a development set); {then}"
       for name, then in (("dolly-n-20-fresh", "dolly-n-20-fresh-2 replaces it"),
                          ("truthfulqa-test-300", "truthfulqa-test-300-fresh-2 replaces it"),
                          ("bbm-test-250", "no BBM set can replace it: it holds 250 of the 253 rows the test half gives"))},
    **{name: f"its numbers were in RESULTS.md from {first} on, before defaults changed (train.precision and train.lora_dropout "
             "in issue 30, the free-form preset and correct.max_new_tokens_cap in issue 31, 2026-12-04); no fresh set "
             "replaces it yet"
       for name, first in (("squad-n-0", "2026-11-25"), ("squad-n-40", "2026-11-25"), ("gsm8k-n-20", "2026-11-25"),
                           ("squad-plausible-20", "2026-11-27"), ("gsm8k-plausible-20", "2026-11-27"))},
}
FRESH_NOTE = "rows no earlier set and no development set used (specs.earlier_rows)"


def recorded() -> dict[str, dict[str, Any]]:
    """The sets as manifest.json records them (role, note, hashes, dates); empty before it is first written."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))["sets"] if MANIFEST.exists() else {}


def defaults_fingerprint(params_file: Path = ROOT / "params.yaml") -> str:
    """What "a default" is for the rule on test sets: every setting a run takes (params.yaml, with the
    code's defaults filled in for what it leaves out), but for the data's paths, the engine and the batch
    size, and the scoring presets' constants. Values, not bytes: a comment or a refactor that keeps every
    value keeps the fingerprint."""
    constants = {k: v for k, v in vars(presets).items() if k.isupper()}
    settings = TypeAdapter(params_mod.Params).dump_python(params_mod.load_file(params_file), mode="json")
    for where in ("data", "engine"):  # the user's files and where the work runs: no result depends on them
        settings.pop(where)
    settings["model"].pop("batch_size")  # speed only (tests/unit/llm/test_hf.py: batched and one-at-a-time inference agree)
    blob = {"params": settings, "presets": constants}
    as_json = json.dumps(blob, sort_keys=True, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o) else repr(o))
    return hashlib.sha256(as_json.encode("utf-8")).hexdigest()[:16]


def rows_hash(rows: Sequence[Record]) -> str:
    """What a set is: its rows' ids, prompts and responses, in order."""
    content = [(r["id"], r["prompt"], r["response"]) for r in rows]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def entries() -> dict[str, tuple[dict[str, Any], Callable[[], dict[str, str]]]]:
    """Every set: what the manifest says of it, and how to hash its rows (called only to write or check)."""
    out: dict[str, tuple[dict[str, Any], Callable[[], dict[str, str]]]] = {}

    def benchmark_hash(spec: Any) -> Callable[[], dict[str, str]]:
        def hashed() -> dict[str, str]:
            train, test, _ = build(spec, SOURCES)
            return {"train": rows_hash(train), **({"test": rows_hash(test)} if test else {})}
        return hashed

    for spec in plan(quick=False):
        role = RETIRED_ROLE if spec.name in RETIRED else "test"
        note = RETIRED.get(spec.name) or (FRESH_NOTE + "".join(f", nor {name}" for name in spec.avoids) if spec.fresh else "")
        rows = f"{spec.n_train} train, {spec.n_test} test" if spec.n_test else f"{spec.n_train} (detection only)"
        noise = f"{spec.noise_rate:.0%} {spec.noise or ('natural' if spec.kind in NATURAL_KINDS else 'default')}"
        note = note or ("drawn from the test half of the questions (natural_sets.part_of)" if spec.kind in NATURAL_KINDS else "")
        out[spec.name] = ({"role": role, "used_by": "run.py", "source": _source(spec.kind), "rows": rows, "noise": noise, "note": note},
                          benchmark_hash(spec))
    for spec in (*dev.DEV_SETS, *dev.DEV_SETS_POWERED):
        out[spec.name] = ({"role": "dev", "used_by": "dev.py", "source": _source(spec.kind), "rows": f"{spec.n_train} train",
                           "noise": f"{spec.noise_rate:.0%} {spec.noise or 'default'}",
                           "note": "rows no benchmark set trains or tests on (dev.dev_rows)"},
                          lambda spec=spec: {"train": rows_hash(dev.dev_rows(spec)[0])})
    for fs in dev_freeform.SETS:
        out[fs.name] = ({"role": "dev", "used_by": "dev_freeform.py", "source": _source(fs.kind), "rows": "100 train",
                         "noise": f"{fs.noise_rate:.0%}", "note": "Dolly rows from the development pool" if fs.kind == "dolly" else ""},
                        lambda fs=fs: {"train": rows_hash(dev_freeform.rows_of(fs)[0])})
    for ns in dev_growth.SETS:
        out[ns.name] = ({"role": "dev", "used_by": "dev_growth.py", "source": _source(ns.kind), "rows": f"{ns.n_rows} train",
                         "noise": f"{ns.noise_rate:.0%} natural", "note": "questions of the development half (natural_sets.part_of)"},
                        lambda ns=ns: {"train": rows_hash(natural_sets.build(ns)[0])})
    out[dev_lengths.NAME] = ({"role": "dev", "used_by": "dev_lengths.py, dev_sampling.py", "source": _source("dolly"),
                              "rows": f"{dev_lengths.SET.n_train} train", "noise": f"{dev_lengths.SET.noise_rate:.0%} default",
                              "note": f"Dolly rows from the development pool, {dev_lengths.SET.short_rows} of them short answers; used "
                                      "since 2026-12-04 (558c9dc)"},
                             lambda: {"train": rows_hash(dev_lengths.rows_and_labels()[0])})
    for kind in natural_sets.KINDS:
        name = f"{kind}-test-part"
        drawn = [s.name for s in plan(quick=False) if s.kind == kind]
        out[name] = ({"role": "test", "used_by": f"run.py ({', '.join(drawn)})", "source": _source(kind),
                      "rows": f"up to {natural_sets.largest(kind, 'test')} at 20% wrong",
                      "noise": "natural", "note": "the held-out half by question, which no development script reads"},
                     lambda kind=kind: {"questions": _pool_hash(kind)})
    out["demo"] = ({"role": "dev", "used_by": "make demo (data/raw/)", "source": _source("squad"), "rows": "100 train, 90 test",
                    "noise": "20% default", "note": "the same rows as squad-n-20"},
                   lambda: {"train": rows_hash(read_jsonl(ROOT / "data/raw/train.jsonl")),
                            "test": rows_hash(read_jsonl(ROOT / "data/raw/test.jsonl"))})
    return out


def _mark_shared_tests(sets: dict[str, dict[str, Any]]) -> None:
    """A test set whose test questions are a retired set's was looked at through them: its detection
    numbers (on its own training rows) are unseen, its downstream numbers are not."""
    # detection-only sets (the natural ones) have no test rows to share
    retired = {s["hash"]["test"]: name for name, s in sets.items() if name in RETIRED and s["hash"].get("test")}
    for s in sets.values():
        if s["role"] == "test" and (other := retired.get(s["hash"].get("test"))):
            s["role"] = "test for detection only"
            s["note"] = f"its test questions are {other}'s ({RETIRED[other]}): its downstream numbers are not from unseen data"


def _source(kind: str) -> str:
    return {"squad": "SQuAD v1.1 dev (data/sources)", "gsm8k": "GSM8K train/test (data/sources)", "dolly": "Dolly 15k (data/sources)",
            "truthfulqa": "TruthfulQA judged answers (data/sources)", "bbm": "BIG-Bench-Mistake (data/sources)"}[kind]


def _pool_hash(kind: str) -> str:
    pool = natural_sets.candidates(kind, "test")
    return hashlib.sha256(json.dumps(sorted(pool), ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="rebuild every set and compare with manifest.json; write nothing")
    parser.add_argument("--read", nargs="+", default=[], metavar="SET",
                        help="record that these test sets' numbers were read today, under today's defaults "
                             "(the first reading stays: a set read before is left as it was)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stored = recorded()
    sets, wrong = {}, []
    for name, (meta, hashed) in entries().items():
        hashes = hashed()
        previous = stored.get(name, {})
        if args.check and previous.get("hash") != hashes:
            wrong.append(f"{name}: manifest {previous.get('hash')}, rebuilt {hashes}")
        frozen = previous.get("frozen") if previous.get("hash") == hashes else date.today().isoformat()
        sets[name] = {**meta, "hash": hashes, "frozen": frozen, **({"read": previous["read"]} if "read" in previous else {})}
    if args.check:
        missing = sorted(set(stored) - set(sets))
        for line in wrong + [f"{name}: in manifest.json, no longer built" for name in missing]:
            log.error(line)
        return 1 if wrong or missing else 0
    _mark_shared_tests(sets)
    for name in args.read:
        if not sets.get(name, {}).get("role", "").startswith("test"):
            parser.error(f"--read {name}: not a test set in the manifest")
        sets[name].setdefault("read", {"date": date.today().isoformat(), "defaults": defaults_fingerprint()})
    write_json(MANIFEST, {"about": __doc__.split("\n\n")[0].replace("\n", " "), "sets": sets})
    log.info("%d sets written to %s", len(sets), MANIFEST)
    return 0


if __name__ == "__main__":
    sys.exit(main())
