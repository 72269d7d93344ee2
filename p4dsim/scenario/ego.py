"""Ego trajectories: a base path plus stacked perturbations, vectorised over time.

All poses are ``T_world_ego`` in the scene's world frame (origin at the source frame's ego
pose); times are seconds relative to the source frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.geometry import make_pose, pose_from_xyz_yaw, rot_z, wrap_angle
from p4dsim.scenario.model import (
    EgoModel,
    HeightOffset,
    KinematicLimits,
    LaneChange,
    LateralOffset,
    LongitudinalOffset,
    Profile,
    SpeedScale,
    Swerve,
    YawOffset,
)
from p4dsim.scene.motion import interpolate_poses

PoseFn = Callable[[np.ndarray], np.ndarray]

_DT = 1e-3  # s, step of the time-warp integral and of heading differentiation
KIN_DT_S = 0.001  # s, step of the kinematic derivatives (yaw rate, lateral acceleration)


def ramp(t: np.ndarray, start: float, duration: float, profile: Profile) -> np.ndarray:
    """0 before ``start``, 1 after ``start + duration``, the profile's shape in between."""
    t = np.asarray(t, dtype=np.float64)
    if duration <= 0:
        return (t >= start).astype(np.float64)
    x = np.clip((t - start) / duration, 0.0, 1.0)
    if profile == "linear":
        return x
    if profile == "smoothstep":
        return x * x * (3.0 - 2.0 * x)
    if profile == "cosine":
        return 0.5 - 0.5 * np.cos(np.pi * x)
    raise ConfigError(f"unknown ramp profile '{profile}' (use linear, smoothstep or cosine)")


def log_base(times_s: np.ndarray, T_world_ego: np.ndarray, smooth: bool = False) -> PoseFn:
    """Base path from logged poses (already in the scene world frame): positions linear
    between the samples, or with ``smooth`` C¹ (:func:`hermite`, so the speed has no jumps
    and a lateral offset on it turns the heading at a bounded rate; used with enforced
    limits); rotations slerped."""
    order = np.argsort(times_s)
    ts, Ts = np.asarray(times_s)[order], np.asarray(T_world_ego)[order]
    if not smooth or len(ts) < 2:
        return lambda t: interpolate_poses(ts, Ts, t)

    def fn(t: np.ndarray) -> np.ndarray:
        out = interpolate_poses(ts, Ts, t)
        out[:, :3, 3] = hermite(ts, Ts[:, :3, 3], np.atleast_1d(t))
        return out

    return fn


def constant_velocity_base(velocity_ego: np.ndarray) -> PoseFn:
    """Base path of an ego that keeps its source-frame velocity (ego frame = world at t=0)."""
    v = np.asarray(velocity_ego, dtype=np.float64)

    def fn(t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        return make_pose(np.broadcast_to(np.eye(3), (len(t), 3, 3)), t[:, None] * v[None, :])

    return fn


def stationary_base() -> PoseFn:
    """Base path of an ego that stands still at the source pose (the world origin)."""
    return constant_velocity_base(np.zeros(3))


def hermite(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """C¹ cubic Hermite interpolation of ``values`` [K, D] at times [K] (increasing) -> [T, D].

    Node slopes are the weighted three-point derivative, so data on a straight line (constant
    rate) is reproduced exactly; beyond the ends the curve continues at its end slope.
    """
    ts = np.asarray(times, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64).reshape(len(ts), -1)
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    h = np.diff(ts)
    s = np.diff(y, axis=0) / h[:, None]
    d = np.empty_like(y)
    d[0], d[-1] = s[0], s[-1]
    if len(ts) > 2:
        d[1:-1] = (h[:-1, None] * s[1:] + h[1:, None] * s[:-1]) / (h[:-1] + h[1:])[:, None]
    i = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2)
    hi = h[i][:, None]
    x = ((t - ts[i]) / h[i])[:, None]
    xc = np.clip(x, 0.0, 1.0)
    h00 = 2 * xc**3 - 3 * xc**2 + 1
    h10 = xc**3 - 2 * xc**2 + xc
    h01 = -2 * xc**3 + 3 * xc**2
    h11 = xc**3 - xc**2
    out = h00 * y[i] + h10 * hi * d[i] + h01 * y[i + 1] + h11 * hi * d[i + 1]
    before, after = t < ts[0], t > ts[-1]
    out[before] = y[0] + (t[before] - ts[0])[:, None] * d[0]
    out[after] = y[-1] + (t[after] - ts[-1])[:, None] * d[-1]
    return out


def waypoints_base(points: list) -> PoseFn:
    """Base path through [[t, x, y, yaw_deg], ...] (scene world frame, on the ground z = 0):
    C¹ Hermite in x, y and the unwrapped yaw (see :func:`hermite`)."""
    p = np.asarray(points, dtype=np.float64)
    ts = p[:, 0]
    yaw = np.unwrap(np.deg2rad(p[:, 3]))
    vals = np.stack([p[:, 1], p[:, 2], yaw], axis=1)

    def fn(t: np.ndarray) -> np.ndarray:
        v = hermite(ts, vals, t)
        xyz = np.stack([v[:, 0], v[:, 1], np.zeros(len(v))], axis=1)
        return pose_from_xyz_yaw(xyz, v[:, 2])

    return fn


def _time_warp(perts: list[SpeedScale], t: np.ndarray) -> np.ndarray:
    """u(t) = ∫₀ᵗ Π_i (1 + (scale_i - 1) ramp_i(τ)) dτ (negative t mirrored)."""
    if not perts:
        return t
    tmax = float(np.max(np.abs(t))) if len(t) else 0.0
    grid = np.arange(0.0, tmax + 2 * _DT, _DT)
    factor = np.ones_like(grid)
    for p in perts:
        factor *= 1.0 + (p.scale - 1.0) * ramp(grid, p.start_s, p.ramp_s, p.profile)
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (factor[1:] + factor[:-1]) * _DT)])
    return np.sign(t) * np.interp(np.abs(t), grid, integral)


