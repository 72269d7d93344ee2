"""KITTI calibration: parsing and conversion into p4dsim cameras.

Frames involved (all metres):

* ``velo``: the velodyne frame, p4dsim's ego frame for KITTI (x forward, y left, z up);
* ``cam0``: the unrectified reference camera; ``Tr_velo_to_cam`` maps velo -> cam0;
* ``rect0``: the rectified reference camera, ``R0_rect @ cam0``; KITTI's 3D labels live here;
* ``rect2``: the rectified left colour camera (``image_02``): same axes as ``rect0``, shifted by
  the baseline folded into ``P2 = K2 @ [I | t2]``, so ``t2 = K2^-1 @ P2[:, 3]``.

Pixel coordinates: KITTI puts pixel centres at integer coordinates, p4dsim at integer + 0.5
(see :mod:`p4dsim.types`); :func:`kitti_to_p4dsim_pixels` and its inverse convert between them
(a shift of half a pixel in u and v; intrinsics shift their principal point alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.types import Camera

#: p4dsim pixel coordinate = KITTI pixel coordinate + PIXEL_OFFSET (u and v)
PIXEL_OFFSET = 0.5

_ALIASES = {
    "R0_rect": ("R0_rect", "R_rect", "R_rect_00"),
    "Tr_velo_to_cam": ("Tr_velo_to_cam", "Tr_velo_cam"),
    "Tr_imu_to_velo": ("Tr_imu_to_velo", "Tr_imu_velo"),
}


def kitti_to_p4dsim_K(K: np.ndarray) -> np.ndarray:
    """Intrinsics [3, 3] in KITTI's pixel convention -> p4dsim's (principal point + 0.5 px)."""
    K = np.array(K, dtype=np.float64)
    K[0, 2] += PIXEL_OFFSET
    K[1, 2] += PIXEL_OFFSET
    return K


def p4dsim_to_kitti_K(K: np.ndarray) -> np.ndarray:
    """Inverse of :func:`kitti_to_p4dsim_K`."""
    K = np.array(K, dtype=np.float64)
    K[0, 2] -= PIXEL_OFFSET
    K[1, 2] -= PIXEL_OFFSET
    return K


def kitti_to_p4dsim_pixels(box: np.ndarray) -> np.ndarray:
    """A 2D box or points [..., 2k] (u, v, u, v, ...) from KITTI pixels to p4dsim pixels."""
    return np.asarray(box, dtype=np.float64) + PIXEL_OFFSET


def p4dsim_to_kitti_pixels(box: np.ndarray) -> np.ndarray:
    """Inverse of :func:`kitti_to_p4dsim_pixels`."""
    return np.asarray(box, dtype=np.float64) - PIXEL_OFFSET


def read_calib_file(path: Path) -> dict[str, np.ndarray]:
    """Parse a KITTI calibration text file: ``key: v v v`` or ``key v v v`` per line.

    Lines whose values are not numbers (e.g. ``calib_time``) are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"KITTI calibration file {path} does not exist")
    out: dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        if ":" in line.split()[0]:
            key, _, rest = line.partition(":")
        else:
            key, _, rest = line.partition(" ")
        try:
            out[key.strip()] = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            continue
    if not out:
        raise SourceError(f"{path}: no calibration entries found (expected lines 'P2: ...')")
    return out


def _pose34(values: np.ndarray, where: str) -> np.ndarray:
    if values.size != 12:
        raise SourceError(f"{where}: expected 12 numbers (a 3x4 matrix), got {values.size}")
    T = np.eye(4)
    T[:3, :] = values.reshape(3, 4)
    return T


@dataclass(frozen=True)
class KittiCalib:
    """Calibration of one KITTI sequence or frame.

    P2: [3, 4] projection of rectified camera 2 (KITTI pixel convention), from rect0 points;
    R0_rect: [3, 3] rectifying rotation cam0 -> rect0; T_cam0_velo: [4, 4] velo -> cam0
    (``Tr_velo_to_cam``); T_velo_imu: [4, 4] IMU -> velo, or None when absent.
    """

    P2: np.ndarray
    R0_rect: np.ndarray
    T_cam0_velo: np.ndarray
    T_velo_imu: np.ndarray | None = None

    @classmethod
    def from_file(cls, path: Path) -> KittiCalib:
        """Read an object/tracking calibration file (``P2``, ``R0_rect``/``R_rect``,
        ``Tr_velo_to_cam``/``Tr_velo_cam``, optional ``Tr_imu_to_velo``/``Tr_imu_velo``)."""
        data = read_calib_file(path)

        def get(name: str, required: bool = True) -> np.ndarray | None:
            for alias in _ALIASES.get(name, (name,)):
                if alias in data:
                    return data[alias]
            if required:
                raise SourceError(
                    f"{path}: missing calibration entry '{name}' (expected a KITTI object or "
                    f"tracking calibration file with P0..P3, R0_rect, Tr_velo_to_cam)"
                )
            return None

        P2 = get("P2")
        if P2.size != 12:
            raise SourceError(f"{path}: P2 must have 12 numbers, got {P2.size}")
        R0 = get("R0_rect")
        if R0.size != 9:
            raise SourceError(f"{path}: R0_rect must have 9 numbers, got {R0.size}")
        imu = get("Tr_imu_to_velo", required=False)
        return cls(
            P2=P2.reshape(3, 4),
            R0_rect=R0.reshape(3, 3),
            T_cam0_velo=_pose34(get("Tr_velo_to_cam"), f"{path}: Tr_velo_to_cam"),
            T_velo_imu=None if imu is None else _pose34(imu, f"{path}: Tr_imu_to_velo"),
        )

    @property
    def T_rect0_velo(self) -> np.ndarray:
        """[4, 4] velo -> rect0 (the frame of KITTI's 3D labels)."""
        R = np.eye(4)
        R[:3, :3] = self.R0_rect
        return R @ self.T_cam0_velo

    @property
    def T_velo_rect0(self) -> np.ndarray:
        """[4, 4] rect0 -> velo (ego)."""
        return np.linalg.inv(self.T_rect0_velo)

    @property
    def K2_kitti(self) -> np.ndarray:
        """[3, 3] intrinsics of camera 2 in KITTI's pixel convention."""
        return np.array(self.P2[:3, :3], dtype=np.float64)

    @property
    def T_rect2_rect0(self) -> np.ndarray:
        """[4, 4] rect0 -> rect2: the translation ``K2^-1 @ P2[:, 3]`` folded out of P2."""
        T = np.eye(4)
        T[:3, 3] = np.linalg.solve(self.K2_kitti, self.P2[:, 3])
        return T

    @property
    def T_cam2_velo(self) -> np.ndarray:
        """[4, 4] velo -> rectified camera 2 (OpenCV axes)."""
        return self.T_rect2_rect0 @ self.T_rect0_velo

    def camera(self, width: int, height: int) -> Camera:
        """The p4dsim camera of ``image_02``: K in p4dsim's pixel convention, pose in the ego
        (velodyne) frame."""
        return Camera(
            K=kitti_to_p4dsim_K(self.K2_kitti),
            width=int(width),
            height=int(height),
            T_ego_camera=np.linalg.inv(self.T_cam2_velo),
        )
