"""Lateral camera jumps: depth consistency of views no log has (``p4dsim eval consistency``).

The scene of frame t is rendered from the source camera moved sideways by d metres (heading
unchanged, at the source instant) and its depth compared with frame t's static LiDAR
reprojected there (:mod:`p4dsim.eval.consistency`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from p4dsim.eval.consistency import (
    consistency_absrel,
    consistency_reference,
    jump_pose,
    static_points,
)
from p4dsim.eval.future import FutureEval, _Frames, method_name
from p4dsim.eval.regions import box_masks, region_map, region_scores, synthesised_mask
from p4dsim.perception.select import frame_with_actors
from p4dsim.render import get_renderer
from p4dsim.render.frames import render_frame
from p4dsim.scenario.actors import resolve_motions
from p4dsim.scenario.model import ActorsModel
from p4dsim.scenario.timeline import Timeline
from p4dsim.scene.builder import BuildConfig, build_scene
from p4dsim.types import Log

JUMP = "lateral_jump"


def evaluate_jumps(
    log: Log,
    frames: Sequence[int],
    jumps: Sequence[float],
    resolution: tuple[int, int] | None = None,
    device: str = "auto",
    build: BuildConfig | None = None,
    on_step: Callable[[int, int], None] | None = None,
    actor_sources: Sequence[str | None] = (None,),
) -> FutureEval:
    """Depth consistency of lateral camera jumps: for every source frame t and jump d (metres,
    positive = left), the scene of frame t rendered from the source camera moved by d, at the
    source instant, against frame t's static LiDAR reprojected there. Samples carry
    ``consistency`` (AbsRel), ``coverage``, ``empty`` (share of pixels with alpha < 0.5),
    ``camera_in_vehicle`` (the moved camera lies inside a road user's box) and the error
    anatomy (``regions``; no sky class: the novel view has no image). Trajectory
    ``lateral_jump``; ``horizon`` holds the jump in metres."""
    renderer = get_renderer(device)
    cache = _Frames(log, resolution)
    samples: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    cam = None
    for n_done, t in enumerate(frames):
        cache.forget_before(t)
        src = cache.get(t)
        cam = src.camera
        framed = {a: frame_with_actors(src, log, t, a, where=f"frame {t}") for a in actor_sources}
        ref_boxes = (
            framed[None].boxes
            if None in framed
            else frame_with_actors(src, log, t, None, where=f"frame {t}").boxes
        )
        scenes = {method_name(a): build_scene(f, build or BuildConfig()) for a, f in framed.items()}
        T_ego = np.stack([jump_pose(d) for d in jumps])
        refs = [consistency_reference(src, ref_boxes, cam, T @ cam.T_ego_camera) for T in T_ego]
        vehicles = [box_masks(ref_boxes, cam, T @ cam.T_ego_camera) for T in T_ego]
        # a jump can put the camera inside a neighbouring vehicle: flagged, still scored
        inside = [
            bool(len(static_points((T @ cam.T_ego_camera)[None, :3, 3], ref_boxes, 0.0)) == 0)
            for T in T_ego
        ]
        synth: list[np.ndarray] = []
        for name, sc in scenes.items():
            motions = resolve_motions(ActorsModel(), sc, log, f"frame {t}")
            times = np.zeros(len(jumps))
            poses = {tid: m.poses(times) for tid, m in motions.items() if m is not None}
            tl = Timeline(times, T_ego, poses, sc.camera)
            for i, d in enumerate(jumps):
                fr = render_frame(sc, tl, i, renderer)
                if len(synth) <= i:  # the first (default) scene defines the synthesised class
                    synth.append(synthesised_mask(fr.confidence, fr.alpha))
                regions = region_map(refs[i], None, vehicles[i], synth[i])
                samples.append(
                    {
                        "trajectory": JUMP,
                        "method": name,
                        "t": int(t),
                        "horizon": float(d),
                        "dt_s": 0.0,
                        "consistency": consistency_absrel(fr.depth, refs[i]),
                        "coverage": fr.coverage,
                        "empty": float(np.mean(fr.alpha < 0.5)),
                        "camera_in_vehicle": inside[i],
                        "regions": region_scores(regions, None, fr.depth, None, None, refs[i]),
                    }
                )
        if on_step:
            on_step(n_done + 1, len(frames))
    meta = {
        "dataset": log.dataset,
        "log_id": log.log_id,
        "protocol": JUMP,
        "frames": [int(t) for t in frames],
        "horizons": [float(d) for d in jumps],
        "resolution": None if cam is None else [cam.width, cam.height],
        "trajectories": [JUMP],
        "methods": [method_name(a) for a in actor_sources],
        "renderer": f"{renderer.name} ({renderer.device_name})",
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    return FutureEval(samples, meta)
