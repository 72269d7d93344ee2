"""Error anatomy: the pixels of a target view split into region classes, and every metric per
class.

Classes (:data:`REGIONS`), a partition of the image; where several apply, the first in this
order wins:

* ``vehicle``: inside the projection of a road user's 3D box (vehicles, and pedestrians and
  cyclists where the log has them) of the target view;
* ``synthesised``: rendered mostly from confidence-0 Gaussians of p4dsim's scene (hidden
  layers, backing, image extension, mirrored vehicle halves) or not rendered at all;
* ``sky``: what the *target* image says is sky (:func:`p4dsim.scene.depth.detect_sky`);
* ``lidar``: observed static surface with LiDAR support in the target view;
* ``no_depth``: surface without LiDAR support (above the LiDAR's field of view, beyond its
  range, dark or specular surfaces that return nothing).

The masks come from the target view, not from the predictions, except ``synthesised``, which
is the evaluated scene's own confidence channel: LiDAR support from the LiDAR of the target
frame (or the source LiDAR reprojected), vehicles from projected boxes, sky from the target
image. One region map per target, shared by every method, so per-class numbers compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from p4dsim.eval.metrics import DEPTH_MAX, depth_errors, psnr, ssim_map
from p4dsim.geometry import inv_pose, transform_points
from p4dsim.labels import clipped_projection
from p4dsim.scene.depth import detect_sky
from p4dsim.types import Box3D, Camera

REGIONS: tuple[str, ...] = ("lidar", "no_depth", "vehicle", "synthesised", "sky")
#: region id of each class in a region map (index into :data:`REGIONS`)
REGION_ID = {name: i for i, name in enumerate(REGIONS)}
#: box labels whose projections form the ``vehicle`` class
ROAD_USERS = ("vehicle", "pedestrian", "cyclist")
#: a pixel is synthesised when its alpha-normalised confidence is below this (observed
#: Gaussians carry confidence 1, synthesised ones 0) or when it is not rendered (alpha < 0.5)
SYNTH_CONFIDENCE = 0.5
#: metrics computed per region (same meaning as the whole-image metrics)
REGION_METRICS: tuple[str, ...] = ("share", "psnr", "ssim", "absrel", "consistency")


def scan_gap_px(sparse: np.ndarray) -> float:
    """Typical vertical gap (pixels) between neighbouring LiDAR returns of one image column of
    a sparse depth map [H, W] (0 = no return): the median over columns of the median gap, at
    least 1. Scales with the image and the LiDAR's vertical resolution, no fixed constant."""
    has = sparse > 0
    gaps = []
    for j in np.flatnonzero(has.sum(axis=0) >= 3):
        rows = np.flatnonzero(has[:, j])
        gaps.append(float(np.median(np.diff(rows))))
    return max(1.0, float(np.median(gaps))) if gaps else 1.0


def lidar_support(sparse: np.ndarray) -> np.ndarray:
    """Pixels [H, W] bool with LiDAR support: within the column's vertical span of returns
    (the span smoothed over neighbouring columns, so single columns without a return do not
    cut holes) and within two scan-line gaps of a return (so areas the LiDAR reaches but gets
    nothing back from, e.g. far away or through glass, are unsupported)."""
    H, W = sparse.shape
    has = sparse > 0
    if not has.any():
        return np.zeros((H, W), dtype=bool)
    gap = scan_gap_px(sparse)
    r = int(np.ceil(gap))
    cols = has.any(axis=0)
    top = np.where(cols, np.argmax(has, axis=0), H).astype(np.float32)
    bottom = np.where(cols, H - 1 - np.argmax(has[::-1], axis=0), -1).astype(np.float32)
    k = 2 * r + 1
    top = cv2.erode(top[None, :], np.ones((1, k), np.uint8), borderType=cv2.BORDER_REPLICATE)[0]
    bottom = cv2.dilate(
        bottom[None, :], np.ones((1, k), np.uint8), borderType=cv2.BORDER_REPLICATE
    )[0]
    v = np.arange(H)[:, None]
    span = (v >= top[None, :] - gap / 2) & (v <= bottom[None, :] + gap / 2)
    dist = cv2.distanceTransform((~has).astype(np.uint8), cv2.DIST_L2, 3)
    return span & (dist <= 2.0 * gap)


