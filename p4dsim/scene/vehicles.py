"""A vehicle's pixels beside its box: the pixels the box test joins to a vehicle's mask, the
depth of vehicle pixels that miss their box (:func:`vehicle_depth`), and the box-volume rule
used when vehicle masks are off (:func:`_box_volume`).
"""

from __future__ import annotations

import cv2
import numpy as np

from p4dsim.geometry import inv_pose, ray_box_interval, transform_points
from p4dsim.scene.segment import VehicleMasks


def _ray_hits_box(
    local: np.ndarray,  # [n, 3] points in the box frame
    T_box_camera: np.ndarray,  # [4, 4]
    size,  # (l, w, h) of the box (m)
    near_half: np.ndarray,  # [3] only points within half + 1 m are tested
    tol: float = 0.05,
) -> np.ndarray:
    """(bool [n], float [n]): points whose camera ray meets the box and that lie between
    ``1 - tol`` times the ray's entry distance and its exit (surface samples of the actor that
    depth smoothing pulled slightly in front of it, where its bottom meets the road), and the
    factor along the ray that moves each such point onto the box (1 when already inside)."""
    out = np.zeros(len(local), bool)
    push = np.ones(len(local))
    cand = np.nonzero(np.all(np.abs(local) <= near_half + 1.0, axis=1))[0]
    if len(cand) == 0:
        return out, push
    o = np.asarray(T_box_camera, dtype=np.float64)[:3, 3]
    dr = local[cand].astype(np.float64) - o  # t = 1 at the point
    tmin, tmax = ray_box_interval(o, dr, np.asarray(size, dtype=np.float64) / 2)
    hit = (tmax >= np.maximum(tmin, 0)) & (tmin > 0)
    ok = hit & (tmin * (1 - tol) <= 1.0) & (1.0 <= tmax)
    out[cand] = ok
    push[cand] = np.where(ok, np.maximum(tmin, 1.0), 1.0)
    return out, push


def vehicle_depth(
    dense: np.ndarray, seg: VehicleMasks, support: np.ndarray | None = None, tol: float = 0.1
) -> np.ndarray:
    """``dense`` [H, W] with every vehicle pixel whose depth does not place it on its box
    (nearer than ``1 - tol`` times where its ray enters the box, or beyond where it leaves the
    grown box: structure above the LiDAR, depth completed from the background) given the depth
    of the nearest pixel of the same vehicle below it in its column whose depth is on the box
    (vertical surfaces keep their camera depth along an image column), else above it, else the
    depth where its ray enters the box (its visible face). With ``support`` [H, W] (LiDAR
    confidence of the depth, 1 next to a return), only pixels without LiDAR support move: a
    measured depth is kept even where the mask may be wrong."""
    lab = seg.labels
    off = (lab >= 0) & ((dense < (1 - tol) * seg.face) | (dense > seg.exit))
    if support is not None:
        off &= support < 1.0
    if not off.any():
        return dense
    out = dense.copy()
    H, W = dense.shape
    for bi in np.unique(lab[off]):
        m = lab == bi
        cols = np.nonzero(m.any(axis=0))[0]
        c0, c1 = cols[0], cols[-1] + 1
        mw, ow = m[:, c0:c1], off[:, c0:c1]
        good = np.where(mw & ~ow, dense[:, c0:c1], np.nan)
        below = np.full(good.shape, np.nan, np.float32)
        last = np.full(c1 - c0, np.nan, np.float32)
        for r in range(H - 1, -1, -1):
            below[r] = last
            last = np.where(np.isnan(good[r]), last, good[r])
        above = np.full(good.shape, np.nan, np.float32)
        last = np.full(c1 - c0, np.nan, np.float32)
        for r in range(H):
            above[r] = last
            last = np.where(np.isnan(good[r]), last, good[r])
        fill = np.where(np.isnan(below), above, below)
        fill = np.where(np.isnan(fill), seg.face[:, c0:c1], fill)
        out[:, c0:c1] = np.where(ow, fill, out[:, c0:c1])
    return out.astype(np.float32)


def _join_box_pixels(
    seg, dense, cam, boxes, ground, sky, clearance, pad_px: int = 8, margin: float = 0.1
) -> None:
    """The box test beside the segmentation: unlabelled pixels whose depth puts them inside a
    (not grown) box, above the ground, and that connect to its mask join it (in place), so that
    no part of a vehicle stays behind where the depth says it is there (its rim, the bottom
    rows that the ground seeds claimed)."""
    H, W = dense.shape
    Kinv = np.linalg.inv(cam.K)
    n_g, d_g = ground
    for bi, box in enumerate(boxes):
        m = seg.labels == bi
        if not m.any():
            continue
        rows = np.nonzero(m.any(axis=1))[0]
        cols = np.nonzero(m.any(axis=0))[0]
        r0, r1 = max(rows[0] - pad_px, 0), min(rows[-1] + pad_px + 1, H)
        c0, c1 = max(cols[0] - pad_px, 0), min(cols[-1] + pad_px + 1, W)
        vv, uu = np.mgrid[r0:r1, c0:c1]
        free = (seg.labels[r0:r1, c0:c1] < 0) & ~sky[r0:r1, c0:c1]
        rays = np.stack([uu + 0.5, vv + 0.5, np.ones_like(uu)], axis=-1).reshape(-1, 3) @ Kinv.T
        P = transform_points(cam.T_ego_camera, rays * dense[r0:r1, c0:c1].reshape(-1, 1))
        local = transform_points(inv_pose(box.pose()), P)
        ok = np.all(np.abs(local) <= np.asarray(box.size) / 2 + margin, axis=1)
        ok &= P @ n_g + d_g > clearance
        cand = free & ok.reshape(free.shape)
        mw = m[r0:r1, c0:c1]
        n, lab = cv2.connectedComponents((cand | mw).astype(np.uint8), connectivity=8)
        touch = np.unique(lab[mw])
        join = cand & np.isin(lab, touch[touch > 0])
        jv, ju = np.nonzero(join)
        jv, ju = jv + r0, ju + c0
        seg.labels[jv, ju] = bi
        seg.face[jv, ju] = dense[jv, ju]
        seg.exit[jv, ju] = dense[jv, ju]


def _box_volume(g, box, cam, cfg, height_above, taken, is_sky, n_grid, anchor) -> np.ndarray:
    """bool [len(g)]: the box-volume rule (``vehicle_masks`` off): Gaussians inside the grown
    box, or on a ray through it just in front of it (moved onto it), above the ground."""
    T_wa = box.pose()
    local = transform_points(inv_pose(T_wa), g.means)
    half = np.asarray(box.size) / 2 + cfg.box_grow_m
    core = np.all(np.abs(local) <= np.asarray(box.size) / 2, axis=1)
    hits, push = _ray_hits_box(local, inv_pose(T_wa) @ cam.T_ego_camera, box.size, half)
    core |= hits
    clearance = np.where(core, cfg.core_clearance_m, cfg.ground_clearance_m)
    inside = core | np.all(np.abs(local) <= half, axis=1)
    inside &= (height_above > clearance) & ~taken & ~is_sky
    if len(g) > n_grid:  # backing discs go where the pixel they back went
        inside[n_grid:] = inside[:n_grid][anchor]
    moved = inside & (push > 1.0)
    if moved.any():  # onto the box surface, along the source ray
        o = cam.T_ego_camera[:3, 3]
        g.means[moved] = (o + push[moved, None] * (g.means[moved] - o)).astype(np.float32)
    return inside
