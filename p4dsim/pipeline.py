"""The replay pipeline: render ahead in batches, encode in a thread pool, write in the background.

Three stages connected by bounded queues, so memory stays flat however long the run is:

1. :func:`render_batches` — a thread renders time steps in batches (the renderer's
   ``batch_size``: 32 on the GPU, 1 on the CPU) and hands frames on, at most ``prefetch``
   batches ahead of the consumer;
2. :func:`ordered_map` — builds each frame's rows (PNG/JPEG and depth encoding, labels) in a
   thread pool, at most ``window`` frames in flight, yielding results in input order;
3. :class:`BackgroundWriter` — a thread feeds rows to the Parquet
   :class:`~p4dsim.io.dataset.DatasetWriter`, at most ``max_pending`` frames queued.

OpenCV, numpy and pyarrow's compression release the GIL, so the stages overlap.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from p4dsim.io.dataset import DatasetWriter
    from p4dsim.render.base import Renderer
    from p4dsim.replay import RenderedFrame, Timeline
    from p4dsim.scenario.model import OutputModel
    from p4dsim.scene.scene4d import Scene4D

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def default_workers() -> int:
    """Encoding threads: ``$P4DSIM_ENCODE_WORKERS`` if set, else the machine's cores, at most 4
    (JPEG encoding releases the interpreter lock, so four keep up with an H200; more threads
    mostly contend for the lock with the rendering threads: measured 8 slower than 4)."""
    env = os.environ.get("P4DSIM_ENCODE_WORKERS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


#: interpreter switch interval (s) while a batched (GPU) pipeline runs: the rendering threads
#: wait on the device and need the lock back promptly when the encoders hold it
SWITCH_INTERVAL_S = 0.0005


@contextmanager
def switch_interval(seconds: float) -> Iterator[None]:
    """Set :func:`sys.setswitchinterval` for the duration of the block (restored after)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(min(old, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _produce(items: Iterable[Any], q: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        q.put(_DONE)
    except BaseException as exc:  # handed to the consumer
        q.put(_Failure(exc))


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    th = threading.Thread(target=_produce, args=(items, q, stop), daemon=True, name="p4d-prefetch")
    th.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while th.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(timeout=0.05)


def render_batches(
    scene: Scene4D,
    timeline: Timeline,
    renderer: Renderer,
    output: OutputModel | None = None,
    batch_size: int | None = None,
    prefetch_batches: int = 2,
    render_threads: int = 3,
) -> Iterator[RenderedFrame]:
    """Frames of every time step of ``timeline`` in order, rendered ``batch_size`` steps at a
    time (default: the renderer's ``batch_size``, else 1) in a background thread; a batched
    renderer gets ``render_threads`` threads (gsplat waits on the device inside each call, so
    the threads' batches overlap) and a short interpreter switch interval while it runs."""
    from p4dsim.replay import render_frames

    n = len(timeline.times)
    bs = max(1, int(batch_size or getattr(renderer, "batch_size", 1)))

    def batch(s: int) -> list[RenderedFrame]:
        return render_frames(scene, timeline, list(range(s, min(s + bs, n))), renderer, output)

    starts = range(0, n, bs)
    if bs == 1:
        for frames in prefetch(map(batch, starts), prefetch_batches):
            yield from frames
        return
    batches = ordered_map(batch, starts, render_threads, render_threads)
    with switch_interval(SWITCH_INTERVAL_S):
        for frames in prefetch(batches, prefetch_batches):
            yield from frames


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int | None = None,
    window: int | None = None,
) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, results in input order, at most ``window``
    (default 2 × workers) calls in flight."""
    workers = workers or default_workers()
    window = max(1, window or 2 * workers)
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="p4d-encode") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


class BackgroundWriter:
    """Feeds a :class:`~p4dsim.io.dataset.DatasetWriter` from a thread through a bounded queue;
    full shards are encoded to Parquet by ``write_workers`` threads at once (at most twice that
    many shards pending), recorded in the writer's shard list in order.

    :meth:`add` returns at once unless ``max_pending`` frames are already waiting; an error in
    a writing thread is raised by the next :meth:`add` or by :meth:`commit`."""

    def __init__(
        self, writer: DatasetWriter, max_pending: int = 64, write_workers: int | None = None
    ) -> None:
        self.writer = writer
        self._q: queue.Queue = queue.Queue(maxsize=max(1, max_pending))
        self._error: BaseException | None = None
        nw = write_workers or max(1, min(4, (os.cpu_count() or 1) // 4))
        self._pool = ThreadPoolExecutor(max_workers=nw, thread_name_prefix="p4d-parquet")
        self._slots = threading.Semaphore(2 * nw)
        self._shards: list[Future[list]] = []
        self._checked = 0  # shards before this one finished without error
        self._thread = threading.Thread(target=self._run, daemon=True, name="p4d-writer")
        self._thread.start()

    def _write_shard(self, idx: int, frames: list[dict], actors: list[dict]) -> list:
        from p4dsim.io.dataset import TABLES, ShardRecord, rows_to_table, write_table_atomic

        try:
            records = []
            for name, rows in (("frames", frames), ("actors", actors)):
                table = rows_to_table(rows, TABLES[name])
                rel = f"{name}/part-{idx:05d}.parquet"
                rec = write_table_atomic(table, self.writer.stage_path(rel))
                records.append(ShardRecord(name, rel, rec["rows"], rec["sha256"]))
            return records
        finally:
            self._slots.release()

    def _submit(self, frames: list[dict], actors: list[dict]) -> None:
        self._slots.acquire()
        self._shards.append(self._pool.submit(self._write_shard, len(self._shards), frames, actors))

    def _raise_early(self) -> None:
        """Raise the error of a finished shard, checking each shard once it is done."""
        while self._checked < len(self._shards) and self._shards[self._checked].done():
            exc = self._shards[self._checked].exception()
            if exc is not None:
                raise exc
            self._checked += 1

    def _run(self) -> None:
        frames: list[dict] = []
        actors: list[dict] = []
        per_shard = self.writer.rows_per_shard
        while True:
            item = self._q.get()
            if item is _DONE:
                break
            if self._error is not None:
                continue
            try:
                frames.append(item[0])
                actors.extend(item[1])
                if len(frames) >= per_shard:
                    self._submit(frames, actors)
                    frames, actors = [], []
                    self._raise_early()
            except BaseException as exc:
                self._error = exc
        if frames and self._error is None:
            self._submit(frames, actors)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def add(self, frame_row: dict[str, Any], actor_rows: list[dict[str, Any]]) -> None:
        self._check()
        self._q.put((frame_row, actor_rows))

    def _drain(self) -> None:
        if self._thread.is_alive():
            self._q.put(_DONE)
            self._thread.join()
        for f in self._shards:
            try:
                self.writer.shards.extend(f.result())
            except BaseException as exc:
                self._error = self._error or exc
        self._shards, self._checked = [], 0
        self._pool.shutdown(wait=True)

    def commit(self, manifest: dict[str, Any]) -> Any:
        """Wait for queued rows and shards, then :meth:`DatasetWriter.commit`."""
        self._drain()
        self._check()
        return self.writer.commit(manifest)

    def abort(self) -> None:
        self._drain()
        self.writer.abort()

    @property
    def shards(self) -> list:
        return self.writer.shards
