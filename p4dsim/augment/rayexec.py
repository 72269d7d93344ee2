"""Shards on a Ray cluster (a local Ray instance started for the job, or a running cluster);
the output folder must be reachable from every node (shared filesystem).

Two ways, as on one machine (:mod:`p4dsim.augment.executors`):

- all-in-one: one task per shard (``num_gpus=gpus_per_worker``, one CPU), building and
  rendering in the same worker; what CPU rendering uses;
- split (GPUs, or ``split=True``): scene-building tasks (one CPU each, native thread pools
  capped to one thread) return the built scenes into Ray's object store (shared memory on
  each node; numpy arrays travel without pickling), and one rendering actor per GPU
  (``num_gpus=1``; without GPUs, one CPU) loads its renderer when created, replays every run
  of the shards it is given and writes their files straight into the output folder. The
  driver feeds built scenes to the actors with the fewest pending, at most
  ``1 + queue_depth`` each, and keeps at most as many scenes being built or waiting as
  there are build CPUs.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p4dsim.augment.devices import shard_devices
from p4dsim.augment.shard import (
    BuiltShard,
    ShardResult,
    build_shard,
    failed_result,
    render_built,
    run_shard,
)
from p4dsim.augment.tasks import ShardSpec
from p4dsim.augment.threadcaps import THREAD_ENV, cap_this_process
from p4dsim.errors import ConfigError

OnResult = Callable[[ShardResult], None]


def _ray_shard(spec: ShardSpec, out_dir: str) -> ShardResult:
    """The all-in-one task: render with as many CPU threads as Ray assigned to the task."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        threads = max(1, int(cpus))
        if "numba" not in sys.modules:
            os.environ["NUMBA_NUM_THREADS"] = str(threads)
    except Exception:
        pass
    return run_shard(spec, out_dir)


def _ray_build(spec: ShardSpec) -> tuple[ShardResult | None, BuiltShard | None]:
    """The build task: (None, the built scenes), or (the failed result, None). Its worker
    was started with the thread caps in its environment; OpenCV's and torch's pools are
    capped here."""
    cap_this_process(1)
    built = build_shard(spec)
    if isinstance(built, ShardResult):
        return built, None
    return None, built


def build_runtime_env(ray: Any) -> dict[str, Any]:
    """The runtime environment of the build tasks: the job's environment variables with every
    native thread pool capped to one thread (Ray starts their workers with it)."""
    env = dict((ray.get_runtime_context().runtime_env or {}).get("env_vars") or {})
    env.update({k: "1" for k in THREAD_ENV})
    return {"env_vars": env}


def build_task_caps() -> dict[str, Any]:
    """What a build task's thread pools are (:func:`~p4dsim.augment.threadcaps.thread_caps_report`
    after the set-up :func:`_ray_build` does)."""
    from p4dsim.augment.threadcaps import thread_caps_report

    cap_this_process(1)
    return thread_caps_report()


class RenderActor:
    """A rendering actor: loads the renderers of ``devices`` when created (before the first
    scene), then renders shard after shard into ``out_dir``."""

    def __init__(self, devices: list[str], out_dir: str):
        from p4dsim.augment.split import warm_renderer

        self.out_dir = out_dir
        warm_renderer(devices)

    def render(self, spec: ShardSpec, built: BuiltShard) -> ShardResult:
        return render_built(spec, built, self.out_dir)


