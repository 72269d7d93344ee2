"""Replay: a scenario's poses over time -> renderer -> labels -> dataset rows.

Every pose is computed up front as a vectorised function of time; frames are rendered one
time step at a time and streamed into the dataset writer.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from p4dsim import __version__
from p4dsim.errors import ConfigError
from p4dsim.geometry import inv_pose
from p4dsim.io.codecs import depth_buffer, rgb_buffer
from p4dsim.io.dataset import DatasetWriter
from p4dsim.io.export import export_dataset
from p4dsim.labels import (
    LabelGeometry,
    alone_pixels,
    box2d_from_mask,
    inside_box_mask,
    label_geometry,
)
from p4dsim.metrics import ActorTrack, FrameMetrics, frame_metrics_batch, run_summary
from p4dsim.perception.select import frame_with_actors
from p4dsim.pipeline import BackgroundWriter
from p4dsim.plugins import get_exporter
from p4dsim.render import get_renderer
from p4dsim.render.base import Renderer, RenderOutput
from p4dsim.scenario.actors import check_rules, resolve_motions
from p4dsim.scenario.ego import (
    Kinematics,
    PoseFn,
    constant_velocity_base,
    ego_kinematics,
    ego_poses,
    log_base,
    stationary_base,
    waypoints_base,
)
from p4dsim.scenario.model import OutputModel, Scenario
from p4dsim.scenario.variants import expand_variants
from p4dsim.scene.builder import BuildConfig, build_scene
from p4dsim.scene.motion import Motion
from p4dsim.scene.scene4d import Scene4D
from p4dsim.source import SourceSpec
from p4dsim.types import Camera, Log

#: extra render channels before the per-actor masks
CH_CONFIDENCE, CH_SKY, CH_ACTORS = 0, 1, 2


@dataclass
class Timeline:
    """Everything pose-like of one run, precomputed. times [T] s; T_world_ego [T, 4, 4];
    actor_poses: track id -> [T, 4, 4] (absent: removed); camera: the rendered camera;
    ego_velocity [T, 3] and actor_velocity (track id -> [T, 3]): world m/s; kinematics: the
    ego's plausibility check; metrics: safety metrics per time step."""

    times: np.ndarray
    T_world_ego: np.ndarray
    actor_poses: dict[str, np.ndarray]
    camera: Camera
    ego_velocity: np.ndarray | None = None
    actor_velocity: dict[str, np.ndarray] = field(default_factory=dict)
    kinematics: Kinematics | None = None
    metrics: list[FrameMetrics] | None = None

    @cached_property
    def T_world_camera(self) -> np.ndarray:
        """Camera poses [T, 4, 4] (computed once: do not modify T_world_ego afterwards)."""
        return self.T_world_ego @ self.camera.T_ego_camera


@dataclass
class RenderedFrame:
    """One rendered frame: rgb uint8 [H, W, 3], depth float32 [H, W] (inf sky, 0 none; float16
    from the GPU when the output asks for it), alpha float32 [H, W], coverage (observed share
    of pixels), actor_masks float32 [H, W, A]. The GPU path returns no alpha image and no
    masks (None): it computes their statistics (``alpha_mean``, ``actor_pixels``,
    ``actor_boxes``, ``alone``) on the device instead."""

    index: int
    t: float
    rgb: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray | None
    coverage: float
    actor_masks: np.ndarray | None
    #: [A] pixels each actor covers when rendered alone (for visible_fraction), or None
    alone: np.ndarray | None = None
    #: (format, bytes) when the renderer already encoded the RGB (GPU JPEG), else None
    encoded_rgb: tuple[str, bytes] | None = None
    #: per actor, when the renderer computed them: pixels with mask > 0.5 [A] int64 and their
    #: bounding box [A, 4] (x0, y0, x1, y1), exactly what :func:`actor_rows` derives from masks
    actor_pixels: np.ndarray | None = None
    actor_boxes: np.ndarray | None = None
    #: mean of alpha over the image (when ``alpha`` is None)
    alpha_mean: float | None = None
    #: rendered confidence float32 [H, W] (alpha-weighted: 1 observed, 0 synthesised or
    #: empty), whose mean is ``coverage``; None where the renderer keeps it on the device
    confidence: np.ndarray | None = None


