"""Ego trajectories: a base path plus stacked perturbations, vectorised over time.

All poses are ``T_world_ego`` in the scene's world frame (origin at the source frame's ego
pose); times are seconds relative to the source frame.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.geometry import make_pose, rot_z
from p4dsim.scenario.model import EgoModel, LateralOffset, Profile, SpeedScale
from p4dsim.scene.motion import interpolate_poses

PoseFn = Callable[[np.ndarray], np.ndarray]

_DT = 1e-3  # s, step of the time-warp integral and of heading differentiation


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


def log_base(times_s: np.ndarray, T_world_ego: np.ndarray) -> PoseFn:
    """Base path from logged poses (already in the scene world frame)."""
    order = np.argsort(times_s)
    ts, Ts = np.asarray(times_s)[order], np.asarray(T_world_ego)[order]
    return lambda t: interpolate_poses(ts, Ts, t)


def constant_velocity_base(velocity_ego: np.ndarray) -> PoseFn:
    """Base path of an ego that keeps its source-frame velocity (ego frame = world at t=0)."""
    v = np.asarray(velocity_ego, dtype=np.float64)

    def fn(t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        return make_pose(np.broadcast_to(np.eye(3), (len(t), 3, 3)), t[:, None] * v[None, :])

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


def _positions(
    model: EgoModel, base: PoseFn, t: np.ndarray, steps: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(time-warped base poses [T, 4, 4], perturbed positions [T, 3]); ``steps=False`` leaves
    out offsets with a zero-length ramp, whose jump has no direction of travel."""
    speed = [p for p in model.perturbations if isinstance(p, SpeedScale)]
    lateral = [
        p for p in model.perturbations if isinstance(p, LateralOffset) and (steps or p.ramp_s > 0)
    ]
    poses = base(_time_warp(speed, t))
    offset = np.zeros(len(t))
    for p in lateral:
        offset += p.offset_m * ramp(t, p.start_s, p.ramp_s, p.profile)
    yaw = np.arctan2(poses[:, 1, 0], poses[:, 0, 0])
    normal = np.stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)], axis=1)
    pos = poses[:, :3, 3] + offset[:, None] * normal
    return poses, pos


def ego_poses(model: EgoModel, base: PoseFn, t: np.ndarray) -> np.ndarray:
    """Perturbed ego poses [T, 4, 4] at times t [T].

    The heading follows the perturbed path: it turns by the difference between the perturbed
    and the base direction of travel (roll and pitch of the base are kept). Where the ego
    barely moves (< 1 cm/s) the base heading is kept. An offset with a zero-length ramp is a
    jump, not a manoeuvre: it moves the ego without turning it.
    """
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    base_poses, pos = _positions(model, base, t)
    if not model.perturbations:
        return base_poses
    b_plus, p_plus = _positions(model, base, t + _DT, steps=False)
    b_minus, p_minus = _positions(model, base, t - _DT, steps=False)
    d_pert = p_plus - p_minus
    d_base = b_plus[:, :3, 3] - b_minus[:, :3, 3]
    moving = (np.hypot(d_pert[:, 0], d_pert[:, 1]) > 2 * _DT * 0.01) & (
        np.hypot(d_base[:, 0], d_base[:, 1]) > 2 * _DT * 0.01
    )
    dyaw = np.arctan2(d_pert[:, 1], d_pert[:, 0]) - np.arctan2(d_base[:, 1], d_base[:, 0])
    dyaw = np.where(moving, np.angle(np.exp(1j * dyaw)), 0.0)
    R = rot_z(dyaw) @ base_poses[:, :3, :3]
    return make_pose(R, pos)
