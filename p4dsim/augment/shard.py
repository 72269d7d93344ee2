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
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p4dsim.augment.tasks import SHARD_TABLES, ShardSpec
from p4dsim.io.outdir import shard_stage_path

#: per-process caches: open logs by source string, renderers by device
_LOGS: dict[tuple[str, str | None], Any] = {}
_RENDERERS: dict[str, Any] = {}


@dataclass
class ShardFile:
    """One written Parquet file of a shard (``path`` relative to the dataset folder)."""

    table: str
    path: str
    rows: int
    sha256: str


@dataclass
class ShardResult:
    """What a worker sends back: small, whatever the shard's size.

    frames: rendered frames (frames-table rows); seconds: wall time of the shard in the
    worker; runs: one record per run (run_id, variant_id, frames, overrides).
    """

    shard_id: str
    frame: int
    ok: bool
    frames: int = 0
    seconds: float = 0.0
    files: list[ShardFile] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    worker: str = ""


def _log(source: str, base_dir: str | None):
    from p4dsim.source import SourceSpec

    key = (source, base_dir)
    if key not in _LOGS:
        spec = SourceSpec.parse(source)
        _LOGS.clear()  # one source per job; keep only the current one
        _LOGS[key] = spec.open(Path(base_dir) if base_dir else None, where=f"--source '{source}'")
    return _LOGS[key]


def _renderer(device: str):
    from p4dsim.render import get_renderer

    if device not in _RENDERERS:
        _RENDERERS[device] = get_renderer(device)
    return _RENDERERS[device]


class ShardWriter:
    """Streams a shard's rows into one Parquet file per table, one row group per run.

    Files are written under temporary names (``.<name>.tmp-<hex>``) and renamed by
    :meth:`commit`; :meth:`abort` removes them. Settings are fixed
    (:func:`~p4dsim.io.dataset.parquet_options`), so equal rows give equal bytes.
    """

    def __init__(self, spec: ShardSpec, out_dir: Path):
        import pyarrow.parquet as pq

        from p4dsim.io.dataset import TABLES, parquet_options

        self.spec = spec
        self.out_dir = Path(out_dir)
        self.schemas = {t: TABLES[t] for t in SHARD_TABLES}
        self.tmp: dict[str, Path] = {}
        self.rows: dict[str, int] = {t: 0 for t in SHARD_TABLES}
        self.writers = {}
        for table in SHARD_TABLES:
            dest = self.out_dir / spec.relpath(table)
            if dest.is_dir():  # the driver could not move the file into place
                raise IsADirectoryError(f"a folder is in the way of shard file '{dest}'")
            final = shard_stage_path(self.out_dir, spec.relpath(table))  # see p4dsim.io.outdir
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
            self.tmp[table] = tmp
            schema = self.schemas[table]
            self.writers[table] = pq.ParquetWriter(tmp, schema, **parquet_options(schema))

    def add(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Append ``rows`` of ``table`` as one row group (nothing when empty)."""
        from p4dsim.io.dataset import rows_to_table

        if rows:
            self.writers[table].write_table(rows_to_table(rows, self.schemas[table]))
            self.rows[table] += len(rows)

    def commit(self) -> list[ShardFile]:
        """Close, fsync and rename every file to its staged name; return their records (the
        driver moves them into the dataset when its manifest lists them)."""
        from p4dsim.io.dataset import sha256_file

        files = []
        for table in SHARD_TABLES:
            self.writers[table].close()
            with open(self.tmp[table], "rb") as f:
                os.fsync(f.fileno())
        for table in SHARD_TABLES:
            final = shard_stage_path(self.out_dir, self.spec.relpath(table))
            os.replace(self.tmp[table], final)
            files.append(
                ShardFile(table, self.spec.relpath(table), self.rows[table], sha256_file(final))
            )
        return files

    def abort(self) -> None:
        """Remove the temporary files and any file of this shard already staged."""
        for table in SHARD_TABLES:
            try:
                self.writers[table].close()
            except Exception:
                pass
            for path in (self.tmp[table], shard_stage_path(self.out_dir, self.spec.relpath(table))):
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass


def render_shard(spec: ShardSpec, writer: ShardWriter) -> list[dict[str, Any]]:
    """Build the shard's scene once and stream every run's rows into ``writer``; return one
    record per run (run_id, variant_id, frames, overrides)."""
    from p4dsim.perception.select import frame_with_actors
    from p4dsim.replay import build_config, iter_rows
    from p4dsim.resample import frame_at_resolution
    from p4dsim.scenario.model import Scenario
    from p4dsim.scene.builder import build_scene

    log = _log(spec.source, spec.base_dir)
    frame = log.frame(log.check_index(spec.frame))
    scenes: dict[Any, Any] = {}  # by (build settings, actor source); usually one
    runs = []
    for task in spec.runs:
        scenario = Scenario.model_validate(task.scenario)
        cfg = build_config(scenario)
        key = (cfg, scenario.actors.source, scenario.camera.width, scenario.camera.height)
        if key not in scenes:
            with_actors = frame_with_actors(
                frame, log, spec.frame, scenario.actors.source, task.where
            )
            scenes[key] = build_scene(frame_at_resolution(with_actors, scenario.camera), cfg)
        renderer = _renderer(spec.device or scenario.render.device)
        frames, actors = [], []
        for frow, arows in iter_rows(
            scenes[key], log, scenario, renderer, task.run_id, task.variant_id, task.where
        ):
            frames.append(frow)
            actors.extend(arows)
        writer.add("frames", frames)
        writer.add("actors", actors)
        runs.append(
            {
                "run_id": task.run_id,
                "variant_id": task.variant_id,
                "frames": len(frames),
                "overrides": task.overrides,
            }
        )
    return runs


def run_shard(spec: ShardSpec, out_dir: str) -> ShardResult:
    """Render shard ``spec`` and write its files under ``out_dir``; never raises."""
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    writer = None
    try:
        writer = ShardWriter(spec, Path(out_dir))
        runs = render_shard(spec, writer)
        files = writer.commit()
        return ShardResult(
            shard_id=spec.shard_id,
            frame=spec.frame,
            ok=True,
            frames=sum(r["frames"] for r in runs),
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
