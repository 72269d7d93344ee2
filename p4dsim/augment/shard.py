"""Rendering one shard: build the source frame's scenes once, replay every run on them, write
the shard's Parquet files.

Two stages, run in one process (:func:`run_shard`, what the all-in-one executors run in a
pool process or a Ray task) or in two (:func:`build_shard` in a CPU build process, then
:func:`render_built` in the process that owns the renderer; see
:mod:`p4dsim.augment.split`). Either way the shard's rows come from the same code in the same
order, so its bytes do not depend on where the stages ran.

Neither entry point raises: failures come back as a :class:`ShardResult` with ``error`` set,
and any file of the shard already written is removed. Files are written to a temporary name
and renamed to a staged name that readers skip (:mod:`p4dsim.io.outdir`), so a staged file is
complete; the driver moves it into the dataset when the manifest lists it. Rows come in a
fixed order (runs in plan order, time steps in order) and Parquet settings are fixed, so a
shard's bytes depend only on its :class:`~p4dsim.augment.tasks.ShardSpec`.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p4dsim.augment.tasks import SHARD_TABLES, ShardSpec
from p4dsim.io.dataset import ShardRecord
from p4dsim.io.outdir import shard_stage_path
from p4dsim.io.sinks import ShardWriter
from p4dsim.summary import RunRecord

#: per-process caches: open logs by source string, renderers by device
_LOGS: dict[tuple[str, str | None], Any] = {}
_RENDERERS: dict[str, Any] = {}


@dataclass
class ShardResult:
    """What a worker sends back: small, whatever the shard's size.

    frames: rendered frames (frames-table rows); seconds: wall time of the shard (both
    stages); runs: one record per run. Stage times (seconds; ``*_cpu_s``: CPU time of the
    process that ran the stage, all its threads): ``build_*`` opening the source and building
    the scenes, ``render_*`` replaying every run and writing the files. first_row_at: wall
    clock (``time.time()``) when the shard's first frame row was made, or None;
    gpu_peak_bytes: peak CUDA memory allocated by torch in the rendering process so far, or
    None when it did not use CUDA.
    """

    shard_id: str
    frame: int
    ok: bool
    frames: int = 0
    seconds: float = 0.0
    files: list[ShardRecord] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    error: str | None = None
    worker: str = ""
    build_s: float = 0.0
    build_cpu_s: float = 0.0
    render_s: float = 0.0
    render_cpu_s: float = 0.0
    first_row_at: float | None = None
    gpu_peak_bytes: int | None = None


@dataclass
class BuiltShard:
    """The scenes of one shard, built: ``scenes[scene_of_run[i]]`` is the scene run ``i`` of
    the shard replays (runs sharing build settings, actor source and size share a scene).
    Holds numpy arrays only (no open files, no device tensors), so it pickles out of band.
    """

    shard_id: str
    scenes: list[Any]
    scene_of_run: list[int]
    build_s: float = 0.0
    build_cpu_s: float = 0.0
    worker: str = ""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def failed_result(spec: ShardSpec, why: str, **kw: Any) -> ShardResult:
    """A failed :class:`ShardResult` for ``spec`` with error ``why``."""
    return ShardResult(shard_id=spec.shard_id, frame=spec.frame, ok=False, error=why, **kw)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-4)}"


def _log(source: str, base_dir: str | None):
    from p4dsim.opening import open_log

    key = (source, base_dir)
    if key not in _LOGS:
        _LOGS.clear()  # one source per job; keep only the current one
        where = f"--source '{source}'"
        _LOGS[key] = open_log(source, Path(base_dir) if base_dir else None, where)[1]
    return _LOGS[key]


def _renderer(device: str):
    from p4dsim.render import get_renderer

    if device not in _RENDERERS:
        _RENDERERS[device] = get_renderer(device)
    return _RENDERERS[device]


def build_scenes(spec: ShardSpec) -> BuiltShard:
    """Open the shard's source and build the scene of every distinct (build settings, actor
    source, width, height) among its runs, at the rendered size."""
    from p4dsim.opening import build_config, open_scene
    from p4dsim.resample import frame_at_resolution
    from p4dsim.scenario.model import Scenario

    t0, c0 = time.perf_counter(), time.process_time()
    log = _log(spec.source, spec.base_dir)
    frame = log.frame(log.check_index(spec.frame))
    keys: dict[Any, int] = {}  # by (build settings, actor source); usually one
    scenes: list[Any] = []
    scene_of_run = []
    for task in spec.runs:
        scenario = Scenario.model_validate(task.scenario)
        cfg = build_config(scenario)
        key = (cfg, scenario.actors.source, scenario.camera.width, scenario.camera.height)
        if key not in keys:
            keys[key] = len(scenes)
            scenes.append(
                open_scene(
                    log,
                    spec.frame,
                    actors=scenario.actors.source,
                    config=cfg,
                    where=task.where,
                    frame=frame_at_resolution(frame, scenario.camera),
                ).scene
            )
        scene_of_run.append(keys[key])
    return BuiltShard(
        spec.shard_id,
        scenes,
        scene_of_run,
        build_s=time.perf_counter() - t0,
        build_cpu_s=time.process_time() - c0,
        worker=worker_id(),
    )


def replay_shard(
    spec: ShardSpec, built: BuiltShard, writer: ShardWriter, on_first_row: Callable[[], None]
) -> list[RunRecord]:
    """Stream every run's rows, rendered on its built scene, into ``writer`` (one row group
    per run); return one record per run."""
    from p4dsim.replay import iter_rows
    from p4dsim.scenario.model import Scenario

    log = _log(spec.source, spec.base_dir)
    runs = []
    for i, task in enumerate(spec.runs):
        scenario = Scenario.model_validate(task.scenario)
        scene = built.scenes[built.scene_of_run[i]]
        renderer = _renderer(spec.device or scenario.render.device)
        n = 0
        for frow, arows in iter_rows(
            scene, log, scenario, renderer, task.run_id, task.variant_id, task.where
        ):
            if n == 0 and not runs:
                on_first_row()
            writer.add(frow, arows)
            n += 1
        writer.end_run()
        runs.append(RunRecord(task.run_id, task.variant_id, n, task.overrides))
    return runs


def gpu_peak_bytes() -> int | None:
    """Peak CUDA memory torch allocated in this process, or None if it never used CUDA
    (asking never initialises CUDA)."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_initialized():
            return None
        return int(torch.cuda.max_memory_allocated())
    except Exception:
        return None


