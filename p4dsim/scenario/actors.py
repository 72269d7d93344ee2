"""Resolving a scenario's actor rules into one motion per actor.

Every behaviour is a :class:`~p4dsim.scene.motion.Motion` in the scene's world frame; the
rigid ones are :class:`~p4dsim.scene.motion.RigidMotion` (constant turn rate and
acceleration, integrated exactly) started from the actor's state at the source frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.geometry import inv_pose, make_pose, pose_from_xyz_yaw, rot_z, yaw_of
from p4dsim.scenario.ego import hermite, ramp
from p4dsim.scenario.model import (
    ActorRule,
    ActorSelect,
    ActorsModel,
    Behaviour,
    BrakeBehaviour,
    ConstantAccelerationBehaviour,
    ConstantVelocityBehaviour,
    CutInBehaviour,
    LogBehaviour,
    Profile,
    RemoveBehaviour,
    Scenario,
    ShiftBehaviour,
    StopBehaviour,
    WaypointsBehaviour,
)
from p4dsim.scene.motion import Motion, RigidMotion, TrackMotion
from p4dsim.scene.scene4d import Actor, Scene4D
from p4dsim.types import Log


def _matches(sel: ActorSelect, actor: Actor, distance: float) -> bool:
    if sel.track_id is not None and actor.track_id != sel.track_id:
        return False
    if sel.track_ids is not None and actor.track_id not in sel.track_ids:
        return False
    if sel.label is not None and actor.label != sel.label:
        return False
    if sel.distance_m is not None and not (sel.distance_m[0] <= distance <= sel.distance_m[1]):
        return False
    return True


def _named_track_ids(rule: ActorRule) -> list[str]:
    sel = rule.select
    return ([sel.track_id] if sel.track_id else []) + list(sel.track_ids or [])


def check_rules(model: ActorsModel, scene: Scene4D, where: str) -> None:
    """Every track id a rule names must exist in the scene."""
    known = [a.track_id for a in scene.actors]
    for i, rule in enumerate(model.rules):
        for tid in _named_track_ids(rule):
            if tid not in known:
                raise ConfigError(
                    f"{where}: field 'actors.rules[{i}].select': track id '{tid}' does not exist in "
                    f"the source frame; its actors are: {', '.join(known) or 'none'}"
                )


def check_track_ids(
    scenarios: Sequence[Scenario], log: Log | Callable[[], Log], where: str
) -> None:
    """Every track id the actor rules of ``scenarios`` name must exist in the log's tracks,
    when the log has tracks (:func:`check_rules` checks them again against the source
    frame's actors once the scene is built). ``log``: the log, or a function that opens it
    (called only when some rule names a track)."""
    named = {
        (i, tid)
        for sc in scenarios
        for i, r in enumerate(sc.actors.rules)
        for tid in _named_track_ids(r)
    }
    if not named:
        return
    known = (log if isinstance(log, Log) else log()).tracks()
    if not known:
        return
    for i, tid in sorted(named):
        if tid not in known:
            raise ConfigError(
                f"{where}: field 'actors.rules[{i}].select': track id '{tid}' does not "
                f"exist in the source log; its tracks are: {', '.join(sorted(known))}"
            )


def behaviour_for(model: ActorsModel, actor: Actor, distance: float) -> Behaviour:
    chosen = model.default
    for rule in model.rules:
        if _matches(rule.select, actor, distance):
            chosen = rule.behaviour
    return chosen


def log_motion(scene: Scene4D, log: Log | None, actor: Actor) -> Motion:
    """The actor's logged track in the scene frame, or its box-velocity motion without one."""
    tracks = log.tracks() if log is not None else {}
    tr = tracks.get(actor.track_id)
    if tr is None or len(tr.timestamps_us) == 0:
        return actor.motion
    times = (np.asarray(tr.timestamps_us, dtype=np.int64) - scene.timestamp_us) / 1e6
    T_scene = inv_pose(scene.T_log_scene) @ np.asarray(tr.T_world_box, dtype=np.float64)
    return TrackMotion(times=times, T_world=T_scene)


@dataclass(frozen=True)
class SwitchMotion(Motion):
    """``before`` until ``start`` (s), then ``after`` with its own clock starting at ``start``."""

    before: Motion
    after: Motion
    start: float

    def poses(self, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        out = self.before.poses(np.minimum(t, self.start))
        late = t > self.start
        if np.any(late):
            out[late] = self.after.poses(t[late] - self.start)
        return out


@dataclass(frozen=True)
class OffsetMotion(Motion):
    """``base`` moved by a constant world offset [3] (m)."""

    base: Motion
    offset: np.ndarray

    def poses(self, t: np.ndarray) -> np.ndarray:
        out = self.base.poses(t).copy()
        out[:, :3, 3] += np.asarray(self.offset, dtype=np.float64)
        return out


@dataclass(frozen=True)
class LateralMoveMotion(Motion):
    """``base`` (a straight or curved path) plus a sideways move of ``shift_m`` along the
    path's left normal, ramped in from ``start`` over ``duration`` with ``profile``. The
    heading follows the moved path (base heading + atan(lateral rate / speed))."""

    base: Motion
    shift_m: float
    start: float
    duration: float
    profile: Profile

    def _positions(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        P = self.base.poses(t)
        yaw = yaw_of(P)
        n = np.stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)], axis=1)
        s = self.shift_m * ramp(t, self.start, self.duration, self.profile)
        return P, P[:, :3, 3] + s[:, None] * n

    def poses(self, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        h = 1e-4
        P, pos = self._positions(t)
        Pp, pp = self._positions(t + h)
        Pm, pm = self._positions(t - h)
        d_new, d_base = pp - pm, Pp[:, :3, 3] - Pm[:, :3, 3]
        moving = (np.hypot(d_new[:, 0], d_new[:, 1]) > 2 * h * 0.01) & (
            np.hypot(d_base[:, 0], d_base[:, 1]) > 2 * h * 0.01
        )
        dyaw = np.arctan2(d_new[:, 1], d_new[:, 0]) - np.arctan2(d_base[:, 1], d_base[:, 0])
        dyaw = np.where(moving, np.angle(np.exp(1j * dyaw)), 0.0)
        return make_pose(rot_z(dyaw) @ P[:, :3, :3], pos)


@dataclass(frozen=True)
class WaypointMotion(Motion):
    """Through ``points`` [K, 4] = (t, x, y, yaw_deg) (C¹ Hermite in x, y and unwrapped yaw,
    constant rates beyond the ends) at a fixed box-centre height ``z`` (m)."""

    points: np.ndarray
    z: float

    def poses(self, t: np.ndarray) -> np.ndarray:
        p = np.asarray(self.points, dtype=np.float64)
        vals = np.stack([p[:, 1], p[:, 2], np.unwrap(np.deg2rad(p[:, 3]))], axis=1)
        v = hermite(p[:, 0], vals, t)
        xyz = np.stack([v[:, 0], v[:, 1], np.full(len(v), self.z)], axis=1)
        return pose_from_xyz_yaw(xyz, v[:, 2])


def rigid_state(motion: Motion) -> RigidMotion:
    """The actor's motion as a :class:`RigidMotion` at t = 0 (itself when it is one; else
    speed, course and yaw rate from 10 ms central differences)."""
    if isinstance(motion, RigidMotion):
        return motion
    h = 0.01
    P = motion.poses(np.array([-h, 0.0, h]))
    v = (P[2, :3, 3] - P[0, :3, 3]) / (2 * h)
    dyaw = float(np.angle(np.exp(1j * (yaw_of(P[2]) - yaw_of(P[0])))))
    return RigidMotion.from_velocity(P[1], v, None, dyaw / (2 * h))


def _course_at(m: RigidMotion, t: float) -> float:
    course = m.course if m.course is not None else float(yaw_of(m.T0))
    return course + m.yaw_rate * t + 0.5 * m.yaw_acceleration * t**2


def _speed_at(m: RigidMotion, t: float) -> float:
    return max(m.speed + m.acceleration * min(t, m._stop_time()), 0.0)


def behaviour_motion(b: Behaviour, scene: Scene4D, log: Log | None, actor: Actor) -> Motion | None:
    """The motion one behaviour gives ``actor`` (None: removed)."""
    if isinstance(b, RemoveBehaviour):
        return None
    if isinstance(b, LogBehaviour):
        return log_motion(scene, log, actor)
    cv = rigid_state(actor.motion)
    if isinstance(b, ConstantVelocityBehaviour):
        return cv
    if isinstance(b, ConstantAccelerationBehaviour):
        return RigidMotion(
            T0=cv.T0,
            speed=cv.speed,
            course=cv.course,
            acceleration=b.acceleration_mps2,
            yaw_rate=np.deg2rad(b.yaw_rate_dps),
            vz=cv.vz,
        )
    if isinstance(b, BrakeBehaviour | StopBehaviour):
        T_start = cv.pose(b.start_s)
        after = RigidMotion(
            T0=T_start,
            speed=_speed_at(cv, b.start_s) if isinstance(b, BrakeBehaviour) else 0.0,
            course=_course_at(cv, b.start_s),
            acceleration=-b.deceleration_mps2 if isinstance(b, BrakeBehaviour) else 0.0,
        )
        return SwitchMotion(cv, after, b.start_s)
    if isinstance(b, CutInBehaviour):
        p0 = cv.T0[:3, 3]
        c = _course_at(cv, 0.0)
        normal = np.array([-np.sin(c), np.cos(c), 0.0])
        target = np.array([0.0, b.lane_offset_m, p0[2]])
        shift = float((target - p0) @ normal)
        return LateralMoveMotion(cv, shift, b.start_s, b.duration_s, b.profile)
    if isinstance(b, WaypointsBehaviour):
        return WaypointMotion(np.asarray(b.points, dtype=np.float64), float(cv.T0[2, 3]))
    if isinstance(b, ShiftBehaviour):
        inner = log_motion(scene, log, actor) if b.base == "log" else cv
        return OffsetMotion(inner, np.asarray(b.offset_m, dtype=np.float64))
    raise ConfigError(f"unsupported actor behaviour {b!r}")  # pragma: no cover


def resolve_motions(
    model: ActorsModel, scene: Scene4D, log: Log | None, where: str
) -> dict[str, Motion | None]:
    """track id -> motion (None: the actor is removed)."""
    check_rules(model, scene, where)
    out: dict[str, Motion | None] = {}
    for actor in scene.actors:
        p = actor.motion.pose(0.0)[:3, 3]
        distance = float(np.hypot(p[0], p[1]))
        b = behaviour_for(model, actor, distance)
        out[actor.track_id] = behaviour_motion(b, scene, log, actor)
    return out
