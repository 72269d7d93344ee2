"""Waymo camera calibration to p4dsim's pinhole :class:`~p4dsim.types.Camera`.

Waymo cameras: intrinsics (f_u, f_v, c_u, c_v) with OpenCV-style distortion (k1, k2, p1, p2,
k3), pixel 0 covering u ∈ [0, 1) (as in p4dsim); extrinsic ``T_vehicle_camera`` with camera
axes x forward, y left, z up. p4dsim undistorts the image to the same pinhole K (zero
distortion afterwards) and uses OpenCV camera axes (x right, y down, z forward).
"""

from __future__ import annotations

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.geometry import R_FLU_FROM_RDF
from p4dsim.types import Camera

#: [4, 4] pose of the OpenCV camera axes in Waymo's camera axes (x fwd, y left, z up).
T_WAYMOCAM_OPENCV = np.eye(4)
T_WAYMOCAM_OPENCV[:3, :3] = R_FLU_FROM_RDF

CAMERA_NAMES = {
    0: "UNKNOWN",
    1: "FRONT",
    2: "FRONT_LEFT",
    3: "FRONT_RIGHT",
    4: "SIDE_LEFT",
    5: "SIDE_RIGHT",
}
CAMERA_IDS = {v: k for k, v in CAMERA_NAMES.items()}
LASER_NAMES = {0: "UNKNOWN", 1: "TOP", 2: "FRONT", 3: "SIDE_LEFT", 4: "SIDE_RIGHT", 5: "REAR"}
LASER_IDS = {v: k for k, v in LASER_NAMES.items()}


def intrinsic_matrix(f_u: float, f_v: float, c_u: float, c_v: float) -> np.ndarray:
    """Pinhole K [3, 3]."""
    return np.array([[f_u, 0.0, c_u], [0.0, f_v, c_v], [0.0, 0.0, 1.0]])


def camera_from_waymo(
    intrinsic: np.ndarray | list[float], T_vehicle_waymocam: np.ndarray, width: int, height: int
) -> tuple[Camera, np.ndarray]:
    """The undistorted pinhole :class:`Camera` and the distortion coefficients [5]
    (k1, k2, p1, p2, k3, OpenCV order) of a Waymo calibration.

    intrinsic: [9] (f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3); T_vehicle_waymocam: [4, 4].
    """
    intrinsic = np.asarray(intrinsic, dtype=np.float64)
    if intrinsic.shape != (9,):
        raise SourceError(
            f"Waymo camera intrinsic has {intrinsic.size} values, expected 9 "
            "(f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3)"
        )
    K = intrinsic_matrix(*intrinsic[:4])
    dist = intrinsic[4:9].copy()
    T = np.asarray(T_vehicle_waymocam, dtype=np.float64).reshape(4, 4) @ T_WAYMOCAM_OPENCV
    return Camera(K=K, width=int(width), height=int(height), T_ego_camera=T), dist


def waymo_extrinsic(camera: Camera) -> np.ndarray:
    """Waymo-style ``T_vehicle_camera`` [4, 4] (camera axes x fwd, y left, z up) of a camera."""
    return np.asarray(camera.T_ego_camera, dtype=np.float64) @ np.linalg.inv(T_WAYMOCAM_OPENCV)


def undistort(image: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Undistort ``image`` [H, W, C] to the pinhole ``K`` (same K, zero distortion).

    K follows p4dsim's pixel convention (pixel centres at integer + 0.5); OpenCV puts them at
    integers, so K is shifted by half a pixel for OpenCV and the result is in p4dsim's
    convention again.
    """
    import cv2

    dist = np.asarray(dist, dtype=np.float64)
    if not np.any(dist):
        return image
    K_cv = np.asarray(K, dtype=np.float64).copy()
    K_cv[0, 2] -= 0.5
    K_cv[1, 2] -= 0.5
    return cv2.undistort(image, K_cv, dist, newCameraMatrix=K_cv)


def decode_jpeg(data: bytes, where: str) -> np.ndarray:
    """Decode JPEG (or PNG) bytes to uint8 RGB [H, W, 3]; SourceError naming ``where``."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise SourceError(f"{where}: the camera image ({len(data)} bytes) is not a decodable JPEG")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
