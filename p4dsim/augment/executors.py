"""Executors: where shards run. Both call :func:`p4dsim.augment.shard.run_shard`, which writes
the shard's files itself; only a small :class:`~p4dsim.augment.shard.ShardResult` comes back
to the driver.

- :class:`LocalExecutor`: a process pool (spawn) on this machine, one scene in memory per
  worker process.
- :class:`RayExecutor`: Ray tasks with ``num_gpus`` each, on a local Ray instance started for
  the job or on a running cluster (``address``); the output folder must be reachable from
  every node (shared filesystem).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from p4dsim.augment.shard import ShardResult, run_shard
from p4dsim.augment.tasks import ShardSpec
from p4dsim.errors import ConfigError

OnResult = Callable[[ShardResult], None]


class Executor(Protocol):
    """Runs shards and reports each result (in any order) through ``on_result``."""

    name: str

    def run(self, shards: list[ShardSpec], out_dir: Path, on_result: OnResult) -> None: ...


def _die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel kill this process when the driver dies (even by SIGKILL), so no
    orphaned worker keeps writing into the output folder."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


@contextlib.contextmanager
def _signals_deferred():
    """Block SIGINT and SIGTERM in this thread for the block; they are handled at its end."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _init_local_worker(parent_pid: int, threads: int) -> None:
    # a worker inherits the driver's signal mask from its start (see _signals_deferred)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _die_with_parent(parent_pid)
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def _failed(spec: ShardSpec, why: str) -> ShardResult:
    return ShardResult(shard_id=spec.shard_id, frame=spec.frame, ok=False, error=why)


@dataclass
class LocalExecutor:
    """A pool of ``workers`` processes; each renders with ``cpu_count // workers`` threads."""

    workers: int = 1
    name: str = "local"

    def run(self, shards: list[ShardSpec], out_dir: Path, on_result: OnResult) -> None:
        import multiprocessing as mp

        if not shards:
            return
        workers = max(1, min(int(self.workers), len(shards)))
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
            with _signals_deferred():
                futures = {pool.submit(run_shard, s, str(out_dir)): s for s in shards}
            for fut in as_completed(futures):
                spec = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # the worker process died (killed, out of memory)
                    res = _failed(spec, f"worker process failed: {type(exc).__name__}: {exc}")
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
    for p in procs:
        try:
            p.kill()
        except Exception:
            pass
    for p in procs:
        try:
            p.join(timeout=10)
        except Exception:
            pass


def _ray_shard(spec: ShardSpec, out_dir: str) -> ShardResult:
    """The Ray task: render with as many CPU threads as Ray assigned to the task."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        threads = max(1, int(cpus))
        if "numba" not in sys.modules:
            os.environ["NUMBA_NUM_THREADS"] = str(threads)
    except Exception:
        pass
    return run_shard(spec, out_dir)


@dataclass
class RayExecutor:
    """Shards as Ray tasks (``num_gpus=gpus_per_worker``, one CPU each).

    address: a running cluster (``ray://...`` or ``HOST:PORT``; ``auto`` = the local running
    cluster); None starts a local Ray instance for the job with ``workers`` CPUs (all of this
    machine's when None). When Ray is already initialised in this process, it is used as is.
    """

    address: str | None = None
    gpus_per_worker: float = 0.0
    workers: int | None = None
    max_retries: int = 2
    name: str = "ray"

    def run(self, shards: list[ShardSpec], out_dir: Path, on_result: OnResult) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--executor ray needs Ray: install the extra with pip install 'p4dsim[ray]'"
            ) from None
        if not shards:
            return
        started = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
            started = True
        pending: dict = {}
        try:
            task = ray.remote(
                num_cpus=1, num_gpus=self.gpus_per_worker, max_retries=self.max_retries
            )(_ray_shard)
            out = str(Path(out_dir).resolve())
            pending = {task.remote(s, out): s for s in shards}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    spec = pending.pop(ref)
                    try:
                        res = ray.get(ref)
                    except Exception as exc:  # task or worker failure after retries
                        res = _failed(spec, f"ray task failed: {type(exc).__name__}: {exc}")
                    on_result(res)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()


def make_executor(
    kind: str,
    workers: int | None = None,
    address: str | None = None,
    gpus_per_worker: float = 0.0,
) -> LocalExecutor | RayExecutor:
    """The executor named ``kind`` (local or ray)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if gpus_per_worker < 0:
        raise ConfigError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
    if kind == "local":
        if address:
            raise ConfigError("--address is for --executor ray; remove it or use the ray executor")
        return LocalExecutor(workers or (os.cpu_count() or 1))
    if kind == "ray":
        return RayExecutor(address=address, gpus_per_worker=gpus_per_worker, workers=workers)
    raise ConfigError(f"--executor must be local or ray, got '{kind}'")
