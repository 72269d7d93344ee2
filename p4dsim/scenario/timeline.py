"""A run's timeline: every pose of the ego, the camera and each actor, precomputed as a
vectorised function of time, with the ego's kinematic check and the safety metrics.

:func:`make_timeline` turns a :class:`~p4dsim.scenario.model.Scenario` and a built
:class:`~p4dsim.scene.scene4d.Scene4D` into a :class:`Timeline`; the renderer draws along it
(:mod:`p4dsim.render.frames`) and the rows are built from it (:mod:`p4dsim.io.rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.geometry import inv_pose
from p4dsim.metrics import ActorTrack, FrameMetrics, frame_metrics_batch
from p4dsim.scenario.actors import resolve_motions
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
from p4dsim.scenario.model import Scenario
from p4dsim.scene.motion import Motion, motion_acceleration
from p4dsim.scene.scene4d import Scene4D
from p4dsim.types import Camera, Log


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
    #: track id -> [T, 3] world m/s² (see :func:`p4dsim.scene.motion.motion_acceleration`)
    actor_acceleration: dict[str, np.ndarray] = field(default_factory=dict)

    def pose_array(self, track_ids: list[str], ks) -> tuple[np.ndarray, np.ndarray]:
        """T_world_actor [K, A, 4, 4] of actors ``track_ids`` at time steps ``ks`` (identity
        where an actor has no pose: removed) and whether each is present [K, A] bool."""
        ks = np.arange(len(self.times))[ks]
        poses = np.tile(np.eye(4), (len(ks), len(track_ids), 1, 1))
        present = np.zeros((len(ks), len(track_ids)), dtype=bool)
        for a, tid in enumerate(track_ids):
            P = self.actor_poses.get(tid)
            if P is not None:
                poses[:, a], present[:, a] = P[ks], True
        return poses, present

    @cached_property
    def T_world_camera(self) -> np.ndarray:
        """Camera poses [T, 4, 4] (computed once: do not modify T_world_ego afterwards)."""
        return self.T_world_ego @ self.camera.T_ego_camera


def ego_base(scenario: Scenario, scene: Scene4D, log: Log | None, where: str) -> PoseFn:
    if scenario.ego.base == "constant_velocity":
        v = scene.ego_velocity
        return constant_velocity_base(v if v is not None else np.zeros(3))
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
    return log_base(times, T_scene, smooth=scenario.ego.limits.enforce)


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
    actor_a = {tid: motion_acceleration(m, times) for tid, m in motions.items() if m is not None}
    tl = Timeline(times, T_ego, actor_poses, cam, ego_v, actor_v, kin, actor_acceleration=actor_a)
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
