"""LIDAR_TOP point clouds: ``.pcd.bin`` files and ego-motion compensation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.geometry import inv_pose

#: float32 values per point in a nuScenes LiDAR file: x, y, z, intensity, ring index
VALUES_PER_POINT = 5


def load_pcd_bin(path: Path) -> np.ndarray:
    """float32 [N, 3] points (x, y, z) of a nuScenes ``.pcd.bin`` file in the sensor frame."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"nuScenes LiDAR file {path} does not exist")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % (4 * VALUES_PER_POINT):
        raise SourceError(
            f"nuScenes LiDAR file {path} has {raw.size} bytes, not a positive multiple of "
            f"{4 * VALUES_PER_POINT} (x, y, z, intensity, ring as float32 per point): the file "
            "is truncated or not a LIDAR_TOP .pcd.bin; download it again"
        )
    pts = raw.view(np.float32).reshape(-1, VALUES_PER_POINT)[:, :3]
    if not np.isfinite(pts).all():
        raise SourceError(f"nuScenes LiDAR file {path} holds non-finite coordinates")
    return np.ascontiguousarray(pts)


def lidar_to_ego_at(
    T_world_ego_cam: np.ndarray, T_world_ego_lidar: np.ndarray, T_ego_lidar: np.ndarray
) -> np.ndarray:
    """[4, 4] pose mapping LiDAR-sensor points to the ego frame at the camera's timestamp:
    sensor -> ego at the LiDAR's timestamp -> world -> ego at the camera's timestamp. All
    inputs are 4×4 ``T_a_b`` poses (``T_world_ego_*`` from the two ego_pose records)."""
    return inv_pose(T_world_ego_cam) @ T_world_ego_lidar @ T_ego_lidar