def render_built(spec: ShardSpec, built: BuiltShard, out_dir: str) -> ShardResult:
    """Replay the runs of ``spec`` on its built scenes and write the shard's files under
    ``out_dir``; never raises. The result carries the build stage's times from ``built``."""
    t0, c0 = time.perf_counter(), time.process_time()
    first: list[float] = []
    stages = {"build_s": built.build_s, "build_cpu_s": built.build_cpu_s}
    writer = None
    try:
        writer = ShardWriter(
            Path(out_dir), {t: spec.relpath(t) for t in SHARD_TABLES}, stage=shard_stage_path
        )
        runs = replay_shard(spec, built, writer, lambda: first.append(time.time()))
        files = writer.commit()
        render_s = time.perf_counter() - t0
        return ShardResult(
            shard_id=spec.shard_id,
            frame=spec.frame,
            ok=True,
            frames=sum(r.frames for r in runs),
            seconds=built.build_s + render_s,
            files=files,
            runs=runs,
            worker=worker_id(),
            render_s=render_s,
            render_cpu_s=time.process_time() - c0,
            first_row_at=first[0] if first else None,
            gpu_peak_bytes=gpu_peak_bytes(),
            **stages,
        )
    except Exception as exc:  # a failing shard must not stop the others
        if writer is not None:
            writer.abort()
        render_s = time.perf_counter() - t0
        return failed_result(
            spec,
            _error_text(exc),
            seconds=built.build_s + render_s,
            worker=worker_id(),
            render_s=render_s,
            **stages,
        )


def build_shard(spec: ShardSpec) -> BuiltShard | ShardResult:
    """:func:`build_scenes`, or the failed :class:`ShardResult` if building failed; never
    raises."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        return build_scenes(spec)
    except Exception as exc:  # a failing shard must not stop the others
        return failed_result(
            spec,
            _error_text(exc),
            seconds=time.perf_counter() - t0,
            worker=worker_id(),
            build_s=time.perf_counter() - t0,
            build_cpu_s=time.process_time() - c0,
        )


def run_shard(spec: ShardSpec, out_dir: str) -> ShardResult:
    """Build shard ``spec``'s scenes, render it and write its files under ``out_dir``, all in
    this process; never raises."""
    built = build_shard(spec)
    if isinstance(built, ShardResult):
        return built
    return render_built(spec, built, out_dir)
