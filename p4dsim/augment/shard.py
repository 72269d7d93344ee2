"""Rendering one shard: build the source frame's scene once, replay every run on it, write
the shard's Parquet files.

:func:`run_shard` is the function every executor runs (in a pool process or a Ray task). It
never raises: failures come back as a :class:`ShardResult` with ``error`` set, and any file of
the shard it had written is removed. Files are written to a temporary name and renamed to a
staged name that readers skip (:mod:`p4dsim.io.outdir`), so a staged file is complete; the
driver moves it into the dataset when the manifest lists it. Rows come in a fixed order (runs
in plan order, time steps in order) and Parquet settings are fixed, so a shard's bytes depend
only on its :class:`~p4dsim.augment.tasks.ShardSpec`.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
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

    frames: rendered frames (frames-table rows); seconds: wall time of the shard in the
    worker; runs: one record per run.
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


def render_shard(spec: ShardSpec, writer: ShardWriter) -> list[RunRecord]:
    """Build the shard's scene once and stream every run's rows into ``writer`` (one row
    group per run); return one record per run."""
    from p4dsim.opening import build_config, open_scene
    from p4dsim.replay import iter_rows
    from p4dsim.resample import frame_at_resolution
    from p4dsim.scenario.model import Scenario

    log = _log(spec.source, spec.base_dir)
    frame = log.frame(log.check_index(spec.frame))
    scenes: dict[Any, Any] = {}  # by (build settings, actor source); usually one
    runs = []
    for task in spec.runs:
        scenario = Scenario.model_validate(task.scenario)
        cfg = build_config(scenario)
        key = (cfg, scenario.actors.source, scenario.camera.width, scenario.camera.height)
        if key not in scenes:
            scenes[key] = open_scene(
                log,
                spec.frame,
                actors=scenario.actors.source,
                config=cfg,
                where=task.where,
                frame=frame_at_resolution(frame, scenario.camera),
            ).scene
        renderer = _renderer(spec.device or scenario.render.device)
        n = 0
        for frow, arows in iter_rows(
            scenes[key], log, scenario, renderer, task.run_id, task.variant_id, task.where
        ):
            writer.add(frow, arows)
            n += 1
        writer.end_run()
        runs.append(RunRecord(task.run_id, task.variant_id, n, task.overrides))
    return runs


def run_shard(spec: ShardSpec, out_dir: str) -> ShardResult:
    """Render shard ``spec`` and write its files under ``out_dir``; never raises."""
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    writer = None
    try:
        writer = ShardWriter(
            Path(out_dir), {t: spec.relpath(t) for t in SHARD_TABLES}, stage=shard_stage_path
        )
        runs = render_shard(spec, writer)
        files = writer.commit()
        return ShardResult(
            shard_id=spec.shard_id,
            frame=spec.frame,
            ok=True,
            frames=sum(r.frames for r in runs),
            seconds=time.perf_counter() - t0,
            files=files,
            runs=runs,
            worker=worker,
        )
    except Exception as exc:  # a failing shard must not stop the others
        if writer is not None:
            writer.abort()
        tb = traceback.format_exc(limit=-4)
        return ShardResult(
            shard_id=spec.shard_id,
            frame=spec.frame,
            ok=False,
            seconds=time.perf_counter() - t0,
            error=f"{type(exc).__name__}: {exc}\n{tb}",
            worker=worker,
        )
