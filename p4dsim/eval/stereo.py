"""The stereo protocol: build from the left camera of frame t, predict the right camera's view
of the same instant, compare with the real right image.

A rectified stereo pair (KITTI raw ``image_02`` / ``image_03``: same intrinsics, a 0.54 m
baseline) is the one real novel view a driving log carries: a lateral shift with no time
passing, so nothing moves and every difference is view synthesis. The scene of frame t is
rendered at the right camera's pose (:meth:`p4dsim.types.Log.stereo_frame`); the ``copy``
(left image) and ``lidar_warp`` baselines predict the same view. Metrics as in the future
protocol (:mod:`p4dsim.eval.future`): PSNR, SSIM, depth AbsRel/RMSE against the LiDAR of
frame t projected into the right camera, coverage, depth consistency and the error anatomy
per region (:mod:`p4dsim.eval.regions`). Results are a :class:`FutureEval` with trajectory
``stereo`` and horizon 0, so :mod:`p4dsim.eval.report` prints and plots them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from p4dsim.eval.baselines import Prediction, copy_prediction, lidar_warp_prediction, source_depth
from p4dsim.eval.consistency import consistency_reference
from p4dsim.eval.future import METHODS, FutureEval, method_name, resize_frame
from p4dsim.eval.regions import box_masks, region_map, synthesised_mask
from p4dsim.eval.scoring import score_all
from p4dsim.perception.select import frame_with_actors
from p4dsim.render import get_renderer
from p4dsim.render.frames import render_frame
from p4dsim.scenario.actors import resolve_motions
from p4dsim.scenario.model import ActorsModel
from p4dsim.scenario.timeline import Timeline
from p4dsim.scene.builder import BuildConfig, build_scene
from p4dsim.scene.depth import project_lidar
from p4dsim.types import Log

STEREO = "stereo"


def stereo_baseline_m(log: Log, index: int) -> float:
    """Distance (m) between the two cameras of the stereo pair at frame ``index``."""
    left, right = log.frame(index).camera, log.stereo_frame(index).camera
    return float(np.linalg.norm(left.T_ego_camera[:3, 3] - right.T_ego_camera[:3, 3]))


def evaluate_stereo(
    log: Log,
    frames: Sequence[int],
    resolution: tuple[int, int] | None = None,
    device: str = "auto",
    build: BuildConfig | None = None,
    on_step: Callable[[int, int], None] | None = None,
    actor_sources: Sequence[str | None] = (None,),
) -> FutureEval:
    """Run the stereo protocol on ``log`` (which must implement ``stereo_frame``) for source
    frames ``frames`` at ``resolution`` (width, height; default the log's)."""
    renderer = get_renderer(device)
    samples: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    timings = {"build_s": 0.0, "render_s": 0.0, "baselines_s": 0.0}
    cam = None
    baselines = []
    for n_done, t in enumerate(frames):
        right = log.stereo_frame(t)
        src = log.frame(t)
        if resolution is not None:
            src, right = resize_frame(src, *resolution), resize_frame(right, *resolution)
        cam = right.camera
        baselines.append(
            float(np.linalg.norm(src.camera.T_ego_camera[:3, 3] - cam.T_ego_camera[:3, 3]))
        )
        t0 = time.perf_counter()
        framed = {a: frame_with_actors(src, log, t, a, where=f"frame {t}") for a in actor_sources}
        if None not in framed:
            framed_default = frame_with_actors(src, log, t, None, where=f"frame {t}")
        else:
            framed_default = framed[None]
        scenes = {method_name(a): build_scene(f, build or BuildConfig()) for a, f in framed.items()}
        timings["build_s"] += time.perf_counter() - t0
        ref = (
            project_lidar(src.lidar, cam)
            if src.lidar is not None
            else np.zeros((cam.height, cam.width), np.float32)
        )
        t0 = time.perf_counter()
        preds: dict[str, Prediction] = {}
        confidence = alpha = None
        for name, sc in scenes.items():
            motions = resolve_motions(ActorsModel(), sc, log, f"frame {t}")
            times = np.zeros(1)
            poses = {tid: m.poses(times) for tid, m in motions.items() if m is not None}
            fr = render_frame(sc, Timeline(times, np.eye(4)[None], poses, cam), 0, renderer)
            preds[name] = Prediction(fr.rgb, fr.depth, fr.coverage)
            if confidence is None:
                confidence, alpha = fr.confidence, fr.alpha
        timings["render_s"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        copy = copy_prediction(src, source_depth(src))
        warp = lidar_warp_prediction(src, cam.T_ego_camera, cam, fallback=copy)
        preds.update({"copy": copy, "lidar_warp": warp})
        timings["baselines_s"] += time.perf_counter() - t0
        synth = None if confidence is None else synthesised_mask(confidence, alpha)
        vehicles = box_masks(framed_default.boxes, cam)
        regions = region_map(ref, right.image, vehicles, synth)
        cref = consistency_reference(src, framed_default.boxes, cam, cam.T_ego_camera)
        for method, scores in score_all(preds, right.image, ref, cref, regions).items():
            samples.append(
                {
                    "trajectory": STEREO,
                    "method": method,
                    "t": int(t),
                    "horizon": 0,
                    "dt_s": 0.0,
                    **scores,
                }
            )
        if on_step:
            on_step(n_done + 1, len(frames))
    meta = {
        "dataset": log.dataset,
        "log_id": log.log_id,
        "protocol": STEREO,
        "frames": [int(t) for t in frames],
        "horizons": [0],
        "resolution": None if cam is None else [cam.width, cam.height],
        "baseline_m": float(np.mean(baselines)) if baselines else None,
        "trajectories": [STEREO],
        "methods": [method_name(a) for a in actor_sources] + list(METHODS[1:]),
        "renderer": f"{renderer.name} ({renderer.device_name})",
        "seconds": round(time.perf_counter() - t_start, 2),
        **{k: round(v, 2) for k, v in timings.items()},
    }
    return FutureEval(samples, meta)
