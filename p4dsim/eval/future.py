"""The future-frame protocol: build a scene from frame t, predict the views of t + k.

For every selected source frame t and horizon k (frames), the scene built from frame t alone
is rendered at the logged camera pose of frame t + k (other vehicles follow their logged
tracks where the log has them, their box velocity otherwise) and compared with the real frame
t + k: PSNR and SSIM of the image, AbsRel and RMSE of depth against the LiDAR of t + k
projected into the image, coverage, depth consistency against frame t's static LiDAR
reprojected into the view (:mod:`p4dsim.eval.consistency`), and all of these per region
class of the target view (:mod:`p4dsim.eval.regions`). The ``copy`` and ``lidar_warp``
baselines predict the same views (:mod:`p4dsim.eval.baselines`).

Logs with a ground-truth oracle (:meth:`p4dsim.types.Log.oracle`; toytown offers one: the
true view from any pose at any time) also evaluate perturbed, never-logged ego paths: the
reference image is the oracle's view and the reference depth the oracle's LiDAR sweep from
the perturbed pose.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.eval.baselines import Prediction, copy_prediction, lidar_warp_prediction, source_depth
from p4dsim.eval.consistency import consistency_reference
from p4dsim.eval.regions import box_masks, region_map, synthesised_mask
from p4dsim.eval.scoring import score_all
from p4dsim.geometry import inv_pose
from p4dsim.opening import open_scene
from p4dsim.perception.select import frame_with_actors
from p4dsim.render import get_renderer
from p4dsim.render.frames import render_frame
from p4dsim.scenario.actors import resolve_motions
from p4dsim.scenario.ego import ego_poses, log_base
from p4dsim.scenario.model import ActorsModel, EgoModel, LateralOffset, SpeedScale
from p4dsim.scenario.timeline import Timeline
from p4dsim.scene.builder import BuildConfig
from p4dsim.scene.depth import project_lidar
from p4dsim.types import Frame, Log

METHODS: tuple[str, ...] = ("p4dsim", "copy", "lidar_warp")
METRICS: tuple[str, ...] = (
    "psnr",
    "ssim",
    "absrel",
    "rmse",
    "depth_density",
    "coverage",
    "consistency",
)
#: trajectory name of the logged ego path
LOGGED = "log"


@dataclass
class Target:
    """One view to predict: camera pose in the scene world (frame t's ego frame) [4, 4],
    time since frame t (s), reference rgb uint8 [H, W, 3] and sparse reference depth [H, W]."""

    trajectory: str
    horizon: int
    dt: float
    T_scene_ego: np.ndarray
    rgb: np.ndarray
    depth: np.ndarray


@dataclass
class FutureEval:
    """Result of :func:`evaluate_future`.

    samples: one dict per (trajectory, method, source frame t, horizon) with the metrics of
    :data:`METRICS`; meta: source, frames, horizons, resolution, timings.
    """

    samples: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)


def resize_frame(frame: Frame, width: int, height: int) -> Frame:
    """The frame with its image resampled to ``width``×``height`` (intrinsics scaled; LiDAR,
    boxes and poses unchanged; per-pixel extras dropped)."""
    if (frame.camera.width, frame.camera.height) == (width, height):
        return frame
    image = cv2.resize(frame.image, (width, height), interpolation=cv2.INTER_AREA)
    extras = {k: v for k, v in frame.extras.items() if not isinstance(v, np.ndarray)}
    return Frame(
        image=image,
        camera=frame.camera.with_resolution(width, height),
        lidar=frame.lidar,
        boxes=frame.boxes,
        T_world_ego=frame.T_world_ego,
        ego_velocity=frame.ego_velocity,
        timestamp_us=frame.timestamp_us,
        source=frame.source,
        extras=extras,
    )


def method_name(actor_source: str | None) -> str:
    """``p4dsim`` for the default actor source, else ``p4dsim_<source>``."""
    return "p4dsim" if actor_source is None else f"p4dsim_{actor_source}"


def has_oracle(log: Log) -> bool:
    """Whether the log offers ground truth for unrecorded poses (:meth:`Log.oracle`)."""
    return log.oracle() is not None


def trajectory_name(p: LateralOffset | SpeedScale) -> str:
    if isinstance(p, LateralOffset):
        return f"lateral_offset={p.offset_m:g}"
    return f"speed_scale={p.scale:g}"


class _Frames:
    """Log frames loaded once each, resized, dropped when no longer needed."""

    def __init__(self, log: Log, resolution: tuple[int, int] | None):
        self.log, self.resolution, self.cache = log, resolution, {}

    def get(self, i: int) -> Frame:
        if i not in self.cache:
            f = self.log.frame(i)
            if self.resolution is not None:
                f = resize_frame(f, *self.resolution)
            self.cache[i] = f
        return self.cache[i]

    def forget_before(self, i: int) -> None:
        for k in [k for k in self.cache if k < i]:
            del self.cache[k]


def _logged_targets(
    log: Log, frames: _Frames, t: int, horizons: Sequence[int], T_log_scene: np.ndarray
) -> list[Target]:
    src = frames.get(t)
    out = []
    for k in horizons:
        if t + k >= len(log):
            continue
        f = frames.get(t + k)
        ref_depth = (
            project_lidar(f.lidar, f.camera)
            if f.lidar is not None
            else np.zeros(f.image.shape[:2], np.float32)
        )
        out.append(
            Target(
                LOGGED,
                k,
                (f.timestamp_us - src.timestamp_us) / 1e6,
                inv_pose(T_log_scene) @ f.T_world_ego,
                f.image,
                ref_depth,
            )
        )
    return out


def _perturbed_targets(
    log: Log,
    frames: _Frames,
    t: int,
    horizons: Sequence[int],
    T_log_scene: np.ndarray,
    pert: LateralOffset | SpeedScale,
) -> list[Target]:
    src = frames.get(t)
    traj = log.ego_trajectory()
    if traj is None:
        raise ConfigError(f"--perturb: the {log.dataset} log has no ego poses to perturb")
    ts_us, T_log = traj
    base = log_base(
        (np.asarray(ts_us, np.int64) - src.timestamp_us) / 1e6,
        inv_pose(T_log_scene) @ np.asarray(T_log, np.float64),
    )
    ks = [k for k in horizons if t + k < len(log)]
    dts = np.array([(frames.get(t + k).timestamp_us - src.timestamp_us) / 1e6 for k in ks])
    if not ks:
        return []
    poses = ego_poses(EgoModel(base="log", perturbations=[pert]), base, dts)
    cam = src.camera
    oracle = log.oracle()
    if oracle is None:
        raise ConfigError(
            f"--perturb: the {log.dataset} log has no ground truth for unlogged poses"
        )
    t0 = oracle.time_of(t)
    out = []
    for k, dt, T_scene_ego in zip(ks, dts, poses, strict=True):
        T_log_ego = T_log_scene @ T_scene_ego
        rgb = oracle.true_view(cam, T_log_ego @ cam.T_ego_camera, t0 + dt)
        pts = oracle.true_lidar(T_log_ego, t0 + dt)
        out.append(
            Target(
                trajectory_name(pert),
                k,
                float(dt),
                T_scene_ego,
                rgb,
                project_lidar(pts, cam),
            )
        )
    return out


def evaluate_future(
    log: Log,
    frames: Sequence[int],
    horizons: Sequence[int],
    resolution: tuple[int, int] | None = None,
    perturbations: Sequence[LateralOffset | SpeedScale] = (),
    device: str = "auto",
    build: BuildConfig | None = None,
    on_step: Callable[[int, int], None] | None = None,
    actor_sources: Sequence[str | None] = (None,),
) -> FutureEval:
    """Run the future-frame protocol on ``log``.

    frames: source frame indices t; horizons: frame offsets k > 0 (pairs with t + k beyond the
    log are skipped); resolution: (width, height) to evaluate at (default: the log's);
    perturbations: extra ego paths (each one a step from frame t on), only on logs with an
    oracle; device: renderer (auto, cpu, cuda). on_step(done, total) reports progress per t.
    actor_sources: one p4dsim method per entry — ``None`` (method ``p4dsim``: labels where the
    frame has boxes, else vehicles detected in the LiDAR) or ``auto``/``labels``/``none``
    (method ``p4dsim_<source>``), so scenes with and without actors compare in one run.
    """
    if perturbations and not has_oracle(log):
        raise ConfigError(
            f"--perturb: the {log.dataset} log has no ground truth for unlogged poses; "
            "perturbed trajectories can only be evaluated on toytown"
        )
    horizons = sorted(set(int(k) for k in horizons))
    renderer = get_renderer(device)
    cache = _Frames(log, resolution)
    samples: list[dict[str, Any]] = []
    timings = {"build_s": 0.0, "render_s": 0.0, "baselines_s": 0.0}
    t_start = time.perf_counter()
    used = [t for t in frames if any(t + k < len(log) for k in horizons)]
    target_boxes: dict[int, tuple[list, np.ndarray]] = {}
    for n_done, t in enumerate(used):
        cache.forget_before(t)
        target_boxes = {i: v for i, v in target_boxes.items() if i > t}
        src = cache.get(t)
        t0 = time.perf_counter()
        scenes = {}
        framed = {}
        for a_src in actor_sources:
            opened = open_scene(log, t, actors=a_src, config=build, where=f"frame {t}", frame=src)
            framed[a_src] = opened.frame
            scenes[method_name(a_src)] = opened.scene
        if None not in framed:
            framed[None] = frame_with_actors(src, log, t, None, where=f"frame {t}")
        scene = next(iter(scenes.values()))
        timings["build_s"] += time.perf_counter() - t0
        targets = _logged_targets(log, cache, t, horizons, scene.T_log_scene)
        for p in perturbations:
            targets += _perturbed_targets(log, cache, t, horizons, scene.T_log_scene, p)
        if not targets:
            continue
        times = np.array([tg.dt for tg in targets])
        T_ego = np.stack([tg.T_scene_ego for tg in targets])
        timelines = {}
        for name, sc in scenes.items():
            motions = resolve_motions(ActorsModel(), sc, log, f"frame {t}")
            actor_poses = {tid: m.poses(times) for tid, m in motions.items() if m is not None}
            timelines[name] = Timeline(times, T_ego, actor_poses, sc.camera)
        t0 = time.perf_counter()
        depth_t = source_depth(src)
        copy = copy_prediction(src, depth_t)
        timings["baselines_s"] += time.perf_counter() - t0
        for i, tg in enumerate(targets):
            t0 = time.perf_counter()
            preds = {}
            synth = None
            for name, sc in scenes.items():
                fr = render_frame(sc, timelines[name], i, renderer)
                preds[name] = Prediction(fr.rgb, fr.depth, fr.coverage)
                if synth is None and fr.confidence is not None:
                    synth = synthesised_mask(fr.confidence, fr.alpha)
            timings["render_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            T_cam = tg.T_scene_ego @ scene.camera.T_ego_camera
            warp = lidar_warp_prediction(src, T_cam, scene.camera, fallback=copy)
            timings["baselines_s"] += time.perf_counter() - t0
            preds.update({"copy": copy, "lidar_warp": warp})
            # error anatomy: road users of the target frame (labels, else found in its LiDAR)
            j = t + tg.horizon
            if j not in target_boxes:
                f = cache.get(j)
                boxes = frame_with_actors(f, log, j, None, f"frame {j}").boxes
                target_boxes[j] = (boxes, f.T_world_ego)
            boxes_j, T_log_j = target_boxes[j]
            T_j_cam = inv_pose(inv_pose(scene.T_log_scene) @ T_log_j) @ T_cam
            vehicles = box_masks(boxes_j, scene.camera, T_j_cam)
            regions = region_map(tg.depth, tg.rgb, vehicles, synth)
            ref = consistency_reference(src, framed[None].boxes, scene.camera, T_cam)
            for method, scores in score_all(preds, tg.rgb, tg.depth, ref, regions).items():
                samples.append(
                    {
                        "trajectory": tg.trajectory,
                        "method": method,
                        "t": int(t),
                        "horizon": tg.horizon,
                        "dt_s": tg.dt,
                        **scores,
                    }
                )
        if on_step:
            on_step(n_done + 1, len(used))
    cam = cache.get(used[0]).camera if used else None
    meta = {
        "dataset": log.dataset,
        "log_id": log.log_id,
        "frames": [int(t) for t in used],
        "horizons": horizons,
        "resolution": None if cam is None else [cam.width, cam.height],
        "trajectories": [LOGGED] + [trajectory_name(p) for p in perturbations],
        "methods": [method_name(a) for a in actor_sources] + list(METHODS[1:]),
        "actors_in_scenes": {name: len(sc.actors) for name, sc in scenes.items()} if used else {},
        "renderer": f"{renderer.name} ({renderer.device_name})",
        "actors_tracked": len(log.tracks()),
        "seconds": round(time.perf_counter() - t_start, 2),
        **{k: round(v, 2) for k, v in timings.items()},
    }
    return FutureEval(samples, meta)