@dataclass
class ReplayResult:
    out_dir: Path
    frames: int
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


def ego_base(scenario: Scenario, scene: Scene4D, log: Log | None, where: str) -> PoseFn:
    if scenario.ego.base == "constant_velocity":
        return constant_velocity_base(scene.meta.get("ego_velocity", np.zeros(3)))
    if scenario.ego.base == "stationary":
        return stationary_base()
    if scenario.ego.base == "waypoints":
        return waypoints_base(list(scenario.ego.waypoints or []))
    traj = log.ego_trajectory() if log is not None else None
    if traj is None:
        raise ConfigError(
            f"{where}: field 'ego.base': the source log has no ego poses, so base 'log' is "
            "unavailable; use base: constant_velocity"
        )
    ts_us, T_log = traj
    times = (np.asarray(ts_us, dtype=np.int64) - scene.timestamp_us) / 1e6
    T_scene = inv_pose(scene.T_log_scene) @ np.asarray(T_log, dtype=np.float64)
    return log_base(times, T_scene)


def make_timeline(
    scenario: Scenario, scene: Scene4D, log: Log | None, where: str, metrics: bool = True
) -> Timeline:
    """Every pose of one run; ``metrics=False`` leaves the safety metrics to the caller
    (:func:`timeline_metrics`, e.g. while the first frames render)."""
    times = np.asarray(scenario.times(), dtype=np.float64)
    base = ego_base(scenario, scene, log, where)
    T_ego = ego_poses(scenario.ego, base, times)
    motions: dict[str, Motion | None] = resolve_motions(scenario.actors, scene, log, where)
    actor_poses = {tid: m.poses(times) for tid, m in motions.items() if m is not None}
    h = 1e-3
    ego_v = (
        ego_poses(scenario.ego, base, times + h)[:, :3, 3]
        - ego_poses(scenario.ego, base, times - h)[:, :3, 3]
    ) / (2 * h)
    actor_v = {
        tid: (m.poses(times + h)[:, :3, 3] - m.poses(times - h)[:, :3, 3]) / (2 * h)
        for tid, m in motions.items()
        if m is not None
    }
    kin = ego_kinematics(scenario.ego, base, times)
    cam = scene.camera
    if scenario.camera.width or scenario.camera.height:
        w = scenario.camera.width or round(cam.width * scenario.camera.height / cam.height)
        h = scenario.camera.height or round(cam.height * w / cam.width)
        cam = cam.with_resolution(w, h)
    tl = Timeline(times, T_ego, actor_poses, cam, ego_v, actor_v, kin)
    if metrics:
        tl.metrics = timeline_metrics(scenario, scene, tl)
    return tl


def timeline_metrics(
    scenario: Scenario, scene: Scene4D, tl: Timeline, steps: slice | None = None
) -> list[FrameMetrics]:
    """Safety metrics per time step of ``tl`` (or of its ``steps``): the ego footprint of
    ``scenario`` against every actor present."""
    sl = steps if steps is not None else slice(None)
    fp = scenario.ego.footprint
    return frame_metrics_batch(
        tl.T_world_ego[sl],
        tl.ego_velocity[sl],
        fp.length_m,
        fp.width_m,
        fp.center_x_m,
        [
            ActorTrack(
                a.track_id,
                tl.actor_poses[a.track_id][sl],
                a.size,
                tl.actor_velocity[a.track_id][sl],
            )
            for a in scene.actors
            if a.track_id in tl.actor_poses
        ],
    )


