"""Replay: orchestrates one scenario file into one dataset, holding no rules of its own.

open the scene (:func:`p4dsim.opening.open_scene`) -> per variant, the timeline
(:func:`p4dsim.scenario.timeline.make_timeline`) -> frames rendered in batches
(:meth:`p4dsim.render.base.Renderer.render_steps`, :func:`p4dsim.pipeline.render_batches`)
-> rows (:mod:`p4dsim.io.rows`) -> a sink (:class:`p4dsim.io.sinks.Sink`: the dataset writer
in a background thread) -> manifest with a :class:`~p4dsim.summary.ReplaySummary` -> exports.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from p4dsim import __version__
from p4dsim.io.dataset import DatasetWriter
from p4dsim.io.export import export_dataset
from p4dsim.io.rows import actor_rows, frame_row
from p4dsim.io.sinks import FanOut, Sink
from p4dsim.labels import LabelGeometry, label_geometry
from p4dsim.metrics import FrameMetrics, run_summary
from p4dsim.opening import build_config, open_scene
from p4dsim.pipeline import BackgroundWriter, ordered_map, render_batches
from p4dsim.preflight import exporter_formats, preflight
from p4dsim.render import get_renderer
from p4dsim.render.base import Renderer
from p4dsim.render.frames import RenderedFrame
from p4dsim.resample import frame_at_resolution
from p4dsim.scenario.actors import check_rules
from p4dsim.scenario.model import Scenario
from p4dsim.scenario.timeline import Timeline, make_timeline, timeline_metrics
from p4dsim.scenario.variants import variant_run_id
from p4dsim.scene.scene4d import Scene4D
from p4dsim.summary import ReplayRun, ReplaySummary
from p4dsim.types import Log


@dataclass
class ReplayResult:
    """Where the dataset went, frames rendered, wall time (s) and the summary."""

    out_dir: Path
    frames: int
    seconds: float
    summary: ReplaySummary


def iter_rows(
    scene: Scene4D,
    log: Log | None,
    scenario: Scenario,
    renderer: Renderer,
    run_id: str,
    variant_id: str = "base",
    where: str = "scenario",
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Render one run of ``scenario`` on a prebuilt ``scene``; yields (frame row, actor rows)
    per time step. The scene is not modified, so one scene serves many variants."""
    timeline = make_timeline(scenario, scene, log, where, metrics=False)
    n = len(timeline.times)
    with ThreadPoolExecutor(2, thread_name_prefix="p4d-labels") as pool:
        # the pose-only label values and the safety metrics are computed while the first
        # batches render, in chunks: the first rows wait only for their own chunk
        chunks = [
            pool.submit(_label_chunk, scenario, scene, timeline, s, min(s + LABEL_CHUNK, n))
            for s in range(0, n, LABEL_CHUNK)
        ]

        def rows(fr: RenderedFrame) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            geom, metrics = chunks[fr.index // LABEL_CHUNK].result()
            base = {"run_id": run_id, "variant_id": variant_id, "frame_index": fr.index}
            return (
                frame_row(
                    scene, timeline, fr, base, scenario.output, metrics[fr.index % LABEL_CHUNK]
                ),
                actor_rows(scene, timeline, fr, base, fr.alone, geom),
            )

        # rendering runs ahead in batches; rows (with encoding) are built in a thread pool,
        # in order
        yield from ordered_map(rows, render_batches(scene, timeline, renderer, scenario.output))


#: time steps per chunk of label geometry and safety metrics computed in the background
LABEL_CHUNK = 128


def _label_chunk(
    scenario: Scenario, scene: Scene4D, timeline: Timeline, start: int, stop: int
) -> tuple[LabelGeometry, list[FrameMetrics]]:
    """Label geometry and safety metrics of time steps [start, stop)."""
    return (
        label_geometry(scene, timeline, np.arange(start, stop)),
        timeline_metrics(scenario, scene, timeline, slice(start, stop)),
    )


def replay(
    scenario: Scenario,
    out_dir: Path | None = None,
    scenario_path: Path | None = None,
    device: str | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    sinks: Sequence[Sink] = (),
) -> ReplayResult:
    """Render every frame of ``scenario`` and write the native dataset to ``out_dir``;
    ``sinks``: more writers that receive the same rows and the same manifest (committed after
    the dataset, or aborted with it)."""
    where = str(scenario_path) if scenario_path else "scenario"
    base_dir = scenario_path.parent if scenario_path else None
    from_file = out_dir is None and scenario.output.dir is not None
    out_dir = out_dir if out_dir is not None else scenario.output.dir
    out_dir = Path(out_dir if out_dir is not None else Path("out") / (scenario.name or "replay"))
    t0 = time.perf_counter()
    pf = preflight(scenario, scenario_path, out_dir, from_file)  # every check before building
    variants, spec, log = pf.variants, pf.spec, pf.log
    frame = pf.frame if pf.frame is not None else log.frame(pf.frame_index)
    opened = open_scene(
        log,
        pf.frame_index,
        frame=frame_at_resolution(frame, scenario.camera),  # build at the rendered size
        actors=scenario.actors.source,
        config=build_config(scenario),
        base_dir=base_dir,
        where=where,
    )
    scene = opened.scene
    for variant in variants:
        check_rules(variant.scenario.actors, scene, where)
    renderer = get_renderer(device or scenario.render.device)
    dataset = BackgroundWriter(
        DatasetWriter(out_dir, rows_per_shard=scenario.output.rows_per_shard)
    )
    writer = FanOut([dataset, *sinks])
    run_id = scenario.name or "replay"
    total = sum(len(v.scenario.times()) for v in variants)
    coverage: list[float] = []
    runs: list[ReplayRun] = []
    try:
        done = 0
        for variant in variants:
            n = 0
            ts: list[float] = []
            warnings = 0
            fm: list[FrameMetrics] = []
            vrun_id = variant_run_id(run_id, variant.variant_id, len(variants))
            for row, actors in iter_rows(
                scene, log, variant.scenario, renderer, vrun_id, variant.variant_id, where
            ):
                ts.append(row["t_s"])
                fm.append(FrameMetrics(bool(row["collision"]), row["min_distance_m"], row["ttc_s"]))
                warnings += row["kinematic_warning"] is not None
                coverage.append(row["coverage"])
                writer.add(row, actors)
                n += 1
                done += 1
                if on_frame:
                    on_frame(done, total)
            runs.append(
                ReplayRun(
                    vrun_id,
                    variant.variant_id,
                    n,
                    variant.overrides,
                    **run_summary(np.asarray(ts), fm),
                    kinematic_warnings=warnings,
                )
            )
        seconds = time.perf_counter() - t0
        summary = ReplaySummary(
            frames=done,
            seconds=round(seconds, 3),
            mean_coverage=float(np.mean(coverage)) if coverage else None,
            gaussians=scene.num_gaussians(),
            actors=len(scene.actors),
            renderer=renderer.name,
            device=renderer.device_name,
            **ReplaySummary.safety(runs),
        )
        manifest = {
            "p4dsim_version": __version__,
            "python": platform.python_version(),
            "scenario": scenario.model_dump(mode="json"),
            "source": spec.to_mapping(),
            "seed": scenario.seed,
            "runs": [r.to_json() for r in runs],
            "summary": summary.to_json(),
        }
        writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    for fmt in exporter_formats(scenario.output.formats):
        s = export_dataset(out_dir, fmt, out_dir / "exports" / fmt)
        summary.exports[fmt] = str(s.out_dir)
    return ReplayResult(out_dir, done, seconds, summary)
