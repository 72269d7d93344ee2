"""The split executor: scenes built by CPU worker processes, rendered by one process per GPU.

Building a scene (opening the source, depth completion, segmentation, layers) is CPU work
with one thread's worth of parallelism; rendering it is GPU work that wants one CUDA context
and the whole device. :class:`SplitExecutor` gives each its processes:

- ``builders`` build processes (a spawn process pool; every native thread pool capped to one
  thread, :mod:`p4dsim.augment.threadcaps`) each run :func:`build_to_shm`: the shard's
  scenes (:func:`p4dsim.augment.shard.build_shard`) written into one shared memory block
  (:mod:`p4dsim.augment.shm`; the arrays are copied once, never pickled);
- ``renderers`` rendering processes (:func:`render_main`), each started with
  ``CUDA_VISIBLE_DEVICES`` naming one GPU (or none: the CPU renderer), load the renderer
  before the first scene arrives, then take block after block: attach, remove its name,
  replay every run of the shard (:func:`p4dsim.augment.shard.render_built`, the same rows and
  files as the all-in-one workers), unmap, report a
  :class:`~p4dsim.augment.shard.ShardResult`.

The driver (:meth:`SplitExecutor.run`) hands built scenes to the renderers, at most
``concurrent + queue_depth`` per renderer at a time (``concurrent`` rendering in threads,
the rest waiting), and starts a build only while fewer than ``builders`` scenes are being
built or waiting for a renderer, so at most ``builders + renderers × (concurrent +
queue_depth)`` scenes exist at once. It names every
block itself, so that on any exit (an interruption included) it removes the blocks that are
left, after stopping the processes that could still create one.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from p4dsim.augment.shard import (
    ShardResult,
    build_shard,
    failed_result,
    render_built,
    worker_id,
)
from p4dsim.augment.shm import Segment, put_object, segment_name, take_object, unlink
from p4dsim.augment.tasks import ShardSpec
from p4dsim.augment.threadcaps import (
    cap_loaded_pools,
    capped_env,
    child_signals,
    die_with_parent,
    init_build_worker,
    kill_processes,
    patched_env,
    signals_deferred,
)

OnResult = Callable[[ShardResult], None]

#: seconds between checks of the processes while nothing arrives
_POLL_S = 0.05


# -- build processes -----------------------------------------------------------------------


def warm_builder() -> int:
    """Import what building needs (a pool's first task, so the first build does not pay it)."""
    import p4dsim.opening  # noqa: F401
    import p4dsim.resample  # noqa: F401

    return os.getpid()


def build_to_shm(spec: ShardSpec, name: str) -> Segment | ShardResult:
    """Build the scenes of ``spec`` into shared memory block ``name``; the failed result if
    building failed. Runs in a build process."""
    built = build_shard(spec)
    cap_loaded_pools(1)  # a library first imported by the build (torch) starts capped next time
    if isinstance(built, ShardResult):
        return built
    try:
        return put_object(built, name)
    except Exception as exc:  # e.g. /dev/shm full
        return failed_result(
            spec,
            f"could not hand the built scene to the renderer: {type(exc).__name__}: {exc}",
            worker=worker_id(),
            build_s=built.build_s,
            build_cpu_s=built.build_cpu_s,
        )


def new_build_pool(workers: int) -> ProcessPoolExecutor:
    """A spawn pool of ``workers`` build processes whose native thread pools are capped to
    one thread (see :mod:`p4dsim.augment.threadcaps`); none started yet."""
    import multiprocessing as mp

    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=init_build_worker,
        initargs=(os.getpid(), 1),
    )


def start_build_processes(pool: ProcessPoolExecutor, workers: int) -> None:
    """Start the ``workers`` processes of ``pool`` now, each importing what building needs.
    (Processes start inside submit, one per submit while none is idle.)"""
    for _ in range(workers):
        submit_capped(pool, warm_builder)


