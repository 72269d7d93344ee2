"""Toytown's agents in closed form: the ego's pose and velocity, every vehicle's state at
any time (:mod:`p4dsim.toytown.motion`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p4dsim.geometry import box_corners, pose_from_xyz_yaw
from p4dsim.toytown.layout import EGO_BRAKE_START, EGO_DECEL, EGO_SPEED, _Vehicle
from p4dsim.toytown.motion import braking_distance, braking_speed


@dataclass
class VehicleState:
    """One vehicle at one time, in the world frame.

    T_world_box: [4, 4] pose of the box centre (not its bottom), yaw about z; size: [3] length,
    width, height (m); velocity, acceleration: [3] world frame (m/s, m/s²); yaw_rate: rad/s.
    """

    track_id: str
    label: str
    T_world_box: np.ndarray
    size: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    yaw_rate: float


class Agents:
    """Agents' motion (mixed into :class:`~p4dsim.toytown.world.ToytownWorld`)."""

    _vehicles: list[_Vehicle]

    def ego_pose(self, t) -> np.ndarray:
        """T_world_ego [..., 4, 4] at absolute log time(s) t [...] (s). The ego frame origin is
        on the ground under the vehicle; it drives along the ego lane (y = 0, yaw 0)."""
        t = np.asarray(t, dtype=np.float64)
        s = braking_distance(t, EGO_SPEED, EGO_BRAKE_START, EGO_DECEL)
        xyz = np.stack([s, np.zeros_like(s), np.zeros_like(s)], axis=-1)
        return pose_from_xyz_yaw(xyz, np.zeros_like(s))

    def ego_velocity(self, t) -> np.ndarray:
        """Ego velocity [..., 3] at time(s) t [...], in the ego frame (m/s)."""
        t = np.asarray(t, dtype=np.float64)
        v = braking_speed(t, EGO_SPEED, EGO_BRAKE_START, EGO_DECEL)
        return np.stack([v, np.zeros_like(v), np.zeros_like(v)], axis=-1)

    def vehicles(self, t: float) -> list[VehicleState]:
        """Every vehicle's state at time t (s), in :attr:`track_ids` order."""
        out = []
        for v in self._vehicles:
            xy, yaw, vel, acc = v.motion.state(np.float64(t))
            center = np.array([xy[0], xy[1], v.size[2] / 2])
            out.append(
                VehicleState(
                    track_id=v.track_id,
                    label="vehicle",
                    T_world_box=pose_from_xyz_yaw(center, float(yaw)),
                    size=v.size.copy(),
                    velocity=np.array([vel[0], vel[1], 0.0]),
                    acceleration=np.array([acc[0], acc[1], 0.0]),
                    yaw_rate=float(v.motion.yaw_rate),
                )
            )
        return out


def vehicle_corners(state: VehicleState) -> np.ndarray:
    """The 8 world corners [8, 3] of a vehicle state's box."""
    T = state.T_world_box
    return box_corners(T[:3, 3], state.size, float(np.arctan2(T[1, 0], T[0, 0])))
