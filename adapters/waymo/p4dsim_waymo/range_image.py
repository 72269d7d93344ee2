"""Waymo LiDAR range images to ego-frame points, in numpy.

A range image is [H, W, C] (channel 0: range in metres, 1: intensity, 2: elongation, 3: in a
no-label zone). Row i looks along the beam inclination ``incl[i]`` (row 0 is the highest
beam); column j along the azimuth ``(1 - 2 (j + 0.5) / W) * pi - az0`` in the sensor frame,
where ``az0`` is the yaw of the LiDAR's extrinsic (so that column 0 looks backwards and the
middle column forwards in the vehicle frame). A point is
``extrinsic @ r (cos(az) cos(incl), sin(az) cos(incl), sin(incl))`` in the vehicle frame.

With a per-pixel vehicle pose (rolling-shutter compensation), each point is moved to the world
with its own pixel's pose ``T_world_vehicle(pixel)`` and back into the vehicle frame of the
frame pose: ``inv(T_world_ego) @ T_world_vehicle(pixel) @ p``.
"""

from __future__ import annotations

import numpy as np


def beam_inclinations(
    values: np.ndarray | list[float] | None,
    inclination_min: float,
    inclination_max: float,
    height: int,
) -> np.ndarray:
    """Inclination of each range-image row [H] (radians), row 0 first (the highest beam).

    ``values``: the calibration's explicit beam inclinations (ascending, one per row) or
    empty/None, in which case the rows are spread uniformly between min and max (pixel
    centres).
    """
    if values is not None and len(values) > 0:
        incl = np.asarray(values, dtype=np.float64)
    else:
        incl = inclination_min + (np.arange(height) + 0.5) / height * (
            inclination_max - inclination_min
        )
    return incl[::-1].copy()


def column_azimuths(width: int, extrinsic: np.ndarray) -> np.ndarray:
    """Azimuth of each range-image column [W] in the sensor frame (radians)."""
    az_correction = np.arctan2(extrinsic[1, 0], extrinsic[0, 0])
    ratios = (width - np.arange(width) - 0.5) / width
    return (ratios * 2.0 - 1.0) * np.pi - az_correction


def pixel_poses(pose_image: np.ndarray) -> np.ndarray:
    """Per-pixel vehicle poses [H, W, 4, 4] from a [H, W, 6] pose range image
    (roll, pitch, yaw, x, y, z; rotation Rz(yaw) Ry(pitch) Rx(roll), vehicle to world)."""
    p = np.asarray(pose_image, dtype=np.float64)
    roll, pitch, yaw = p[..., 0], p[..., 1], p[..., 2]
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    T = np.zeros(p.shape[:-1] + (4, 4))
    T[..., 0, 0] = cy * cp
    T[..., 0, 1] = cy * sp * sr - sy * cr
    T[..., 0, 2] = cy * sp * cr + sy * sr
    T[..., 1, 0] = sy * cp
    T[..., 1, 1] = sy * sp * sr + cy * cr
    T[..., 1, 2] = sy * sp * cr - cy * sr
    T[..., 2, 0] = -sp
    T[..., 2, 1] = cp * sr
    T[..., 2, 2] = cp * cr
    T[..., :3, 3] = p[..., 3:6]
    T[..., 3, 3] = 1.0
    return T


def range_image_to_points(
    ranges: np.ndarray,
    extrinsic: np.ndarray,
    inclinations: np.ndarray,
    pixel_pose: np.ndarray | None = None,
    frame_pose: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Points of a range image in the vehicle frame.

    ranges: [H, W] metres (≤ 0: no return); extrinsic: [4, 4] T_vehicle_lidar;
    inclinations: [H] per row (see :func:`beam_inclinations`); pixel_pose: [H, W, 4, 4]
    T_world_vehicle per pixel or None; frame_pose: [4, 4] T_world_ego of the frame (needed
    with pixel_pose). Returns (points [N, 3] float64 in the ego frame, row-major order of the
    valid pixels; mask [H, W] bool of the valid pixels).
    """
    ranges = np.asarray(ranges, dtype=np.float64)
    H, W = ranges.shape
    extrinsic = np.asarray(extrinsic, dtype=np.float64)
    az = column_azimuths(W, extrinsic)[None, :]
    incl = np.asarray(inclinations, dtype=np.float64)[:, None]
    mask = ranges > 0
    r = ranges[mask]
    az_b = np.broadcast_to(az, (H, W))[mask]
    incl_b = np.broadcast_to(incl, (H, W))[mask]
    cos_incl = np.cos(incl_b)
    pts = np.stack(
        [np.cos(az_b) * cos_incl * r, np.sin(az_b) * cos_incl * r, np.sin(incl_b) * r], 1
    )
    pts = pts @ extrinsic[:3, :3].T + extrinsic[:3, 3]
    if pixel_pose is not None:
        if frame_pose is None:
            raise ValueError("frame_pose is required with pixel_pose")
        P = np.asarray(pixel_pose, dtype=np.float64)[mask]
        pts = np.einsum("nij,nj->ni", P[:, :3, :3], pts) + P[:, :3, 3]
        F = np.asarray(frame_pose, dtype=np.float64)
        R = F[:3, :3]
        pts = (pts - F[:3, 3]) @ R
    return pts, mask