def render_frame(scene: Scene4D, timeline: Timeline, k: int, renderer: Renderer) -> RenderedFrame:
    """Render time step ``k`` of a timeline."""
    poses = {tid: P[k] for tid, P in timeline.actor_poses.items()}
    g, _ = scene.compose(poses)
    # scene_extra lists static then every actor; compose leaves out actors without a pose.
    present = np.concatenate(
        [np.ones(len(scene.static), bool)]
        + [np.full(len(a.gaussians), a.track_id in poses) for a in scene.actors]
    )
    extra = scene_extra(scene)[present]
    cam = timeline.camera
    viewmat = inv_pose(timeline.T_world_camera[k])
    out: RenderOutput = renderer.render(
        g, viewmat[None], cam.K[None], cam.width, cam.height, extra=extra
    )
    alpha = out.alpha[0]
    ex = out.extra[0]
    depth = out.depth[0].copy()
    sky_share = ex[..., CH_SKY] / np.maximum(alpha, 1e-6)
    depth[sky_share > 0.5] = np.inf
    depth[alpha < 0.5] = 0.0
    rgb = np.clip(np.round(out.rgb[0] * 255.0), 0, 255).astype(np.uint8)
    confidence = ex[..., CH_CONFIDENCE]
    return RenderedFrame(
        k,
        float(timeline.times[k]),
        rgb,
        depth,
        alpha,
        float(np.mean(confidence)),
        ex[..., CH_ACTORS:],
        confidence=confidence,
    )


def scene_extra(scene: Scene4D) -> np.ndarray:
    """Extra render channels [N, CH_ACTORS + A] float32 of every Gaussian of ``scene`` in the
    order static, then each actor's (confidence, sky, one-hot actor), as :func:`render_frame`
    builds them for the composed set."""
    A = len(scene.actors)
    parts = [np.zeros((len(scene.static), CH_ACTORS + A), dtype=np.float32)]
    parts[0][:, CH_CONFIDENCE] = scene.static.confidence
    parts[0][:, CH_SKY] = scene._sky_mask()
    for i, a in enumerate(scene.actors):
        e = np.zeros((len(a.gaussians), CH_ACTORS + A), dtype=np.float32)
        e[:, CH_CONFIDENCE] = a.gaussians.confidence
        e[:, CH_ACTORS + i] = 1.0
        parts.append(e)
    return np.concatenate(parts)


def render_frames(
    scene: Scene4D,
    timeline: Timeline,
    ks: list[int],
    renderer: Renderer,
    output: OutputModel | None = None,
) -> list[RenderedFrame]:
    """Render time steps ``ks``: in one batch when the renderer has a batched scene path
    (``render_frames``, the gsplat backend; RGB also JPEG-encoded there when ``output`` asks
    for JPEG), else one :func:`render_frame` per step."""
    batched = getattr(renderer, "render_frames", None)
    if batched is not None:
        q = output.jpeg_quality if output is not None and output.rgb == "jpeg" else None
        return batched(
            scene, timeline, ks, jpeg_quality=q, depth_format=output.depth if output else None
        )
    frames = []
    for k in ks:
        fr = render_frame(scene, timeline, k, renderer)
        poses = {tid: P[k] for tid, P in timeline.actor_poses.items()}
        fr.alone = alone_pixels(scene, poses, timeline.T_world_camera[k], timeline.camera, renderer)
        frames.append(fr)
    return frames


def _flat(T: np.ndarray) -> list[float]:
    return np.asarray(T, dtype=np.float64).reshape(-1).tolist()


