"""Closed-form motion of toytown's agents (ego and vehicles), exact at any time.

Three models, all planar (z fixed) and evaluated analytically:

* **constant velocity** (speed 0: parked);
* **braking**: constant speed ``v0`` until ``brake_start``, then constant deceleration
  ``decel`` until standstill, then stopped;
* **constant turn**: constant speed and constant yaw rate (a circular arc).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def braking_distance(t: np.ndarray, v0: float, brake_start: float, decel: float) -> np.ndarray:
    """Distance travelled [...] (m) at times t [...] (s) by an agent at ``v0`` m/s that brakes
    with ``decel`` m/s² from ``brake_start`` s until it stops (negative t extrapolates back at
    constant speed)."""
    t = np.asarray(t, dtype=np.float64)
    if decel <= 0.0 or v0 <= 0.0:
        return v0 * t
    tau = np.clip(t - brake_start, 0.0, v0 / decel)
    return v0 * np.minimum(t, brake_start) + v0 * tau - 0.5 * decel * tau**2


def braking_speed(t: np.ndarray, v0: float, brake_start: float, decel: float) -> np.ndarray:
    """Speed [...] (m/s) of the braking model at times t [...]."""
    t = np.asarray(t, dtype=np.float64)
    if decel <= 0.0 or v0 <= 0.0:
        return np.full(t.shape, float(v0))
    tau = np.clip(t - brake_start, 0.0, v0 / decel)
    return v0 - decel * tau


def braking_accel(t: np.ndarray, v0: float, brake_start: float, decel: float) -> np.ndarray:
    """Longitudinal acceleration [...] (m/s², negative while braking) of the braking model."""
    t = np.asarray(t, dtype=np.float64)
    if decel <= 0.0 or v0 <= 0.0:
        return np.zeros(t.shape)
    active = (t >= brake_start) & (t < brake_start + v0 / decel)
    return np.where(active, -decel, 0.0)


@dataclass(frozen=True)
class PlanarMotion:
    """One agent's motion on the ground plane.

    x0, y0: position at t = 0 (m, world); yaw0: heading at t = 0 (rad); speed: m/s along the
    heading (0: stationary); yaw_rate: rad/s (constant-turn model when non-zero);
    brake_start, decel: braking model when ``decel > 0`` (s, m/s²).
    """

    x0: float
    y0: float
    yaw0: float
    speed: float
    yaw_rate: float = 0.0
    brake_start: float = 0.0
    decel: float = 0.0

    def state(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """At times t [...]: position xy [..., 2], yaw [...], velocity [..., 2] and
        acceleration [..., 2], all in the world frame (m, rad, m/s, m/s²)."""
        t = np.asarray(t, dtype=np.float64)
        v = self.speed
        if self.yaw_rate != 0.0:
            w = self.yaw_rate
            yaw = self.yaw0 + w * t
            x = self.x0 + v / w * (np.sin(yaw) - np.sin(self.yaw0))
            y = self.y0 - v / w * (np.cos(yaw) - np.cos(self.yaw0))
            heading = np.stack([np.cos(yaw), np.sin(yaw)], axis=-1)
            normal = np.stack([-np.sin(yaw), np.cos(yaw)], axis=-1)
            vel = v * heading
            acc = v * w * normal
            return np.stack([x, y], axis=-1), yaw, vel, acc
        heading = np.array([np.cos(self.yaw0), np.sin(self.yaw0)])
        s = braking_distance(t, v, self.brake_start, self.decel)
        sp = braking_speed(t, v, self.brake_start, self.decel)
        ac = braking_accel(t, v, self.brake_start, self.decel)
        xy = np.array([self.x0, self.y0]) + s[..., None] * heading
        yaw = np.full(t.shape, self.yaw0)
        return xy, yaw, sp[..., None] * heading, ac[..., None] * heading
