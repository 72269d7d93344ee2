"""A check of a dataset plugin's LiDAR-to-camera calibration that needs no ground truth.

Depth discontinuities of the LiDAR projected into the image (z-buffered, foreground side)
lie on image edges when extrinsics, intrinsics and timing are right. :func:`edge_alignment`
scores that; a plugin's test compares the score of the loaded calibration with the score of
the same projection shifted by a few pixels, which must be lower.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from p4dsim.geometry import inv_pose, project, transform_points
from p4dsim.types import Frame


def edge_closeness(image: np.ndarray) -> np.ndarray:
    """[H, W] closeness of each pixel to the nearest Canny edge of ``image`` (uint8 RGB),
    exp(-distance / 2 px)."""
    import cv2

    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (5, 5), 1.0)
    edges = cv2.Canny(gray, 50, 150)
    d = cv2.distanceTransform((edges == 0).astype(np.uint8), cv2.DIST_L2, 3)
    return np.exp(-d / 2.0)


def depth_discontinuities(frame: Frame, du: float = 0.0, dv: float = 0.0) -> np.ndarray:
    """[H, W] strength of depth discontinuities of the frame's LiDAR z-buffer (foreground
    side), projected with the frame's camera shifted by (du, dv) pixels."""
    import cv2

    cam = frame.camera
    pc = transform_points(inv_pose(cam.T_ego_camera), frame.lidar)
    uv, z = project(cam.K, pc[pc[:, 2] > 1.0])
    j = np.floor(uv[:, 0] + du).astype(int)
    i = np.floor(uv[:, 1] + dv).astype(int)
    ok = (j >= 0) & (j < cam.width) & (i >= 0) & (i < cam.height)
    depth = np.full((cam.height, cam.width), np.inf, np.float32)
    np.minimum.at(depth, (i[ok], j[ok]), z[ok].astype(np.float32))
    valid = np.isfinite(depth)
    d0 = np.where(valid, depth, 0).astype(np.float32)
    far = cv2.dilate(d0, np.ones((5, 9), np.uint8))
    jump = np.where(valid, np.clip(far - d0, 0, None) / np.maximum(d0, 1.0), 0.0)
    return np.sqrt(np.minimum(jump, 1.0))


def edge_alignment(frames: Sequence[Frame], shifts: Sequence[tuple[float, float]]) -> list[float]:
    """For each (du, dv) of ``shifts``: the share of the frames' LiDAR depth discontinuities
    (projected shifted by that many pixels) that falls on image edges, in [0, 1]."""
    edges = [edge_closeness(f.image) for f in frames]
    scores = []
    for du, dv in shifts:
        num = den = 0.0
        for f, e in zip(frames, edges, strict=True):
            disc = depth_discontinuities(f, du, dv)
            num += float((disc * e).sum())
            den += float(disc.sum())
        scores.append(num / den)
    return scores