def box_masks(boxes: Sequence[Box3D], camera: Camera, T_ego_camera: np.ndarray | None = None):
    """Union [H, W] bool of the projected hulls of ``boxes`` (ego frame) of road users
    (:data:`ROAD_USERS`) in ``camera`` (pose ``T_ego_camera``, default the camera's own)."""
    H, W = camera.height, camera.width
    mask = np.zeros((H, W), dtype=np.uint8)
    T_cam_ego = inv_pose(camera.T_ego_camera if T_ego_camera is None else T_ego_camera)
    for b in boxes:
        if b.label not in ROAD_USERS:
            continue
        uv = clipped_projection(transform_points(T_cam_ego, b.corners()), camera.K)
        if len(uv) < 3:
            continue
        hull = cv2.convexHull(np.clip(uv, -4 * W, 4 * W).astype(np.float32))
        # pixel (i, j) has its centre at (j + 0.5, i + 0.5): shift by half a pixel, 1/16 px
        pts = np.round((hull.reshape(-1, 2) - 0.5) * 16).astype(np.int32)
        cv2.fillConvexPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def synthesised_mask(confidence: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Pixels [H, W] bool rendered mostly from synthesised Gaussians, or not rendered."""
    if alpha is None:
        return confidence < SYNTH_CONFIDENCE
    a = np.maximum(alpha, 1e-6)
    return (alpha < 0.5) | (confidence / a < SYNTH_CONFIDENCE)


def region_map(
    support_depth: np.ndarray,
    image: np.ndarray | None = None,
    vehicles: np.ndarray | None = None,
    synthesised: np.ndarray | None = None,
) -> np.ndarray:
    """Region id [H, W] uint8 (index into :data:`REGIONS`) of every pixel of a target view.

    support_depth: sparse LiDAR depth [H, W] in the target view (0 = no return); image: the
    target image uint8 [H, W, 3] for sky detection (None: no sky class); vehicles, synthesised:
    [H, W] bool masks (None: class empty).
    """
    H, W = support_depth.shape
    out = np.full((H, W), REGION_ID["no_depth"], dtype=np.uint8)
    out[lidar_support(support_depth)] = REGION_ID["lidar"]
    if image is not None:
        out[detect_sky(image, support_depth)] = REGION_ID["sky"]
    if synthesised is not None:
        out[synthesised] = REGION_ID["synthesised"]
    if vehicles is not None:
        out[vehicles] = REGION_ID["vehicle"]
    return out


def _ssim_full(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM [H, W] (mean over channels), NaN where the window leaves the image."""
    H, W = target.shape[:2]
    maps = [ssim_map(pred[..., c], target[..., c]) for c in range(target.shape[2])]
    m = np.mean(maps, axis=0)
    out = np.full((H, W), np.nan)
    r0 = (H - m.shape[0]) // 2
    c0 = (W - m.shape[1]) // 2
    out[r0 : r0 + m.shape[0], c0 : c0 + m.shape[1]] = m
    return out


def region_scores(
    regions: np.ndarray,
    pred_rgb: np.ndarray | None,
    pred_depth: np.ndarray,
    target_rgb: np.ndarray | None,
    target_depth: np.ndarray | None,
    consistency_ref: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics per region class: ``share`` of the image, ``psnr`` (over the region's pixels),
    ``ssim`` (mean of the local SSIM map over the region), ``absrel`` (against the target's
    reference depth) and ``consistency`` (AbsRel against the reprojected static source LiDAR,
    :mod:`p4dsim.eval.consistency`). None where the region or the reference is empty."""
    n_pix = regions.size
    ssim_px = None
    if pred_rgb is not None and target_rgb is not None and min(regions.shape) >= 11:
        ssim_px = _ssim_full(pred_rgb.astype(np.float64), target_rgb.astype(np.float64))
    out: dict[str, dict[str, Any]] = {}
    for name in REGIONS:
        m = regions == REGION_ID[name]
        n = int(m.sum())
        row: dict[str, Any] = {"share": n / n_pix}
        row["psnr"] = row["ssim"] = row["absrel"] = row["consistency"] = None
        if n:
            if pred_rgb is not None and target_rgb is not None:
                row["psnr"] = psnr(pred_rgb[m], target_rgb[m])
            if ssim_px is not None:
                s = ssim_px[m]
                s = s[np.isfinite(s)]
                row["ssim"] = float(s.mean()) if len(s) else None
            for key, ref in (("absrel", target_depth), ("consistency", consistency_ref)):
                if ref is None:
                    continue
                d = depth_errors(np.where(m, pred_depth, 0.0), np.where(m, ref, 0.0), DEPTH_MAX)
                row[key] = None if d.n == 0 else d.absrel
        out[name] = row
    return out
