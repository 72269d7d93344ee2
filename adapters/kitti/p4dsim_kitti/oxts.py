"""OXTS (GPS/IMU) packets: parsing, poses and ego velocity.

A packet has 30 values (see KITTI's ``dataformat.txt``): lat, lon, alt, roll, pitch, yaw,
vn, ve, vf, vl, vu, ax, ay, az, af, al, au, wx, wy, wz, wf, wl, wu, pos_accuracy,
vel_accuracy, navstat, numsats, posmode, velmode, orimode. Poses follow the KITTI devkit (and
pykitti): a Mercator projection scaled by the first packet's latitude, origin at the first
position, rotation ``Rz(yaw) Ry(pitch) Rx(roll)``; the result is ``T_world_imu`` in an
east-north-up world frame, metres.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.geometry import make_pose

EARTH_RADIUS_M = 6378137.0
N_FIELDS = 30
#: column indices of the forward/left/up velocity (IMU frame, m/s)
VF, VL, VU = 8, 9, 10


#: the 30 OXTS packet fields, in file order (KITTI devkit readme)
OXTS_FIELDS = (
    "lat lon alt roll pitch yaw vn ve vf vl vu ax ay az af al au wx wy wz wf wl wu posacc "
    "velacc navstat numsats posmode velmode orimode"
).split()


def parse_oxts_lines(lines: list[str], where: str) -> np.ndarray:
    """Packets [N, 30] float64 from text lines (one packet per non-empty line)."""
    rows = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != N_FIELDS:
            raise SourceError(
                f"{where}:{lineno}: expected {N_FIELDS} OXTS values (lat lon alt roll pitch "
                f"yaw vn ve vf vl vu ...), got {len(parts)}"
            )
        try:
            vals = [float(v) for v in parts]
        except ValueError as exc:
            raise SourceError(f"{where}:{lineno}: bad OXTS value ({exc})") from None
        bad = [k for k, v in enumerate(vals) if not np.isfinite(v)]
        if bad:
            k = bad[0]
            raise SourceError(
                f"{where}:{lineno}: OXTS value {k + 1} ({OXTS_FIELDS[k]}) is {parts[k]}, not a "
                "finite number; fix or drop this packet"
            )
        rows.append(vals)
    return np.asarray(rows, dtype=np.float64).reshape(-1, N_FIELDS)


def read_oxts_file(path: Path) -> np.ndarray:
    """Packets [N, 30] of a tracking ``oxts/SSSS.txt`` (one line per frame)."""
    path = Path(path)
    return parse_oxts_lines(path.read_text().splitlines(), str(path))


def _rot(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    R = np.empty(roll.shape + (3, 3))
    R[..., 0, 0] = cy * cp
    R[..., 0, 1] = cy * sp * sr - sy * cr
    R[..., 0, 2] = cy * sp * cr + sy * sr
    R[..., 1, 0] = sy * cp
    R[..., 1, 1] = sy * sp * sr + cy * cr
    R[..., 1, 2] = sy * sp * cr - cy * sr
    R[..., 2, 0] = -sp
    R[..., 2, 1] = cp * sr
    R[..., 2, 2] = cp * cr
    return R


def oxts_poses(packets: np.ndarray) -> np.ndarray:
    """``T_world_imu`` [N, 4, 4] of packets [N, 30] (world origin at the first packet)."""
    packets = np.asarray(packets, dtype=np.float64)
    if len(packets) == 0:
        return np.zeros((0, 4, 4))
    lat, lon, alt = packets[:, 0], packets[:, 1], packets[:, 2]
    scale = np.cos(lat[0] * np.pi / 180.0)
    tx = scale * lon * np.pi * EARTH_RADIUS_M / 180.0
    ty = scale * EARTH_RADIUS_M * np.log(np.tan((90.0 + lat) * np.pi / 360.0))
    t = np.stack([tx, ty, alt], axis=1)
    t = t - t[0]
    return make_pose(_rot(packets[:, 3], packets[:, 4], packets[:, 5]), t)


def ego_velocity_velo(packets: np.ndarray, T_velo_imu: np.ndarray) -> np.ndarray:
    """Ego velocities [N, 3] in the velodyne frame (m/s): (vf, vl, vu) rotated from the IMU
    frame (which is already x forward, y left, z up)."""
    v_imu = np.asarray(packets, dtype=np.float64)[:, [VF, VL, VU]]
    return v_imu @ np.asarray(T_velo_imu)[:3, :3].T
