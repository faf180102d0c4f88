"""The Ray engine (`engine: ray`): the model work of score, correct and evaluate on a Ray cluster.

Where the local engine works through the rows in this process, this one
- trains the missing cross-fit fold adapters as Ray tasks, in parallel (one per GPU, or sharing the CPUs);
- streams rows through Ray Data in blocks of `model.batch_size` rows to a fixed pool of actors, each of
  which loads the base model once and holds the adapters the stage needs (shipped as bytes, written to
  a temporary folder only while peft reads them), so any block can go to any free actor:
  `run` for scoring (`ScoreWorker`: every fold adapter; blocks sorted by fold, so an actor switches
  adapters about once), `map_blocks` for any work function `(LocalLM, rows) -> one result a row`
  (`BlockWorker`: Auto-Correct's `correct_rows`, evaluate's `clearcurate.answers.model_answers`);
- hands each block's results back to the driver as it finishes (scoring caches them: a killed run
  resumes like a local one, and either engine resumes the other's run: same keys, same seeds);
- records a row that fails, with its reason, and goes on: a failing block is retried row by row, so
  only a row that fails by itself fails; what that means is the stage's call.

The cluster: $RAY_ADDRESS (e.g. `ray://head:10001` or `auto`), else the latest `ray start` on this
machine, else a local one started here for the run (`ray.init`'s own rules). How many workers: one
per GPU, else one per CPU slot of CLEARCURATE_RAY_THREADS torch threads (1), unless
CLEARCURATE_RAY_WORKERS says. These are environment settings, not params: where the work runs does
not change what it computes, so they must not rerun a DVC stage. Every node needs the same
environment and the base model at the same path (a shared filesystem): a worker checks the weights'
fingerprint and stops the run when they differ.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType

import numpy as np
import ray
import ray.data
import torch

from clearcurate.cache import model_fingerprint
from clearcurate.config import LoraTrainConfig, ScoreConfig
from clearcurate.core import presets
from clearcurate.core.records import Record
from clearcurate.llm.hf import LocalLM
from clearcurate.llm.models import load
from clearcurate.scoring import base_parts, reflection_records, sample_records

log = logging.getLogger(__name__)

WORKERS_ENV = "CLEARCURATE_RAY_WORKERS"
THREADS_ENV = "CLEARCURATE_RAY_THREADS"
Work = Callable[[LocalLM, list[Record]], list[Record]]  # a block of rows -> one result a row, in order


class RayEngine:
    """Model work on a Ray cluster; use as a context manager (connects, and disconnects at the end).

    `workers` / `threads` override the environment (benchmarks compare worker counts in one run).
    """

    def __init__(self, model_dir: str | Path, model_id: str, batch_size: int, workers: int | None = None,
                 threads: int | None = None) -> None:
        self.model_dir = str(Path(model_dir).resolve())
        self.model_id = model_id
        self.batch_size = batch_size
        self.threads = threads or int(os.environ.get(THREADS_ENV) or 1)
        self._workers = workers or int(os.environ.get(WORKERS_ENV) or 0)
        self._started = False

    def __enter__(self) -> RayEngine:
        if not ray.is_initialized():
            ray.init(logging_level=logging.WARNING)
            self._started = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the stage shows one bar over the rows
        context.print_on_execution_start = False
        log.info("Ray cluster: %s; %d workers of %s", ray.get_runtime_context().gcs_address, self.workers,
                 "1 GPU" if self._gpus else f"{self.threads} CPU thread(s)")
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if self._started:
            ray.shutdown()

    @property
    def _gpus(self) -> int:
        return int(ray.cluster_resources().get("GPU", 0))

    @property
    def workers(self) -> int:
        """Actors in the pool: as asked, else one per GPU, else one per `threads` CPUs of the cluster."""
        if self._workers:
            return self._workers
        return self._gpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.threads)

    def _resources(self, threads: int | None = None) -> dict[str, float]:
        return {"num_gpus": 1} if self._gpus else {"num_cpus": threads or self.threads}

    def train_folds(self, train_sets: Sequence[Sequence[Record]], cfg: LoraTrainConfig) -> list[dict[str, bytes]]:
        """One LoRA adapter per training set, each a Ray task (in parallel as the cluster allows); returns their files.

        On CPUs the tasks share the cluster's cores (as many threads each as one node can give), so
        two folds on 8 cores train with 4 threads each rather than 1.
        """
        threads = self.threads
        if not self._gpus:
            per_node = max(int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node["Alive"])
            threads = max(self.threads, min(per_node, int(ray.cluster_resources().get("CPU", 1)) // len(train_sets)))
        train = ray.remote(_train_adapter).options(**self._resources(threads))
        refs = [train.remote(self.model_dir, self.model_id, list(rows), cfg, threads, f"fold {n + 1}") for n, rows in enumerate(train_sets)]
        return ray.get(refs)

    def run(self, tasks: Sequence[Record], cfg: ScoreConfig, adapters: Mapping[str, Path]) -> Iterator[Record]:
        """Stream `tasks` (clearcurate.scoring._on_engine) through the actor pool; yield each result as its block finishes."""
        yield from self._stream(tasks, ScoreWorker, {"adapters": _adapter_files(adapters), "cfg": cfg})

    def map_blocks(self, rows: Sequence[Record], work: Work, adapters: Mapping[str, Path]) -> Iterator[Record]:
        """`work(lm, block)` on blocks of `batch_size` rows, on actors holding the base model and `adapters` (by name,
        loaded with peft as the local engine loads them; the first is active). Yields one entry a row, in the rows'
        order, as soon as its block and all before it are done: `{"result": ...}`, what `work` gave for the row, or
        `{"error": ...}`, why the row failed when computed alone.

        `work` must pickle (a module-level function; its settings bound with functools.partial) and must give a
        row the same result whatever rows share its block, as the local engine runs all rows in one call.
        """
        items = [{"index": i, "row": row} for i, row in enumerate(rows)]
        yield from _in_order(self._stream(items, BlockWorker, {"adapters": _adapter_files(adapters), "work": work}))

    def _stream(self, items: Sequence[Record], worker: type, kwargs: Mapping[str, object]) -> Iterator[Record]:
        """`items` (each with an `index`) through a pool of `worker` actors in blocks; each result as its block finishes."""
        if not items:
            return
        block = self.batch_size  # one batch a call: many blocks keep every worker busy to the end; a kill loses one each
        blocks = math.ceil(len(items) / block)
        data = ray.data.from_items([{"item": json.dumps(t)} for t in items], override_num_blocks=blocks)
        done = data.map_batches(
            worker,
            fn_constructor_kwargs={"model_dir": self.model_dir, "model_id": self.model_id, "batch_size": self.batch_size,
                                   "threads": self.threads, **kwargs},
            batch_size=block,
            compute=ray.data.ActorPoolStrategy(size=min(self.workers, blocks)),
            **self._resources(),
        )
        for batch in done.iter_batches(batch_size=None, batch_format="numpy"):
            for text in batch["result"]:
                yield json.loads(text)


def _in_order(results: Iterable[Record]) -> Iterator[Record]:
    """Results indexed 0, 1, ... in any order, yielded in index order, each as soon as all before it have come."""
    waiting: dict[int, Record] = {}
    following = 0
    for result in results:
        waiting[result["index"]] = result
        while following in waiting:
            yield waiting.pop(following)
            following += 1


def _load(model_dir: str, model_id: str, batch_size: int, threads: int) -> LocalLM:
    """The base model on a worker, after checking it is the driver's (same path on every node, same weights)."""
    torch.set_num_threads(threads)
    if model_fingerprint(model_dir) != model_id:
        raise RuntimeError(f"{model_dir} on node {ray.util.get_node_ip_address()} holds other weights than the driver's: "
                           "every node needs the same prepared model at the same path (a shared filesystem)")
    return LocalLM(*load(model_dir), batch_size=batch_size, show_progress=False)