def actor_rows(
    scene: Scene4D,
    timeline: Timeline,
    fr: RenderedFrame,
    base: dict[str, Any],
    alone: np.ndarray | None = None,
    geom: LabelGeometry | None = None,
) -> list[dict[str, Any]]:
    """Label rows for every actor present at this time step. ``alone`` [A]: pixels each actor
    covers when rendered alone (:func:`p4dsim.labels.alone_pixels`), for visible_fraction;
    ``geom``: the timeline's :func:`~p4dsim.labels.label_geometry` covering this step
    (computed for this step alone when not given)."""
    if geom is None:
        geom = label_geometry(scene, timeline, [fr.index])
    r = geom.row_of(fr.index)
    cam = timeline.camera
    # one conversion to Python numbers per frame (not one per value)
    c_world, yaw_world = geom.center_world[r].tolist(), geom.yaw_world[r].tolist()
    c_cam, yaw_cam = geom.center_camera[r].tolist(), geom.yaw_camera[r].tolist()
    dist, speed = geom.distance_m[r].tolist(), geom.speed[r].tolist()
    truncs = geom.truncation[r].tolist()
    alone_n = alone.tolist() if alone is not None else None
    gpu = fr.actor_pixels is not None and fr.actor_boxes is not None  # from the GPU renderer
    if gpu:
        pixels = fr.actor_pixels.tolist()
        boxes = np.asarray(fr.actor_boxes, dtype=np.float64).tolist()
    rows = []
    for i, actor in enumerate(scene.actors):
        if not geom.present[r, i]:
            continue
        if gpu:
            n_vis = int(pixels[i])
            box2d = boxes[i] if n_vis else None
        else:
            # The actor's mask, limited to rendered surface within its 3D box.
            T = timeline.actor_poses[actor.track_id][fr.index]
            mask = (fr.actor_masks[..., i] > 0.5) & inside_box_mask(
                fr.depth, cam.K, timeline.T_world_camera[fr.index], T, actor.size
            )
            n_vis = int(mask.sum())
            box2d = box2d_from_mask(mask) if n_vis else None
        # Every visible pixel is covered by the actor: the alone count is at least it.
        n_alone = max(int(alone_n[i]), n_vis) if alone_n is not None else 0
        trunc = truncs[i]
        rows.append(
            {
                **base,
                "track_id": actor.track_id,
                "label": actor.label,
                "source": actor.source,
                "confidence": float(actor.confidence),
                "center_world": c_world[i],
                "yaw_world": yaw_world[i],
                "size": np.asarray(actor.size, dtype=np.float64).tolist(),
                "center_camera": c_cam[i],
                "yaw_camera": yaw_cam[i],
                "box2d": box2d,
                "visible_pixels": n_vis,
                "visible_fraction": n_vis / n_alone if n_alone > 0 else None,
                "truncation": None if math.isnan(trunc) else trunc,
                "distance_m": dist[i],
                "speed": speed[i],
            }
        )
    return rows


def build_config(scenario: Scenario) -> BuildConfig:
    """The scene builder settings a scenario's ``scene`` section asks for."""
    return BuildConfig(
        stride=scenario.scene.stride,
        depth_source=scenario.scene.depth.source,
        mono_model=scenario.scene.depth.model,
    )


def open_source(scenario: Scenario, base_dir: Path | None, where: str) -> tuple[SourceSpec, Log]:
    spec = SourceSpec.from_mapping(scenario.source.model_dump(exclude_none=True))
    log = spec.open(base_dir, where=f"{where}: field 'source'")
    log.check_index(spec.frame)
    return spec, log


