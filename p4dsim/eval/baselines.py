"""Baselines of the future-frame protocol, evaluated on the same frames as p4dsim.

* ``copy``: the source frame t itself (image; depth completed from its LiDAR).
* ``lidar_warp``: the LiDAR points of frame t, coloured from image t, z-buffered into the
  target camera; gaps of up to :data:`GAP_FILL_PX` pixels take the nearest splat, the rest
  comes from frame t (the ``copy`` prediction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from p4dsim.geometry import inv_pose, transform_points
from p4dsim.scene.depth import complete_depth, project_lidar
from p4dsim.types import Camera, Frame

#: gaps up to this distance (pixels) from a splat take the splat's colour and depth
GAP_FILL_PX = 2.0


@dataclass
class Prediction:
    """One method's prediction of a target view.

    rgb: uint8 [H, W, 3]; depth: float32 [H, W] camera z (m), 0 unknown, inf sky;
    coverage: share of pixels predicted from observed content (None when not meaningful).
    """

    rgb: np.ndarray
    depth: np.ndarray
    coverage: float | None


def source_depth(frame: Frame) -> np.ndarray:
    """Dense depth [H, W] of the source frame completed from its LiDAR (0 where none)."""
    if frame.lidar is None:
        return np.zeros((frame.camera.height, frame.camera.width), dtype=np.float32)
    return complete_depth(project_lidar(frame.lidar, frame.camera))


def copy_prediction(frame: Frame, depth_t: np.ndarray | None = None) -> Prediction:
    """Frame t as the prediction of any later view."""
    d = source_depth(frame) if depth_t is None else depth_t
    return Prediction(frame.image.copy(), d.astype(np.float32), None)


def splat_points(
    points_cam: np.ndarray, colours: np.ndarray, camera: Camera, min_depth: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffer points [N, 3] (camera frame) with colours [N, 3] uint8 into ``camera``'s image:
    one pixel per point (the pixel containing its projection), nearest point wins.

    Returns rgb uint8 [H, W, 3], depth float32 [H, W] (0 empty), hit bool [H, W].
    """
    H, W = camera.height, camera.width
    z = points_cam[:, 2]
    keep = z > min_depth
    p, z, c = points_cam[keep], z[keep], colours[keep]
    u = np.floor(camera.K[0, 0] * p[:, 0] / z + camera.K[0, 2]).astype(np.int64)
    v = np.floor(camera.K[1, 1] * p[:, 1] / z + camera.K[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H)
    u, v, z, c = u[inside], v[inside], z[inside], c[inside]
    pix = v * W + u
    # Nearest first; the first occurrence of each pixel is its nearest point.
    order = np.lexsort((z, pix))
    pix, z, c = pix[order], z[order], c[order]
    first = np.ones(len(pix), dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    rgb = np.zeros((H * W, 3), dtype=np.uint8)
    depth = np.zeros(H * W, dtype=np.float32)
    hit = np.zeros(H * W, dtype=bool)
    rgb[pix[first]] = c[first]
    depth[pix[first]] = z[first]
    hit[pix[first]] = True
    return rgb.reshape(H, W, 3), depth.reshape(H, W), hit.reshape(H, W)


def colour_lidar(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """LiDAR points of ``frame`` that fall inside its image, with the colour of the pixel they
    project to: (points [M, 3] in the ego frame, colours uint8 [M, 3])."""
    cam = frame.camera
    if frame.lidar is None or len(frame.lidar) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8)
    pts = np.asarray(frame.lidar, dtype=np.float64)
    pc = transform_points(inv_pose(cam.T_ego_camera), pts)
    z = pc[:, 2]
    ok = z > 0.5
    zs = np.where(ok, z, 1.0)
    u = np.floor(cam.K[0, 0] * pc[:, 0] / zs + cam.K[0, 2]).astype(np.int64)
    v = np.floor(cam.K[1, 1] * pc[:, 1] / zs + cam.K[1, 2]).astype(np.int64)
    ok &= (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    return pts[ok], frame.image[v[ok], u[ok]]


def lidar_warp_prediction(
    frame: Frame,
    T_ego_t_camera_target: np.ndarray,
    camera: Camera,
    fallback: Prediction | None = None,
    gap_px: float = GAP_FILL_PX,
) -> Prediction:
    """Warp frame t's coloured LiDAR into a target camera.

    T_ego_t_camera_target: [4, 4] the target camera's pose in frame t's ego frame; camera:
    the target camera's intrinsics and size (must match the frame's image size). Pixels within
    ``gap_px`` of a splat take the nearest splat's colour and depth; the others come from
    ``fallback`` (default: :func:`copy_prediction` of ``frame``). coverage: share of pixels
    filled from splats.
    """
    fb = fallback if fallback is not None else copy_prediction(frame)
    pts, col = colour_lidar(frame)
    pc = transform_points(inv_pose(T_ego_t_camera_target), pts)
    rgb_s, depth_s, hit = splat_points(pc, col, camera)
    if not hit.any():
        return Prediction(fb.rgb.copy(), fb.depth.copy(), 0.0)
    dist, (ii, jj) = distance_transform_edt(~hit, return_indices=True)
    filled = dist <= gap_px
    rgb = fb.rgb.copy()
    depth = fb.depth.astype(np.float32).copy()
    rgb[filled] = rgb_s[ii[filled], jj[filled]]
    depth[filled] = depth_s[ii[filled], jj[filled]]
    return Prediction(rgb, depth, float(filled.mean()))