@dataclass
class RayExecutor:
    """Shards as Ray tasks, all-in-one or split (see the module docstring).

    address: a running cluster (``ray://...`` or ``HOST:PORT``; ``auto`` = the local running
    cluster); None starts a local Ray instance for the job with ``workers`` CPUs (all of this
    machine's when None). When Ray is already initialised in this process, it is used as is.
    split: None = split when ``gpus_per_worker`` > 0; render_procs: rendering actors of a
    split job (default: one per GPU of the cluster, one without GPUs).
    """

    address: str | None = None
    gpus_per_worker: float = 0.0
    workers: int | None = None
    max_retries: int = 2
    split: bool | None = None
    render_procs: int | None = None
    queue_depth: int = 2
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
        out = str(Path(out_dir).resolve())
        try:
            split = self.split if self.split is not None else self.gpus_per_worker > 0
            if split:
                self._run_split(ray, shards, out, on_result)
            else:
                self.name = "ray"
                self._run_tasks(ray, shards, out, on_result)
        finally:
            if started:
                ray.shutdown()

    def _run_tasks(self, ray: Any, shards: list[ShardSpec], out: str, on_result: OnResult) -> None:
        pending: dict = {}
        try:
            task = ray.remote(
                num_cpus=1, num_gpus=self.gpus_per_worker, max_retries=self.max_retries
            )(_ray_shard)
            pending = {task.remote(s, out): s for s in shards}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    spec = pending.pop(ref)
                    try:
                        res = ray.get(ref)
                    except Exception as exc:  # task or worker failure after retries
                        res = failed_result(spec, f"ray task failed: {type(exc).__name__}: {exc}")
                    on_result(res)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def _run_split(self, ray: Any, shards: list[ShardSpec], out: str, on_result: OnResult) -> None:
        resources = ray.cluster_resources()
        devices = shard_devices(shards)
        # no GPU for actors whose every run renders on the CPU
        gpus = float(resources.get("GPU", 0.0)) if set(devices) != {"cpu"} else 0.0
        per_actor = 1.0 if self.gpus_per_worker <= 0 else float(self.gpus_per_worker)
        if gpus > 0:
            n_actors = self.render_procs or max(1, int(gpus // per_actor))
            opts: dict[str, Any] = {"num_gpus": per_actor, "num_cpus": 1}
        else:
            n_actors = self.render_procs or 1
            opts = {"num_gpus": 0, "num_cpus": 1}
        cpus = int(resources.get("CPU", 1))
        build_slots = max(1, cpus - n_actors)
        self.name = f"ray-split ({n_actors} render actors, {build_slots} build CPUs)"
        build = ray.remote(
            num_cpus=1,
            num_returns=2,
            max_retries=self.max_retries,
            runtime_env=build_runtime_env(ray),
        )(_ray_build)
        # an actor that dies (e.g. the GPU ran out of memory) comes back, warmed up again;
        # the shards it held are reported failed and retried by the next run of the job
        actor_cls = ray.remote(max_restarts=self.max_retries, **opts)(RenderActor)
        actors = [actor_cls.remote(devices, out) for _ in range(n_actors)]
        todo = deque(shards)
        building: dict[Any, tuple[ShardSpec, Any]] = {}  # status ref -> (spec, built ref)
        ready: deque[tuple[ShardSpec, Any]] = deque()
        rendering: dict[Any, tuple[ShardSpec, int]] = {}  # result ref -> (spec, actor)
        load = [0] * n_actors
        try:
            while todo or building or ready or rendering:
                while todo and len(building) + len(ready) < build_slots:
                    spec = todo.popleft()
                    status, built = build.remote(spec)
                    building[status] = (spec, built)
                while ready and min(load) < 1 + self.queue_depth:
                    i = load.index(min(load))
                    spec, built = ready.popleft()
                    rendering[actors[i].render.remote(spec, built)] = (spec, i)
                    load[i] += 1
                done, _ = ray.wait(list(building) + list(rendering), num_returns=1)
                for ref in done:
                    if ref in building:
                        spec, built = building.pop(ref)
                        try:
                            failed = ray.get(ref)
                        except Exception as exc:
                            failed = failed_result(
                                spec, f"ray build task failed: {type(exc).__name__}: {exc}"
                            )
                        if failed is None:
                            ready.append((spec, built))
                        else:
                            on_result(failed)
                        continue
                    spec, i = rendering.pop(ref)
                    load[i] -= 1
                    try:
                        res = ray.get(ref)
                    except Exception as exc:  # the actor died while holding it
                        res = failed_result(spec, f"ray render actor failed: {exc}")
                    on_result(res)
        except BaseException:
            for ref in list(building) + list(rendering):
                ray.cancel(ref, force=False)
            raise
        finally:
            for a in actors:
                ray.kill(a)
