"""Actor motion models: poses of a rigid body as a vectorised function of time.

Time ``t`` is seconds relative to the source frame; poses are ``T_world_actor`` [T, 4, 4] in
the scene's world frame (origin at the source frame's ego pose, x forward, y left, z up).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from p4dsim.geometry import make_pose, quat_to_rotmat, rot_z, rotmat_to_quat, yaw_of


class Motion(ABC):
    """A rigid motion: :meth:`poses` maps times [T] to poses [T, 4, 4]."""

    @abstractmethod
    def poses(self, t: np.ndarray) -> np.ndarray: ...

    def pose(self, t: float) -> np.ndarray:
        """The pose [4, 4] at one time."""
        return self.poses(np.array([t], dtype=np.float64))[0]


@dataclass(frozen=True)
class RigidMotion(Motion):
    """The paper's rigid motion: constant turn rate and acceleration (CTRA) in the ground plane.

    T0: [4, 4] pose at t = 0 (roll and pitch kept); speed: m/s along ``course`` at t = 0;
    course: direction of travel at t = 0 (radians about z, world frame; usually the heading);
    acceleration: m/s² along the direction of travel; yaw_rate: rad/s; yaw_acceleration:
    rad/s²; vz: vertical velocity m/s. Heading and course turn together. A decelerating body
    stops when its speed reaches 0 and stays put (it does not reverse).

    Positions are integrated exactly for constant turn rate and acceleration (closed form);
    with a yaw acceleration they are integrated numerically (composite Simpson, 1 mm accurate).
    """

    T0: np.ndarray
    speed: float = 0.0
    course: float | None = None
    acceleration: float = 0.0
    yaw_rate: float = 0.0
    yaw_acceleration: float = 0.0
    vz: float = 0.0

    @classmethod
    def from_velocity(
        cls,
        T0: np.ndarray,
        velocity: np.ndarray,
        acceleration: np.ndarray | None = None,
        yaw_rate: float | None = None,
    ) -> RigidMotion:
        """From a world velocity [3] and optional world acceleration [3] (its component along
        the velocity is used as longitudinal acceleration)."""
        v = np.asarray(velocity, dtype=np.float64)
        speed = float(np.hypot(v[0], v[1]))
        course = float(np.arctan2(v[1], v[0])) if speed > 1e-6 else float(yaw_of(T0))
        acc = 0.0
        if acceleration is not None and speed > 1e-6:
            a = np.asarray(acceleration, dtype=np.float64)
            acc = float((a[0] * v[0] + a[1] * v[1]) / speed)
        return cls(
            T0=np.asarray(T0, dtype=np.float64),
            speed=speed,
            course=course,
            acceleration=acc,
            yaw_rate=float(yaw_rate or 0.0),
            vz=float(v[2]),
        )

    def _stop_time(self) -> float:
        if self.acceleration < 0 and self.speed > 0:
            return self.speed / -self.acceleration
        if self.acceleration < 0:
            return 0.0
        return np.inf

    def _heading_delta(self, tau: np.ndarray) -> np.ndarray:
        return self.yaw_rate * tau + 0.5 * self.yaw_acceleration * tau**2

    def _displacement(self, tau: np.ndarray) -> np.ndarray:
        """Planar displacement [T, 2] after moving for ``tau`` seconds (tau ≤ stop time)."""
        theta0 = self.course if self.course is not None else float(yaw_of(self.T0))
        s0, a, w = self.speed, self.acceleration, self.yaw_rate
        if self.yaw_acceleration != 0.0:
            return self._displacement_numeric(tau, theta0)
        e0 = np.exp(1j * theta0)
        if abs(w) < 1e-6:
            # Straight line; second-order correction in w keeps continuity near w = 0.
            z = s0 * tau + 0.5 * a * tau**2 + 1j * w * (s0 * tau**2 / 2 + a * tau**3 / 3)
        else:
            iw = 1j * w
            ewt = np.exp(iw * tau)
            z = ((s0 + a * tau) * ewt - s0) / iw - a * (ewt - 1.0) / iw**2
        z = e0 * z
        return np.stack([z.real, z.imag], axis=-1)

    def _displacement_numeric(self, tau: np.ndarray, theta0: float) -> np.ndarray:
        out = np.zeros((tau.shape[0], 2))
        for i, ti in enumerate(tau):
            if ti <= 0:
                continue
            n = max(64, int(np.ceil(ti * 200)) * 2)
            s = np.linspace(0.0, ti, n + 1)
            v = self.speed + self.acceleration * s
            th = theta0 + self._heading_delta(s)
            wts = np.ones(n + 1)
            wts[1:-1:2] = 4
            wts[2:-1:2] = 2
            h = ti / n
            out[i, 0] = h / 3 * np.sum(wts * v * np.cos(th))
            out[i, 1] = h / 3 * np.sum(wts * v * np.sin(th))
        return out

    def poses(self, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        tau = np.minimum(t, self._stop_time())
        # Before t = 0 the body is extrapolated backwards at its t = 0 state (no stop logic).
        tau = np.where(t < 0, t, tau)
        d = self._displacement(tau)
        dyaw = self._heading_delta(tau)
        R = rot_z(dyaw) @ self.T0[:3, :3]
        pos = self.T0[:3, 3] + np.concatenate([d, (self.vz * tau)[:, None]], axis=1)
        return make_pose(R, pos)


@dataclass(frozen=True)
class TrackMotion(Motion):
    """Follows logged poses: times [K] (s, relative to the source frame, increasing),
    T_world [K, 4, 4]. Interpolates positions linearly and rotations by slerp; outside the
    logged span it extrapolates at the velocity of the nearest two samples."""

    times: np.ndarray
    T_world: np.ndarray

    def poses(self, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        return interpolate_poses(self.times, self.T_world, t)


def _slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where(dot[:, None] < 0, -q1, q1)
    dot = np.abs(dot)
    omega = np.arccos(np.clip(dot, -1.0, 1.0))
    so = np.sin(omega)
    small = so < 1e-8
    safe = np.where(small, 1.0, so)
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * omega) / safe)
    b = np.where(small, w, np.sin(w * omega) / safe)
    q = a[:, None] * q0 + b[:, None] * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def interpolate_poses(times: np.ndarray, poses: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Poses [T, 4, 4] at times t [T] from samples (times [K] increasing, poses [K, 4, 4]).

    Linear in position, slerp in rotation; constant-velocity (and constant yaw rate)
    extrapolation beyond the ends; a single sample is held constant.
    """
    times = np.asarray(times, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if len(times) == 1:
        return np.repeat(poses[:1], len(t), axis=0)
    q = rotmat_to_quat(poses[:, :3, :3])
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    w = (t - times[i]) / (times[i + 1] - times[i])
    pos = poses[i, :3, 3] + w[:, None] * (poses[i + 1, :3, 3] - poses[i, :3, 3])
    inside = (w >= 0) & (w <= 1)
    qi = _slerp(q[i], q[i + 1], np.clip(w, 0.0, 1.0))
    R = quat_to_rotmat(qi)
    if not np.all(inside):
        # Extrapolate the rotation about z at the end segment's yaw rate.
        yaw0 = yaw_of(poses[i])
        yaw1 = yaw_of(poses[i + 1])
        dyaw = np.angle(np.exp(1j * (yaw1 - yaw0)))
        extra = np.where(w > 1, (w - 1) * dyaw, np.where(w < 0, w * dyaw, 0.0))
        end = np.where(w > 1, i + 1, i)
        R_out = rot_z(extra) @ poses[end, :3, :3]
        R = np.where(inside[:, None, None], R, R_out)
    return make_pose(R, pos)


#: half-width (s) of the central second difference behind :func:`motion_acceleration`
ACCEL_STEP_S = 0.05


def motion_acceleration(motion, times: np.ndarray) -> np.ndarray:
    """World acceleration [T, 3] m/s² of an actor's motion model at ``times`` [T]: the central
    second difference of its positions over ±:data:`ACCEL_STEP_S`, exact for motions of
    constant acceleration (brake, constant velocity) and, for a logged track, the change of
    velocity across neighbouring samples rather than a spike at each sample."""
    h = ACCEL_STEP_S
    p = motion.poses(times)[:, :3, 3]
    return (motion.poses(times + h)[:, :3, 3] - 2 * p + motion.poses(times - h)[:, :3, 3]) / h**2