def start_build_pool(workers: int) -> ProcessPoolExecutor:
    """:func:`new_build_pool` with its processes started."""
    pool = new_build_pool(workers)
    start_build_processes(pool, workers)
    return pool


def submit_capped(pool: ProcessPoolExecutor, fn: Callable[..., Any], *args: Any) -> Future:
    """``pool.submit`` with the caps in the environment and signals held, in case the pool
    starts a process for it."""
    with capped_env(1), signals_deferred():
        return pool.submit(fn, *args)


# -- rendering processes -------------------------------------------------------------------


def warm_renderer(devices: list[str]) -> None:
    """Load the renderer of every device name in ``devices`` and render a few Gaussians with
    it (compiles its kernels), and import the replay pipeline."""
    import numpy as np

    import p4dsim.replay  # noqa: F401
    from p4dsim.augment.shard import _renderer
    from p4dsim.scene.gaussians import GaussianSet

    n = 4
    gs = GaussianSet(
        means=np.array([[0.0, 0.0, 4.0], [0.5, 0.0, 5.0], [0.0, 0.5, 6.0], [-0.5, 0, 7]]),
        quats=np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)),
        scales=np.full((n, 3), 0.3),
        opacities=np.full(n, 0.8),
        colors=np.full((n, 3), 0.5),
        confidence=np.ones(n),
    )
    K = np.array([[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]])
    for device in devices:
        _renderer(device).render(gs, np.eye(4), K, 16, 16, extra=np.ones((n, 3)))


def _reader(conn: Connection, inbox: queue.Queue) -> None:
    """Move the driver's messages into ``inbox`` as they come, so its sends never block."""
    try:
        while True:
            inbox.put(conn.recv())
    except (EOFError, OSError):
        inbox.put(None)


def render_main(
    conn: Connection, parent_pid: int, devices: list[str], out_dir: str, concurrent: int = 1
) -> None:
    """A rendering process: warm up, then render every (spec, segment) the driver sends
    until it sends None (or goes away), ``concurrent`` shards at a time in threads (their
    set-up, uploads, encoding and writing overlap each other's GPU work; each shard's files
    are its own, so they are the same bytes at any concurrency). Messages back:
    ("ready", seconds), ("result", ShardResult) in completion order, ("fatal", text) when
    the renderer cannot be loaded."""
    child_signals()
    die_with_parent(parent_pid)
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(conn, inbox), daemon=True).start()
    t0 = time.perf_counter()
    try:
        warm_renderer(devices)
    except Exception as exc:
        conn.send(("fatal", f"the renderer could not be loaded: {type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", time.perf_counter() - t0))
    send_lock = threading.Lock()

    def send(msg: Any) -> None:
        with send_lock:
            conn.send(msg)

    def one(spec: ShardSpec, seg: Segment) -> None:
        try:
            taken = take_object(seg)
        except Exception as exc:
            unlink(seg.name)
            send(("result", failed_result(spec, f"built scene lost: {type(exc).__name__}: {exc}")))
            return
        try:
            res = render_built(spec, taken.value, out_dir)
        finally:
            taken.close()
        send(("result", res))

    with ThreadPoolExecutor(max(1, concurrent), thread_name_prefix="p4d-shard") as pool:
        while True:
            msg = inbox.get()
            if msg is None:
                return
            pool.submit(one, *msg)


@dataclass
class _Renderer:
    """The driver's view of one rendering process."""

    index: int
    proc: Any
    conn: Connection
    #: (spec, block name) sent and not yet answered, in order
    assigned: deque = field(default_factory=deque)
    #: seconds it took to load its renderer, once it said
    ready_s: float | None = None
    alive: bool = True


# -- the driver ----------------------------------------------------------------------------