def _adapter_files(adapters: Mapping[str, Path]) -> dict[str, dict[str, bytes]]:
    """Each adapter's saved files as bytes, to ship to the actors (a killed actor then leaves no files behind)."""
    return {name: _files(Path(path)) for name, path in adapters.items()}


def _files(folder: Path) -> dict[str, bytes]:
    """A saved adapter's files by name."""
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}


@contextmanager
def _written(files: Mapping[str, bytes]) -> Iterator[Path]:
    """An adapter's files in a temporary folder, for as long as peft reads them."""
    with tempfile.TemporaryDirectory(prefix="clearcurate-adapter-") as folder:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data)
        yield Path(folder)


def _train_adapter(model_dir: str, model_id: str, rows: list[Record], cfg: LoraTrainConfig, threads: int, desc: str) -> dict[str, bytes]:
    """Train one fold adapter on a worker; its saved files, for the driver to cache."""
    lm = _load(model_dir, model_id, cfg.batch_size, threads)
    adapted, _ = lm.new_adapter(rows, cfg, desc=desc)
    with tempfile.TemporaryDirectory(prefix="clearcurate-adapter-") as tmp:
        adapted.save_pretrained(tmp)
        return _files(Path(tmp))


class ScoreWorker:
    """A Ray Data actor: the base model (for reflection and the paper recipe's samples) and, for cross-fit,
    a second copy with the current fold's adapter merged in, switched when a block of another fold comes.

    Two copies, because reflection asks the base model and sampling the fold model in every block:
    switching one copy back and forth costs about 0.5 s a block (SmolLM2-135M, CPU), a second copy
    only its memory.
    """

    def __init__(self, model_dir: str, model_id: str, adapters: Mapping[str, Mapping[str, bytes]], cfg: ScoreConfig,
                 batch_size: int, threads: int) -> None:
        self.cfg = cfg
        self.base = _load(model_dir, model_id, batch_size, threads)
        self.adapters = adapters  # kept as bytes: a killed actor leaves no files behind
        self.tuned = LocalLM(copy.deepcopy(self.base.model), self.base.tokenizer, batch_size, False) if adapters else None
        self._current: str | None = None
        self._merged = ExitStack()

    def _fold_model(self, adapter: str) -> LocalLM:
        """The copy with `adapter` merged in (the previous one is dropped, restoring the base weights bit for bit)."""
        assert self.tuned is not None
        if adapter != self._current:
            self._merged.close()
            self._current = None
            with _written(self.adapters[adapter]) as folder:
                adapted = self.tuned.open_adapter(folder)
            self._merged.enter_context(self.tuned.using(adapted))
            self._current = adapter
        return self.tuned

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tasks = [json.loads(t) for t in batch["item"]]
        results: dict[int, Record] = {t["index"]: {"index": t["index"]} for t in tasks}
        sampling = [t for t in tasks if t["sample"]]
        for adapter, group in itertools.groupby(sampling, key=lambda t: t["adapter"]):
            group = list(group)

            def sample(part: list[Record], adapter: str | None = adapter) -> list[Record]:
                lm = self.base if adapter is None else self._fold_model(adapter)
                return sample_records(lm, [t["gen_prompt"] for t in part], [t["response"] for t in part],
                                      [t["budget"] for t in part], self.cfg, part[0]["with_likelihood"])

            _collect(results, "samples", group, sample)
        parts = base_parts(presets.component_weights(self.cfg))
        _collect(results, "reflection", [t for t in tasks if t["reflect"]], lambda part: reflection_records(self.base, part, parts))
        return {"result": np.array([json.dumps(r) for r in results.values()], dtype=object)}


