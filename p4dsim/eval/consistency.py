"""Novel-view depth consistency: rendered depth against the source frame's static LiDAR
points reprojected into the novel view.

Works for any view on real data, logged or not (lateral jumps, yaw, perturbed paths): the
static part of the world does not move, so the source sweep's points outside every road
user's box are a depth reference wherever they are visible from the novel camera. Visibility
is a z-buffer (nearest point per pixel) plus an occlusion test against nearer points in a
small neighbourhood, because a sparse sweep lets far points show through the gaps between
near ones.

:func:`p4dsim.eval.jumps.evaluate_jumps` runs it for lateral camera jumps (heading
unchanged): ``p4dsim eval consistency``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from p4dsim.eval.baselines import splat_points
from p4dsim.eval.metrics import depth_errors
from p4dsim.geometry import inv_pose, transform_points
from p4dsim.types import Box3D, Camera, Frame

#: boxes are grown by this much (m) on every side before their points are dropped
BOX_MARGIN_M = 0.3
#: a reprojected point is occluded when a point within the occlusion window is nearer by
#: more than this factor
OCCLUSION_RATIO = 1.1
#: occlusion window (pixels) at KITTI's 1242-pixel width; scaled with the image width
OCCLUSION_PX_AT_1242 = 7


def static_mask(points: np.ndarray, boxes: Sequence[Box3D], margin: float = BOX_MARGIN_M):
    """[N] bool: which points [N, 3] (ego frame) lie outside every box (ego frame) grown by
    ``margin``."""
    pts = np.asarray(points, dtype=np.float64)
    keep = np.ones(len(pts), dtype=bool)
    for b in boxes:
        c, s = np.asarray(b.center, np.float64), np.asarray(b.size, np.float64)
        cy, sy = np.cos(b.yaw), np.sin(b.yaw)
        d = pts - c
        x = cy * d[:, 0] + sy * d[:, 1]
        y = -sy * d[:, 0] + cy * d[:, 1]
        inside = (np.abs(x) <= s[0] / 2 + margin) & (np.abs(y) <= s[1] / 2 + margin)
        inside &= np.abs(d[:, 2]) <= s[2] / 2 + margin
        keep &= ~inside
    return keep


def static_points(points: np.ndarray, boxes: Sequence[Box3D], margin: float = BOX_MARGIN_M):
    """The points [N, 3] (ego frame) outside every box (ego frame) grown by ``margin``."""
    return np.asarray(points, dtype=np.float64)[static_mask(points, boxes, margin)]


def reprojected_depth(
    points_ego: np.ndarray,
    camera: Camera,
    T_ego_camera: np.ndarray,
    occlusion_px: int | None = None,
    ratio: float = OCCLUSION_RATIO,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """Sparse reference depth [H, W] (camera z, m; 0 = none) of points [N, 3] (source ego
    frame) seen from a camera with pose ``T_ego_camera`` (source ego frame): z-buffered, and
    points more than ``ratio`` times farther than the nearest point within ``occlusion_px``
    pixels removed (occluded by a surface the sparse sweep only samples). ``keep`` [N] bool:
    the points that may be reference points (e.g. static ones); the others only occlude."""
    pc = transform_points(inv_pose(T_ego_camera), points_ego)
    colours = np.zeros((len(pc), 3), dtype=np.uint8)
    if keep is not None:
        colours[np.asarray(keep, bool)] = 255
    rgb, depth, hit = splat_points(pc, colours, camera)
    if occlusion_px is None:
        occlusion_px = max(3, int(round(OCCLUSION_PX_AT_1242 * camera.width / 1242)) | 1)
    big = np.float32(1e9)
    z = np.where(hit, depth, big).astype(np.float32)
    k = np.ones((occlusion_px, occlusion_px), np.uint8)
    near = cv2.erode(z, k, borderType=cv2.BORDER_REPLICATE)
    visible = hit & (depth <= ratio * near)
    if keep is not None:
        visible &= rgb[..., 0] > 0
    return np.where(visible, depth, 0.0).astype(np.float32)


def consistency_absrel(pred_depth: np.ndarray, reference: np.ndarray) -> float | None:
    """AbsRel of rendered depth [H, W] against a reprojected reference [H, W] (None when no
    reference pixel has a prediction)."""
    d = depth_errors(pred_depth, reference)
    return None if d.n == 0 else d.absrel


def jump_pose(offset_m: float) -> np.ndarray:
    """Ego pose [4, 4] in the source ego frame of a lateral jump (positive = left, metres),
    heading unchanged."""
    T = np.eye(4)
    T[1, 3] = offset_m
    return T


def consistency_reference(
    source: Frame, boxes: Sequence[Box3D], camera: Camera, T_ego_camera: np.ndarray
) -> np.ndarray:
    """Reference depth [H, W] for a novel view: the static points of ``source``'s LiDAR
    (outside ``boxes``, ego frame) reprojected into ``camera`` placed at ``T_ego_camera`` (in
    the source ego frame), where no point of the sweep (static or not) hides them; all zero
    without LiDAR."""
    if source.lidar is None or len(source.lidar) == 0:
        return np.zeros((camera.height, camera.width), np.float32)
    pts = np.asarray(source.lidar, dtype=np.float64)
    return reprojected_depth(pts, camera, T_ego_camera, keep=static_mask(pts, boxes))