@dataclass
class SplitExecutor:
    """Build processes and rendering processes on this machine (see the module docstring).

    builders: build processes; renderers: rendering processes; gpus: device ids, renderer i
    gets ``gpus[i % len(gpus)]`` as its only visible device (empty: the environment's, e.g.
    for the CPU renderer); warm: device names the renderers load before the first scene
    (those the shards' runs will ask for); concurrent: shards a renderer works on at once;
    queue_depth: built scenes waiting per renderer besides those it works on.
    """

    builders: int
    renderers: int = 1
    gpus: list[str] = field(default_factory=list)
    warm: list[str] = field(default_factory=lambda: ["cpu"])
    queue_depth: int = 2
    #: shards a rendering process works on at once (threads)
    concurrent: int = 3
    name: str = "local-split"
    #: rendering process restarts allowed after one dies unexpectedly
    max_restarts: int = 2

    def run(self, shards: list[ShardSpec], out_dir: Path, on_result: OnResult) -> None:
        if not shards:
            return
        run = _SplitRun(self, shards, str(Path(out_dir).resolve()), on_result)
        try:
            run.start()
            run.loop()
        except BaseException:  # interrupted: stop every process before the driver cleans up
            run.stop(kill=True)
            raise
        finally:
            run.stop(kill=False)


