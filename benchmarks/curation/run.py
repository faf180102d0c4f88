"""Does curation work? CLEAR against the alternatives a user would try, on data with known noise.

Reproduces the CLEAR paper's setup at CPU scale: SQuAD-N (0%, 20% and 40% noise) and GSM8K-N (20%),
plus plausible errors (another answer span of the paragraph; a worked solution with one step
altered), one base model for everything, and every curated set fine-tuned with the same LoRA
budget over several seeds. Detection scores: CLEAR (the pipeline's default crossfit recipe), the
paper's base-model recipe, direct 1-5 rating (AlpaGasus), perplexity and IFD (Superfiltering).
Downstream: no curation, a random filter, rating, IFD, CLEAR Auto-Filter (fixed quantile and
quantile: auto), CLEAR Filter + Correct with each judge, the oracle filter and the oracle
correction (clean targets restored). Every method is compared with No curation by a paired
bootstrap over seeds and test questions. Two powered sets (1,000 training rows, 500 test
questions, 5 seeds) can resolve a 3-point EM difference. Dolly-N (free-form responses with
realistic defects) is judged by held-out loss and token F1 with the reference. Two natural-error sets
(TruthfulQA answers and BIG-Bench-Mistake traces that real models wrote and people labelled, from the
question halves no development script reads) measure detection only.

Every result (a scorer on a dataset, a model trained on a curated set with a seed) is stored in
its set's archive under raw/results/ (one compressed JSON file per set), so an interrupted run
resumes where it stopped, and the committed archives are the evidence behind the report. The report (RESULTS.md, results.json, results.png)
is written from them after every dataset. The work comes in parts (`--part`), each sized to fit
one sitting. The test sets' parts: `fresh-n`, `fresh-plausible`, `fresh-freeform-2` and `natural-fresh-2`. The
other parts hold only retired test sets (manifest.json), which only `--only` recomputes (it runs the sets it names,
whatever `--part` says): `small` (the 100-row sets), `powered-n`, `powered-plausible`, `freeform`, `natural` and
`fresh-freeform`. Every run's report shows every set's stored work.

    .venv/bin/python benchmarks/curation/run.py --only squad-n-40    # a retired set: recomputed only when named
    .venv/bin/python benchmarks/curation/run.py --part fresh-n --batch-size 32     # a test set's part, on a GPU
    .venv/bin/python benchmarks/curation/run.py --part fresh-n --methods none random clear_filter clear_correct  # endpoints first
    .venv/bin/python benchmarks/curation/run.py --quick              # small version, minutes (report in raw/results/quick/report)
    .venv/bin/python benchmarks/curation/run.py --report-only        # rebuild the report from raw/

On a GPU machine with no network, `airgap.py` carries the packages and the model there and `gpu_run.sh`
runs parts with one process per seed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from cells import LEGACY_SETTINGS, Bench, load_params
from harness import Cache, record_work, run_dataset
from manifest import RETIRED_ROLE, recorded
from report import report
from specs import FREEFORM, FRESH, FRESH_AGAIN, NATURAL, POWERED, plan

from clearcurate.cache import ScoreCache, model_fingerprint
from clearcurate.data.noisy_data import (
    GSM8K_TRAIN_SOURCE,
    SOURCES,
    SQUAD_SOURCE,
)
from clearcurate.llm import models
from clearcurate.llm.factory import load_lm
from clearcurate.llm.hf import LocalLM
from clearcurate.pipeline import setup_logging

log = logging.getLogger("benchmark")
HERE = Path(__file__).resolve().parent


class WorkRecordingCache(Cache):
    """The results cache, adding the running part's work time to its set's record with every result stored.

    A run killed without a signal Python sees (SIGKILL, as at the end of a session) then loses only the time
    since its last stored result, not all of its part's: a set computed over several sittings records them all.
    """

    def __init__(self, root: Path, read_only: bool = False) -> None:
        super().__init__(root, read_only)
        self._part: tuple[str, LocalLM] | None = None  # (its run_meta name, the model it runs on)
        self._since = time.perf_counter()
        self._writes = 0  # `writes` when the part began: a part that stored nothing did no work and records none

    def start_part(self, meta_name: str, lm: LocalLM) -> None:
        self._part, self._since, self._writes = (meta_name, lm), time.perf_counter(), self.writes

    def end_part(self) -> None:
        """Record the time since the last stored result (work an interruption lost counts too) and stop recording."""
        if self._part is not None and self.writes > self._writes:
            self._record()
        self._part = None

    def put(self, name: str, value: Any) -> Any:
        stored = super().put(name, value)
        if self._part is not None:
            self._record()
        return stored

    def _record(self) -> None:
        assert self._part is not None
        now = time.perf_counter()
        record_work(self, self._part[0], now - self._since, self._part[1])  # stored by update(), not put(): no recursion
        self._since = now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small datasets, one seed: minutes instead of hours; its report goes to CACHE/results/quick/report, "
                             "not over the committed one, unless --out says otherwise")
    parser.add_argument("--model", default=None, help="model.name to benchmark (default: params.yaml's)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="training seeds per cell (default 3; 1 with --quick); sets that fix their own count "
                             "(the powered and fresh ones: 5) ignore it")
    parser.add_argument("--only", nargs="*", default=None,
                        help="dataset names to run, whatever --part says (default: every set of the part); the report "
                             "still shows every set's stored work. With no names: convert the model, run nothing")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="pipeline params: the settings benchmarked")
    parser.add_argument("--data-root", type=Path, default=SOURCES,
                        help="folder with the bundled SQuAD, GSM8K and Dolly sources (default: data/sources; "
                             "the natural-error sets always read the repository's)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where RESULTS.md, results.json and results.png go (default: benchmarks/curation, the committed "
                             "report; with --quick, CACHE/results/quick/report)")
    parser.add_argument("--cache", type=Path, default=HERE / "raw",
                        help="raw results of finished work (results/, one archive per set, committed for the full run), "
                             "the converted model (models/) and per-row scoring work "
                             "(score-cache/, not committed: an interrupted scoring run resumes from it)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per forward pass (default: params.yaml's model.batch_size; e.g. 32 on a GPU); "
                        "changes speed, not results")
    parts = sorted({p.part for p in (*POWERED, FREEFORM, *NATURAL, *FRESH, *FRESH_AGAIN)})
    parser.add_argument("--part", default="small", choices=("small", *parts, "all"),
                        help="which part to run (each fits a budget; the others are reported from finished work): "
                             "fresh-n, fresh-plausible, fresh-freeform-2 and natural-fresh-2 = a test set; small = the 100-row sets; "
                             "powered-* = one 1,000-row set, 5 seeds; "
                             "freeform = Dolly-N; natural = the first natural-error sets, detection only; a part skips its "
                             "retired sets unless --only names them (default: small)")
    parser.add_argument("--only-seeds", type=int, nargs="+", default=None,
                        help="train only these seeds (0-based) of the selected part, e.g. one per parallel process on a GPU "
                             "sharing one --cache; the report then shows only them: rebuild it with --report-only")
    parser.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                        help="train only these methods of the selected part (e.g. the primary endpoints' and the random "
                             "control's before the oracle's, where compute is short); the report still shows all stored work")
    parser.add_argument("--score-only", action="store_true",
                        help="score the selected part's sets with every scorer and train nothing, e.g. before one process "
                             "per seed (--only-seeds) starts on a GPU, so that they do not all score the same rows")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from finished work; run nothing")
    args = parser.parse_args(argv)
    if args.only_seeds is not None and args.report_only:
        parser.error("--only-seeds trains a subset of seeds; --report-only trains nothing (drop one of them)")
    if args.score_only and (args.report_only or args.only_seeds is not None):
        parser.error("--score-only trains no seed and scores: drop --only-seeds / --report-only")
    if args.methods is not None and (args.report_only or args.score_only):
        parser.error("--methods picks what to train; --report-only and --score-only train nothing (drop one of them)")
    setup_logging()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a time limit's SIGTERM unwinds like Ctrl-C
    for needed in (args.params, args.data_root / SQUAD_SOURCE.name, args.data_root / GSM8K_TRAIN_SOURCE.name):
        if not needed.exists():
            parser.error(f"{needed} not found (run from the repository root, or pass --data-root)")
    params, typed = load_params(args.params, args.batch_size)
    model_name = args.model or params["model"]["name"]
    seeds = args.seeds or (1 if args.quick else 3)
    specs = plan(args.quick)  # every set is reported; --part and --only pick which are computed
    if args.only and (unknown := sorted(set(args.only) - {s.name for s in specs})):
        parser.error(f"--only: no set named {', '.join(unknown)} in the {'quick ' if args.quick else ''}plan "
                     f"(its sets: {', '.join(s.name for s in specs)})")
    out = args.out or (args.cache / "results" / "quick" / "report" if args.quick else HERE)
    safe_name = model_name.replace("/", "_")
    cache = WorkRecordingCache(args.cache / "results" / ("quick" if args.quick else "full") / safe_name, read_only=args.report_only)
    lm = None
    if not args.report_only:  # one model load for the whole run
        model_dir = args.cache / "models" / safe_name
        if not (model_dir / "config.json").exists():
            models.convert_to_safetensors(model_name, model_dir, seed=int(params["model"].get("seed", 0)))
        lm = load_lm(typed, model_dir)
        if args.only == []:
            log.info("--only with no names: the model is converted (%s), nothing run", model_dir)
            return 0
    rows_cache = None if args.report_only else ScoreCache(args.cache / "score-cache" / safe_name)
    model_id = "" if args.report_only else model_fingerprint(args.cache / "models" / safe_name)
    bench = Bench(lm, params, cache, model_name, seeds, rows_cache, model_id, () if args.score_only else args.only_seeds)
    # Parts not selected still appear in the report, from whatever of their work has finished; a set with no cells at
    # today's settings shows those made under the settings before issue 30, all stale.
    reader = Bench(None, params, Cache(cache.root, read_only=True), model_name, seeds)
    legacy = Bench(None, load_params(LEGACY_SETTINGS)[0], Cache(cache.root, read_only=True), model_name, seeds, legacy=True)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/curation/run.py", *[a for a in given if a != "--report-only"]])
    results: dict[str, Any] = {"datasets": {}}
    # The full sets' roles (manifest.json): a retired test set is development data now, so its numbers are kept as they
    # were measured and no part spends compute on it unless --only names it.
    roles = {} if args.quick else recorded()
    for spec in specs:
        selected = not args.report_only and (spec.name in args.only if args.only is not None else args.part in ("all", spec.part))
        role = roles.get(spec.name, {})
        if selected and role.get("role") == RETIRED_ROLE and spec.name not in (args.only or ()):
            log.info("%s is a retired test set (development data now; manifest.json): reported from its stored work, "
                     "not recomputed (--only %s recomputes it)", spec.name, spec.name)
            selected = False
        meta_name = f"{spec.name}/run_meta"
        if selected:
            assert lm is not None
            cache.start_part(meta_name, lm)
        try:
            runner = bench if selected else reader
            if selected and args.methods is not None:  # train the chosen methods, then report all the set's stored work
                if unknown := sorted(set(args.methods) - set(spec.methods)):
                    parser.error(f"--methods: {spec.name} has no {', '.join(unknown)} (its methods: {', '.join(spec.methods)})")
                run_dataset(bench, replace(spec, methods=tuple(m for m in spec.methods if m in args.methods)), args.data_root)
                runner = reader
            outcome = run_dataset(runner, spec, args.data_root)
            if outcome is None and not selected:
                outcome = run_dataset(legacy, spec, args.data_root)
        finally:  # an interrupted part (Ctrl-C, a time limit's SIGTERM) records its time since the last result too
            cache.end_part()
        if outcome is not None:
            run_meta = cache.get(meta_name) or {"wall_seconds": 0.0, "machines": [], "date": "n/a"}
            machines = "; ".join(run_meta["machines"]) or "n/a"
            outcome["machine"] = f"{machines} (last work {run_meta['date']}, {run_meta['wall_seconds'] / 60:.0f} min)"
            outcome["wall_seconds"] = run_meta["wall_seconds"]
            if role:
                outcome["role"], outcome["role_note"] = role["role"], role["note"]
            results["datasets"][spec.name] = outcome
        if not results["datasets"]:
            continue
        results["meta"] = {
            "command": command, "wall_minutes": sum(d["wall_seconds"] for d in results["datasets"].values()) / 60,
            "model": model_name, "seeds": seeds, "train": params["train"], "eta": bench.correct_cfg.eta,
            "judge": bench.correct_cfg.judge, "missing": [s.name for s in specs if s.name not in results["datasets"]],
        }
        out.mkdir(parents=True, exist_ok=True)
        report(results, out)
        log.info("%s done; report written to %s", spec.name, out / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