class BlockWorker:
    """A Ray Data actor for `RayEngine.map_blocks`: the base model with the stage's adapters loaded (unmerged,
    switched with `use_adapter`, as the local engine runs them), and the work function it runs on each block."""

    def __init__(self, model_dir: str, model_id: str, adapters: Mapping[str, Mapping[str, bytes]], work: Work,
                 batch_size: int, threads: int) -> None:
        self.lm = _load(model_dir, model_id, batch_size, threads)
        with ExitStack() as stack:
            self.lm.load_adapters({name: stack.enter_context(_written(files)) for name, files in adapters.items()})
        self.work = work

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [json.loads(t) for t in batch["item"]]
        results: dict[int, Record] = {item["index"]: {"index": item["index"]} for item in items}
        name = getattr(self.work, "func", self.work).__name__  # a partial's function: what failed, in a row's reason
        _collect(results, "result", items, lambda part: self.work(self.lm, [item["row"] for item in part]), name)
        return {"result": np.array([json.dumps(r) for r in results.values()], dtype=object)}


def _collect(results: dict[int, Record], kind: str, tasks: list[Record], compute: Callable[[list[Record]], list[Record]],
             what: str | None = None) -> None:
    """`compute` these tasks together, into `kind` of each result; when that fails, each alone, so only the rows that
    fail by themselves fail, with the error (named by `what`, else `kind`) as their reason."""
    if not tasks:
        return
    what = what or kind
    try:
        for task, value in zip(tasks, compute(tasks), strict=True):
            results[task["index"]][kind] = value
    except Exception as err:  # a row's failure is recorded with its reason, never fatal
        if len(tasks) == 1:
            entry = results[tasks[0]["index"]]
            entry["error"] = "; ".join(filter(None, [entry.get("error"), f"{what}: {type(err).__name__}: {err}"]))
            return
        log.warning("%s of %d rows failed together (%s): trying each alone", what, len(tasks), err)
        for task in tasks:
            _collect(results, kind, [task], compute, what)