def swerve_offset(p: Swerve, t: np.ndarray, taper: bool = False) -> np.ndarray:
    """Lateral offset [T] (m) of a swerve: amplitude · envelope · sin(2π (t - start) / period).

    The envelope ramps in over ``ramp_s`` from ``start_s``; with ``taper`` (enforced limits) a
    swerve of ``cycles`` periods also ramps out over the last ``ramp_s`` before its end, so it
    ends without a kink (a sinusoid cut at a zero crossing still has its full slope there).
    """
    phase = (t - p.start_s) / p.period_s
    end = np.inf if p.cycles is None else p.cycles
    on = (phase >= 0) & (phase <= end)
    env = ramp(t, p.start_s, p.ramp_s, p.profile)
    if taper and p.cycles is not None and p.ramp_s > 0:
        stop = p.start_s + p.cycles * p.period_s
        env = env * (1.0 - ramp(t, stop - p.ramp_s, p.ramp_s, p.profile))
    return np.where(on, p.amplitude_m * env * np.sin(2 * np.pi * phase), 0.0)


def lateral_offset(model: EgoModel, t: np.ndarray, steps: bool = False) -> np.ndarray:
    """The lateral offset [T] (m, positive = left) of every lateral perturbation together;
    ``steps=False`` leaves out offsets with a zero-length ramp (camera jumps)."""
    return _offsets(model, np.atleast_1d(np.asarray(t, dtype=np.float64)), steps)[0]


def _offsets(model: EgoModel, t: np.ndarray, steps: bool) -> tuple[np.ndarray, ...]:
    """Lateral, longitudinal and vertical offsets [T] (m); ``steps=False`` leaves out offsets
    with a zero-length ramp."""
    taper = model.limits.enforce
    lat, lon, up = np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t))
    for p in model.perturbations:
        if isinstance(p, LateralOffset | LongitudinalOffset | HeightOffset):
            if not steps and p.ramp_s <= 0:
                continue
            r = p.offset_m * ramp(t, p.start_s, p.ramp_s, p.profile)
            if isinstance(p, LateralOffset):
                lat += r
            elif isinstance(p, LongitudinalOffset):
                lon += r
            else:
                up += r
        elif isinstance(p, Swerve):
            lat += swerve_offset(p, t, taper)
        elif isinstance(p, LaneChange):
            lat += p.width_m * ramp(t, p.start_s, p.duration_s, p.profile)
    return lat, lon, up