def frame_row(
    scene: Scene4D,
    timeline: Timeline,
    fr: RenderedFrame,
    base: dict[str, Any],
    output: OutputModel,
    metric: FrameMetrics | None = None,
) -> dict[str, Any]:
    """The ``frames`` table row of one rendered frame (see :mod:`p4dsim.io.dataset`);
    ``metric``: this step's safety metrics (default: the timeline's)."""
    k, n = fr.index, len(timeline.times)
    T_ego = timeline.T_world_ego[k]
    if timeline.ego_velocity is not None:
        v = timeline.ego_velocity[k]
    elif k + 1 < n:
        v = (timeline.T_world_ego[k + 1, :3, 3] - T_ego[:3, 3]) / (timeline.times[k + 1] - fr.t)
    elif k > 0:
        v = (T_ego[:3, 3] - timeline.T_world_ego[k - 1, :3, 3]) / (fr.t - timeline.times[k - 1])
    else:
        v = np.zeros(3)
    m = metric
    if m is None and timeline.metrics is not None:
        m = timeline.metrics[k]
    kin = timeline.kinematics
    cam = timeline.camera
    return {
        **base,
        "timestamp_us": int(scene.timestamp_us + round(fr.t * 1e6)),
        "t_s": fr.t,
        "width": cam.width,
        "height": cam.height,
        "K": _flat(cam.K),
        "T_world_camera": _flat(timeline.T_world_camera[k]),
        "T_world_ego": _flat(T_ego),
        "ego_speed": math.hypot(float(v[0]), float(v[1])),
        "rgb": fr.encoded_rgb[1]
        if fr.encoded_rgb is not None and fr.encoded_rgb[0] == output.rgb
        else rgb_buffer(fr.rgb, output.rgb, output.jpeg_quality),
        "rgb_format": output.rgb,
        "depth": depth_buffer(fr.depth, output.depth),
        "depth_format": output.depth,
        "alpha_mean": fr.alpha_mean if fr.alpha is None else float(fr.alpha.mean()),
        "coverage": fr.coverage,
        "source_dataset": scene.source.dataset,
        "source_log": scene.source.log_id,
        "source_frame": scene.source.frame_index,
        "collision": m.collision if m is not None else None,
        "min_distance_m": m.min_distance_m if m is not None else None,
        "ttc_s": m.ttc_s if m is not None else None,
        "kinematic_warning": kin.warning[k] if kin is not None else None,
    }


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
    from p4dsim.pipeline import ordered_map, render_batches

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
) -> ReplayResult:
    """Render every frame of ``scenario`` and write the native dataset to ``out_dir``."""
    where = str(scenario_path) if scenario_path else "scenario"
    base_dir = scenario_path.parent if scenario_path else None
    out_dir = Path(out_dir or scenario.output.dir or Path("out") / (scenario.name or "replay"))
    t0 = time.perf_counter()
    variants = expand_variants(scenario, where)
    spec, log = open_source(scenario, base_dir, where)
    frame = log.frame(spec.frame)
    frame = frame_with_actors(frame, log, spec.frame, scenario.actors.source, where)
    scene = build_scene(frame, build_config(scenario))
    for variant in variants:
        check_rules(variant.scenario.actors, scene, where)
    renderer = get_renderer(device or scenario.render.device)
    for i, fmt in enumerate(scenario.output.formats):
        try:
            get_exporter(fmt)
        except ConfigError as exc:
            raise ConfigError(f"{where}: field 'output.formats[{i}]': {exc}") from None
    writer = BackgroundWriter(DatasetWriter(out_dir, rows_per_shard=scenario.output.rows_per_shard))
    run_id = scenario.name or "replay"
    total = sum(len(v.scenario.times()) for v in variants)
    coverage: list[float] = []
    runs = []
    try:
        done = 0
        for variant in variants:
            n = 0
            ts: list[float] = []
            warnings = 0
            fm: list[FrameMetrics] = []
            for row, actors in iter_rows(
                scene, log, variant.scenario, renderer, run_id, variant.variant_id, where
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
                {
                    "run_id": run_id,
                    "variant_id": variant.variant_id,
                    "frames": n,
                    "overrides": variant.overrides,
                    **run_summary(np.asarray(ts), fm),
                    "kinematic_warnings": warnings,
                }
            )
        seconds = time.perf_counter() - t0
        summary = {
            "frames": done,
            "seconds": round(seconds, 3),
            "mean_coverage": float(np.mean(coverage)) if coverage else None,
            "gaussians": scene.num_gaussians(),
            "actors": len(scene.actors),
            "renderer": renderer.name,
            "device": renderer.device_name,
            **_safety_summary(runs),
        }
        manifest = {
            "p4dsim_version": __version__,
            "python": platform.python_version(),
            "scenario": scenario.model_dump(mode="json"),
            "source": spec.to_mapping(),
            "seed": scenario.seed,
            "runs": runs,
            "summary": summary,
        }
        writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    for fmt in scenario.output.formats:
        s = export_dataset(out_dir, fmt, out_dir / "exports" / fmt)
        summary.setdefault("exports", {})[fmt] = str(s.out_dir)
    return ReplayResult(out_dir, done, seconds, summary)


def _safety_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Safety over every run: the earliest first collision, the smallest distance, and how
    many runs collide."""
    firsts = [r["first_collision_s"] for r in runs if r.get("first_collision_s") is not None]
    dists = [r["min_distance_m"] for r in runs if r.get("min_distance_m") is not None]
    return {
        "first_collision_s": min(firsts) if firsts else None,
        "min_distance_m": min(dists) if dists else None,
        "runs_with_collision": len(firsts),
        "kinematic_warnings": sum(r.get("kinematic_warnings", 0) for r in runs),
    }
