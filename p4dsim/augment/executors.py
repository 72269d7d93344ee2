"""Executors: where shards run. Each writes a shard's files in a worker (never the driver);
only a small :class:`~p4dsim.augment.shard.ShardResult` comes back to the driver.

- :class:`LocalExecutor`: this machine. For the CPU renderer, a process pool (spawn) of
  all-in-one workers, each building a shard's scene and rendering it
  (:func:`p4dsim.augment.shard.run_shard`): rendering on the CPU is the slow part and must
  stay parallel. For the GPU renderer (or with ``split=True``), the split executor
  (:class:`~p4dsim.augment.split.SplitExecutor`): CPU build processes and one rendering
  process per GPU, scenes passed through shared memory.
- :class:`~p4dsim.augment.rayexec.RayExecutor`: the same two ways on a Ray cluster.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from p4dsim.augment.devices import split_plan
from p4dsim.augment.shard import ShardResult, failed_result, run_shard
from p4dsim.augment.tasks import ShardSpec
from p4dsim.augment.threadcaps import die_with_parent, kill_processes, signals_deferred
from p4dsim.errors import ConfigError

if TYPE_CHECKING:
    from p4dsim.augment.rayexec import RayExecutor

OnResult = Callable[[ShardResult], None]


class Executor(Protocol):
    """Runs shards and reports each result (in any order) through ``on_result``."""

    name: str

    def run(self, shards: list[ShardSpec], out_dir: Path, on_result: OnResult) -> None: ...


def _init_local_worker(parent_pid: int, threads: int) -> None:
    # a worker inherits the driver's signal mask from its start (see signals_deferred)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    die_with_parent(parent_pid)
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


@dataclass
class LocalExecutor:
    """This machine. All-in-one: a pool of ``workers`` processes (default: one per core),
    each rendering with ``cpu_count // workers`` threads. Split (GPU rendering, or ``split``
    True): ``workers`` build processes (default: one per core minus one per renderer) and
    ``render_procs`` rendering processes (default: one per GPU, else one)."""

    workers: int | None = None
    split: bool | None = None
    render_procs: int | None = None
    name: str = "local"

    def run(self, shards: list[ShardSpec], out_dir: Path, on_result: OnResult) -> None:
        if not shards:
            return
        plan = split_plan(shards, self.split, self.render_procs)
        if plan is None:
            self.name = "local"
            return self._run_pool(shards, out_dir, on_result)
        from p4dsim.augment.split import SplitExecutor

        cores = os.cpu_count() or 1
        builders = self.workers or max(1, cores - plan.renderers)
        builders = max(1, min(builders, len(shards)))
        self.name = f"local-split ({builders} build, {plan.renderers} render processes)"
        # several shards at once per rendering process on a GPU (their CPU stages overlap
        # the GPU's work); one on the CPU renderer, whose parallel kernels are not reentrant
        concurrent = 1 if all(d == "cpu" for d in plan.warm) else 3
        SplitExecutor(builders, plan.renderers, plan.gpus, plan.warm, concurrent=concurrent).run(
            shards, out_dir, on_result
        )

    def _run_pool(self, shards: list[ShardSpec], out_dir: Path, on_result: OnResult) -> None:
        import multiprocessing as mp

        workers = max(1, min(int(self.workers or os.cpu_count() or 1), len(shards)))
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_local_worker,
            initargs=(os.getpid(), threads),
        )
        try:
            # Workers start inside submit; an interruption while one is being handed its start
            # data would leave it to die with a traceback, so signals wait until all started.
            with signals_deferred():
                futures = {pool.submit(run_shard, s, str(out_dir)): s for s in shards}
            for fut in as_completed(futures):
                spec = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # the worker process died (killed, out of memory)
                    res = failed_result(spec, f"worker process failed: {type(exc).__name__}: {exc}")
                on_result(res)
        except BaseException:  # interrupted: stop the workers before the driver cleans up
            _terminate(pool)
            raise
        pool.shutdown(wait=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Cancel pending shards and end the running workers now (not after their shard), so
    none writes into the output folder after the driver removed its staging."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    kill_processes(procs)


def make_executor(
    kind: str,
    workers: int | None = None,
    address: str | None = None,
    gpus_per_worker: float = 0.0,
    split: bool | None = None,
    render_procs: int | None = None,
) -> LocalExecutor | RayExecutor:
    """The executor named ``kind`` (local or ray)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if gpus_per_worker < 0:
        raise ConfigError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
    if render_procs is not None and render_procs < 1:
        raise ConfigError(f"--render-procs must be at least 1, got {render_procs}")
    if render_procs is not None and split is False:
        raise ConfigError("--render-procs is for split jobs; remove it or drop --no-split")
    if kind == "local":
        if address:
            raise ConfigError("--address is for --executor ray; remove it or use the ray executor")
        if gpus_per_worker:
            raise ConfigError(
                "--gpus-per-worker is for --executor ray; locally each GPU gets one rendering "
                "process (--render-procs)"
            )
        return LocalExecutor(workers, split, render_procs)
    if kind == "ray":
        from p4dsim.augment.rayexec import RayExecutor

        return RayExecutor(
            address=address,
            gpus_per_worker=gpus_per_worker,
            workers=workers,
            split=split,
            render_procs=render_procs,
        )
    raise ConfigError(f"--executor must be local or ray, got '{kind}'")