def _positions(
    model: EgoModel, base: PoseFn, t: np.ndarray, steps: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(time-warped base poses [T, 4, 4], perturbed positions [T, 3]); ``steps=False`` leaves
    out offsets with a zero-length ramp, whose jump has no direction of travel."""
    speed = [p for p in model.perturbations if isinstance(p, SpeedScale)]
    poses = base(_time_warp(speed, t))
    lat, lon, up = _offsets(model, t, steps)
    yaw = np.arctan2(poses[:, 1, 0], poses[:, 0, 0])
    normal = np.stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)], axis=1)
    tangent = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], axis=1)
    pos = poses[:, :3, 3] + lat[:, None] * normal + lon[:, None] * tangent
    pos[:, 2] += up
    return poses, pos


def yaw_offset(model: EgoModel, t: np.ndarray) -> np.ndarray:
    """Sum of the ``yaw_offset`` perturbations [T] (radians)."""
    out = np.zeros(len(t))
    for p in model.perturbations:
        if isinstance(p, YawOffset):
            out += np.deg2rad(p.offset_deg) * ramp(t, p.start_s, p.ramp_s, p.profile)
    return out


def _path_heading(
    model: EgoModel, base: PoseFn, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(time-warped base poses [T, 4, 4], perturbed positions [T, 3], heading of the perturbed
    path relative to the base [T] (rad), speed of the perturbed path [T] (m/s)).

    The relative heading is the angle between the perturbed and the base direction of travel
    (central differences of the path without its step offsets, 1 ms); 0 where either moves
    slower than 1 cm/s.
    """
    base_poses, pos = _positions(model, base, t)
    if not model.perturbations:
        d = (base(t + _DT)[:, :3, 3] - base(t - _DT)[:, :3, 3])[:, :2]
        return base_poses, pos, np.zeros(len(t)), np.hypot(d[:, 0], d[:, 1]) / (2 * _DT)
    b_plus, p_plus = _positions(model, base, t + _DT, steps=False)
    b_minus, p_minus = _positions(model, base, t - _DT, steps=False)
    d_pert = p_plus - p_minus
    d_base = b_plus[:, :3, 3] - b_minus[:, :3, 3]
    moving = (np.hypot(d_pert[:, 0], d_pert[:, 1]) > 2 * _DT * 0.01) & (
        np.hypot(d_base[:, 0], d_base[:, 1]) > 2 * _DT * 0.01
    )
    dyaw = np.arctan2(d_pert[:, 1], d_pert[:, 0]) - np.arctan2(d_base[:, 1], d_base[:, 0])
    dyaw = np.where(moving, np.angle(np.exp(1j * dyaw)), 0.0)
    speed = np.hypot(d_pert[:, 0], d_pert[:, 1]) / (2 * _DT)
    return base_poses, pos, dyaw, speed


def ego_poses(model: EgoModel, base: PoseFn, t: np.ndarray) -> np.ndarray:
    """Perturbed ego poses [T, 4, 4] at times t [T].

    The heading follows the perturbed path: it turns by the difference between the perturbed
    and the base direction of travel (roll and pitch of the base are kept), plus any
    ``yaw_offset``. Where the ego barely moves (< 1 cm/s) the base heading is kept. An offset
    with a zero-length ramp is a jump, not a manoeuvre: it moves the ego without turning it.
    With ``limits.enforce`` the perturbations are checked to keep this heading within the
    limits before anything is rendered (:mod:`p4dsim.scenario.drivable`).
    """
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    base_poses, pos, dyaw, _ = _path_heading(model, base, t)
    if not model.perturbations:
        return base_poses
    R = rot_z(dyaw + yaw_offset(model, t)) @ base_poses[:, :3, :3]
    return make_pose(R, pos)


@dataclass
class Kinematics:
    """Ego kinematics at the render times: speed [T] m/s, lateral_accel [T] m/s² (positive =
    towards the left), yaw_rate [T] rad/s, warning [T] (None or a description of every limit
    the ego exceeds at that time), heading_deviation [T] rad (heading of the perturbed path
    relative to the base path, without ``yaw_offset``)."""

    speed: np.ndarray
    lateral_accel: np.ndarray
    yaw_rate: np.ndarray
    warning: list[str | None]
    heading_deviation: np.ndarray | None = None


def _headings(model: EgoModel, base: PoseFn, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """(heading of the ego [T], heading of its path [T] (both rad, unwrapped against the
    base yaw), relative path heading [T], path speed [T] m/s)."""
    base_poses, _, dyaw, speed = _path_heading(model, base, t)
    path = np.arctan2(base_poses[:, 1, 0], base_poses[:, 0, 0]) + dyaw
    return path + yaw_offset(model, t), path, dyaw, speed


def ego_kinematics(
    model: EgoModel, base: PoseFn, t: np.ndarray, limits: KinematicLimits | None = None
) -> Kinematics:
    """Speed, lateral acceleration and yaw rate of the ego at times t [T].

    The yaw rate is the rate of the ego's heading (base heading + relative path heading +
    ``yaw_offset``); the lateral acceleration is speed × the turn rate of the path's direction
    of travel (curvature × speed², the centripetal part); both are central differences over
    ±1 ms of the path without its step offsets. Exceeding ``limits`` (default:
    ``model.limits``) fills ``warning``; nothing is clipped here (with ``limits.enforce`` the
    perturbations were refused before rendering when they exceed the limits).
    """
    limits = limits or model.limits
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    h = KIN_DT_S
    ego_m, path_m, _, _ = _headings(model, base, t - h)
    ego_p, path_p, _, _ = _headings(model, base, t + h)
    _, _, dev, speed = _headings(model, base, t)
    yaw_rate = wrap_angle(ego_p - ego_m) / (2 * h)
    lat = speed * wrap_angle(path_p - path_m) / (2 * h)
    warnings: list[str | None] = []
    for la, yr in zip(lat, yaw_rate, strict=True):
        msgs = []
        if abs(la) > limits.lateral_accel_mps2:
            msgs.append(f"lateral acceleration {abs(la):.2f} m/s² > {limits.lateral_accel_mps2:g}")
        if abs(np.rad2deg(yr)) > limits.yaw_rate_dps:
            msgs.append(f"yaw rate {abs(np.rad2deg(yr)):.1f} °/s > {limits.yaw_rate_dps:g}")
        warnings.append("; ".join(msgs) or None)
    return Kinematics(speed, lat, yaw_rate, warnings, dev)