class _SplitRun:
    """One :meth:`SplitExecutor.run`: the state of its builds, blocks and renderers."""

    def __init__(self, ex: SplitExecutor, shards: list[ShardSpec], out: str, on_result: OnResult):
        self.ex = ex
        self.out = out
        self.on_result = on_result
        self.todo: deque[ShardSpec] = deque(shards)
        self.building: dict[Future, tuple[ShardSpec, str]] = {}
        self.ready: deque[tuple[ShardSpec, Segment]] = deque()
        self.done_q: queue.Queue[Future] = queue.Queue()
        self.names: set[str] = set()  # blocks that may exist
        self.rends: list[_Renderer] = []
        self.pool: ProcessPoolExecutor | None = None
        self.seq = 0
        self.restarts = 0
        self.fatal: str | None = None
        self.stopped = False

    # -- processes ---------------------------------------------------------------------------

    def _spawn_renderer(self, index: int) -> _Renderer:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        ours, theirs = ctx.Pipe(duplex=True)
        env = {}
        if self.ex.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.ex.gpus[index % len(self.ex.gpus)]
        proc = ctx.Process(
            target=render_main,
            args=(theirs, os.getpid(), list(self.ex.warm), self.out, self.ex.concurrent),
            name=f"p4d-render-{index}",
            daemon=True,
        )
        with patched_env(env), signals_deferred():
            proc.start()
        theirs.close()
        return _Renderer(index, proc, ours)

    def start(self) -> None:
        for i in range(max(1, self.ex.renderers)):
            self.rends.append(self._spawn_renderer(i))
        # the pool is known before its processes start, so an interruption stops them all
        self.pool = new_build_pool(max(1, self.ex.builders))
        start_build_processes(self.pool, max(1, self.ex.builders))

    def stop(self, kill: bool) -> None:
        """End every process (``kill``: at once; else renderers finish their queue, which is
        empty after a normal run) and remove the blocks that are left."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.pool is not None:
                procs = list((getattr(self.pool, "_processes", None) or {}).values())
                self.pool.shutdown(wait=not kill, cancel_futures=True)
                if kill:
                    kill_processes(procs)
            for r in self.rends:
                if not kill:
                    try:
                        r.conn.send(None)
                    except OSError:
                        pass
                    r.proc.join(timeout=30)
            kill_processes([r.proc for r in self.rends])
            for r in self.rends:
                r.conn.close()
        finally:
            for name in self.names:
                unlink(name)
            self.names.clear()

    # -- the loop ----------------------------------------------------------------------------

    def _fail(self, spec: ShardSpec, why: str, name: str | None = None) -> None:
        if name is not None:
            unlink(name)
            self.names.discard(name)
        self.on_result(failed_result(spec, why))

    def _submit_builds(self) -> None:
        assert self.pool is not None
        while self.todo and len(self.building) + len(self.ready) < self.ex.builders:
            spec = self.todo.popleft()
            if self.fatal:
                self._fail(spec, self.fatal)
                continue
            name = segment_name("scene", self.seq)
            self.seq += 1
            self.names.add(name)
            try:
                fut = submit_capped(self.pool, build_to_shm, spec, name)
            except BrokenProcessPool as exc:
                self._fail(spec, f"build process failed: {exc}", name)
                continue
            self.building[fut] = (spec, name)
            fut.add_done_callback(self.done_q.put)

    def _dispatch(self) -> None:
        while self.ready:
            spec, seg = self.ready[0]
            if self.fatal:
                self.ready.popleft()
                self._fail(spec, self.fatal, seg.name)
                continue
            live = [r for r in self.rends if r.alive]
            cap = max(1, self.ex.concurrent) + self.ex.queue_depth
            room = [r for r in live if len(r.assigned) < cap]
            if not room:
                return
            r = min(room, key=lambda r: len(r.assigned))
            self.ready.popleft()
            r.assigned.append((spec, seg.name))
            try:
                r.conn.send((spec, seg))
            except OSError:
                pass  # it died: found by _check_renderers, which fails what it was given

    def _on_built(self, fut: Future) -> None:
        spec, name = self.building.pop(fut)
        try:
            out = fut.result()
        except Exception as exc:  # the build process died (killed, out of memory)
            self._fail(spec, f"build process failed: {type(exc).__name__}: {exc}", name)
            return
        if isinstance(out, ShardResult):
            unlink(name)  # normally never created
            self.names.discard(name)
            self.on_result(out)
        else:
            self.ready.append((spec, out))

    def _on_message(self, r: _Renderer, msg: Any) -> None:
        kind, payload = msg
        if kind == "ready":
            r.ready_s = float(payload)
        elif kind == "result":
            # results come in completion order: match by shard
            at = next(i for i, (sp, _) in enumerate(r.assigned) if sp.shard_id == payload.shard_id)
            spec, name = r.assigned[at]
            del r.assigned[at]
            self.names.discard(name)  # the renderer removed its name on attaching
            self.on_result(payload)
        elif kind == "fatal":
            self.fatal = str(payload)
            r.alive = False

    def _drain(self, r: _Renderer) -> None:
        """Handle every message renderer ``r`` has sent."""
        try:
            while r.conn.poll():
                self._on_message(r, r.conn.recv())
        except (EOFError, OSError):
            pass  # it exited: _check_renderers

    def _check_renderers(self) -> None:
        for i, r in enumerate(self.rends):
            if r.alive and not r.proc.is_alive():
                self._drain(r)  # what it sent before it went
            if not r.alive or r.proc.is_alive():
                if not r.alive and r.assigned:
                    while r.assigned:
                        spec, name = r.assigned.popleft()
                        self._fail(spec, self.fatal or "render process failed", name)
                continue
            r.alive = False
            code = r.proc.exitcode
            for k in range(len(r.assigned)):
                spec, name = r.assigned.popleft()
                when = "while rendering" if k < max(1, self.ex.concurrent) else "before rendering"
                self._fail(
                    spec, f"render process {r.proc.pid} died (exit code {code}) {when}", name
                )
            r.proc.join(timeout=1)  # reap it
            if self.restarts < self.ex.max_restarts and not self.fatal:
                self.restarts += 1
                r.conn.close()
                self.rends[i] = self._spawn_renderer(r.index)
        if not any(r.alive for r in self.rends) and not self.fatal:
            self.fatal = "every render process died; see the errors of the shards above"

    def _pending(self) -> bool:
        return bool(self.todo or self.building or self.ready or any(r.assigned for r in self.rends))

    def loop(self) -> None:
        while self._pending():
            self._submit_builds()
            self._dispatch()
            conns = {r.conn: r for r in self.rends if r.alive}
            sentinels = [r.proc.sentinel for r in self.rends if r.alive]
            wait(list(conns) + sentinels, timeout=_POLL_S)
            for r in conns.values():
                self._drain(r)
            while True:
                try:
                    fut = self.done_q.get_nowait()
                except queue.Empty:
                    break
                self._on_built(fut)
            self._check_renderers()
