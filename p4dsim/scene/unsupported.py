"""Depth where the LiDAR has none: above its field of view.

Surfaces the LiDAR sees continued upward through the image, sky only where the image says
sky, enclosed regions carried from the surfaces around, the rest far in inverse depth
(:func:`depth_above_lidar`). Depth maps as in :mod:`p4dsim.scene.depth`.
"""

from __future__ import annotations

import heapq

import cv2
import numpy as np
from numba import njit

from p4dsim.geometry import inv_pose, ray_box_interval, rot_z, transform_points
from p4dsim.scene.depth import _odd
from p4dsim.types import Camera

#: status codes of :func:`depth_above_lidar`
SUPPORTED, EXTENDED, ENCLOSED, GUESSED, SKY = 0, 1, 2, 3, 4


def _lab(image: np.ndarray) -> np.ndarray:
    img = cv2.GaussianBlur(image, (3, 3), 0).astype(np.float32) / 255.0
    return cv2.cvtColor(img, cv2.COLOR_RGB2LAB)


def image_edges(image: np.ndarray, threshold: float = 6.0) -> np.ndarray:
    """bool [H, W]: pixels on a colour edge, where the CIE Lab gradient magnitude (Sobel, per
    pixel, of the slightly blurred image) exceeds ``threshold`` ΔE per pixel."""
    lab = _lab(image)
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    mag = np.sqrt((gx**2 + gy**2).sum(axis=2))
    return mag > threshold


def sky_coloured(image: np.ndarray) -> np.ndarray:
    """bool [H, W]: bluish and bright, or nearly white (overcast sky)."""
    img = image.astype(np.float32) / 255.0
    r, b = img[..., 0], img[..., 2]
    bright = img.max(axis=2)
    return ((b >= r - 0.02) & (bright > 0.45)) | (bright > 0.9)


@njit(cache=True)
def _flood(depth, lab, seeds, passable, sky_cand, seed_sky, step_max, seed_max, h_cost, lo, hi):
    """Multi-source Dijkstra from the seed pixels through passable pixels; steps cost 1 up or
    down and ``h_cost`` sideways. A step enters a pixel only when its Lab distance to the
    pixel it comes from is below ``step_max``; a step into a sky-coloured candidate pixel
    only from a path whose seed is sky-coloured itself and within ``seed_max`` of that seed's
    colour. Returns (depth [H, W] propagated from the nearest seed, reached [H, W])."""
    H, W = depth.shape
    out = depth.copy()
    reached = seeds.copy()
    src = np.full((H, W), -1, np.int64)
    dist = np.full((H, W), np.inf)
    heap = [(0.0, np.int64(0))]
    heap.pop()
    for i in range(H):
        for j in range(W):
            if seeds[i, j]:
                dist[i, j] = 0.0
                src[i, j] = i * W + j
                heapq.heappush(heap, (0.0, np.int64(i * W + j)))
    di = (-1, 1, 0, 0)
    dj = (0, 0, -1, 1)
    while len(heap) > 0:
        c, p = heapq.heappop(heap)
        i, j = p // W, p % W
        if c > dist[i, j]:
            continue
        s = src[i, j]
        si, sj = s // W, s % W
        for k in range(4):
            a, b = i + di[k], j + dj[k]
            if a < 0 or a >= H or b < 0 or b >= W or seeds[a, b] or not passable[a, b]:
                continue
            e = 0.0
            for ch in range(3):
                e += (lab[a, b, ch] - lab[i, j, ch]) ** 2
            if e >= step_max * step_max:
                continue
            z = depth[si, sj]
            if lo[a, b] > 0 and lo[a, b] <= z and z <= hi[a, b]:
                continue
            if sky_cand[a, b]:
                if not seed_sky[si, sj]:
                    continue
                e2 = 0.0
                for ch in range(3):
                    e2 += (lab[a, b, ch] - lab[si, sj, ch]) ** 2
                if e2 >= seed_max * seed_max:
                    continue
            nc = c + (1.0 if k < 2 else h_cost)
            if nc < dist[a, b]:
                dist[a, b] = nc
                src[a, b] = s
                out[a, b] = depth[si, sj]
                reached[a, b] = True
                heapq.heappush(heap, (nc, np.int64(a * W + b)))
    return out, reached, src


def _sky_candidates(cand: np.ndarray, lab: np.ndarray, delta: float) -> np.ndarray:
    """bool [H, W]: the regions (4-connected) of ``cand`` that touch the top row and whose
    mean Lab colour lies within ``delta`` of the mean of the one with the most top-row
    pixels (the image's sky)."""
    n, labels = cv2.connectedComponents(cand.astype(np.uint8), connectivity=4)
    top = labels[0][cand[0]]
    if n <= 1 or len(top) == 0:
        return np.zeros(cand.shape, bool)
    ref = np.bincount(top, minlength=n)
    ref[0] = 0
    ref_id = int(np.argmax(ref))
    flat = labels.ravel()
    cnt = np.bincount(flat, minlength=n).astype(np.float64)
    mean = (
        np.stack([np.bincount(flat, weights=lab[..., c].ravel(), minlength=n) for c in range(3)], 1)
        / np.maximum(cnt, 1)[:, None]
    )
    ok = np.zeros(n, bool)
    ok[np.unique(top)] = True
    ok &= np.linalg.norm(mean - mean[ref_id], axis=1) < delta
    ok[0] = False
    return ok[labels]


def _above_boxes(camera, boxes, grow, where: np.ndarray, max_above: float = 15.0):
    """(lo, hi) float32 [H, W]: for the pixels of ``where`` (bool [H, W]), the camera z
    interval where the pixel's ray passes over one of the ego-frame ``boxes`` (within its
    footprint grown by ``grow``, from its top plus ``grow`` to ``max_above`` metres higher);
    0 elsewhere, where none, or without camera/boxes. Where a ray passes over several
    boxes, the hull of their intervals."""
    lo = np.zeros(where.shape, np.float32)
    hi = np.zeros(where.shape, np.float32)
    if camera is None or not boxes or not where.any():
        return lo, hi
    ii, jj = np.nonzero(where)
    Kinv = np.linalg.inv(camera.K)
    rays_c = np.stack([jj + 0.5, ii + 0.5, np.ones(len(ii))], axis=-1) @ Kinv.T  # z = 1
    T = np.asarray(camera.T_ego_camera, dtype=np.float64)
    rays_e = rays_c @ T[:3, :3].T
    entry = np.full(len(ii), np.inf)
    exit_ = np.zeros(len(ii))
    T_cam_ego = inv_pose(T)
    for b in boxes:
        size = np.asarray(b.size, dtype=np.float64)
        c = np.asarray(b.center, dtype=np.float64).copy()
        c[2] += size[2] / 2 + grow + max_above / 2
        half = np.array([size[0] / 2 + grow, size[1] / 2 + grow, max_above / 2])
        R = rot_z(b.yaw)
        # Only the rays within the image rectangle of the prism's corners (all in front).
        corners = transform_points(
            T_cam_ego, c + (np.array(np.meshgrid(*[[-1, 1]] * 3)).reshape(3, -1).T * half) @ R.T
        )
        if np.any(corners[:, 2] <= 0.05):
            sel = np.arange(len(ii))
        else:
            uv = corners[:, :2] / corners[:, 2:] @ camera.K[:2, :2].T + camera.K[:2, 2]
            sel = np.nonzero(
                (jj + 1 >= uv[:, 0].min())
                & (jj <= uv[:, 0].max())
                & (ii + 1 >= uv[:, 1].min())
                & (ii <= uv[:, 1].max())
            )[0]
        if len(sel) == 0:
            continue
        o = R.T @ (T[:3, 3] - c)
        tmin, tmax = ray_box_interval(o, rays_e[sel] @ R, half)
        ok = (tmax >= np.maximum(tmin, 0)) & (tmax > 0)
        entry[sel] = np.where(ok, np.minimum(entry[sel], np.maximum(tmin, 1e-3)), entry[sel])
        exit_[sel] = np.where(ok, np.maximum(exit_[sel], tmax), exit_[sel])
    hit = np.isfinite(entry)
    lo[ii[hit], jj[hit]] = entry[hit]
    hi[ii[hit], jj[hit]] = exit_[hit]
    return lo, hi


def _along_columns(d, src, mask, top_d):
    """Depth of the ``mask`` pixels, carried from a seed in another column, re-expressed
    along their own column: where the tops of the supported columns between the seed's and
    the pixel's form one smooth surface (no depth step of 10 % from column to column), the
    pixel takes its own column's top depth, scaled as the seed's depth was to its column's
    top (a vertical facade seen at an angle keeps its depth along each column, not along
    rows)."""
    W = d.shape[1]
    step = np.ones(W, bool)
    step[1:] = ~(
        (top_d[1:] > 0)
        & (top_d[:-1] > 0)
        & (np.maximum(top_d[1:], top_d[:-1]) < 1.1 * np.minimum(top_d[1:], top_d[:-1]))
    )
    surf = np.cumsum(step)
    ii, jj = np.nonzero(mask & (src >= 0))
    sj = src[ii, jj] % W
    si = src[ii, jj] // W
    same = (surf[sj] == surf[jj]) & (top_d[jj] > 0) & (top_d[sj] > 0)
    ii, jj, si, sj = ii[same], jj[same], si[same], sj[same]
    out = d.copy()
    out[ii, jj] = (top_d[jj] * d[si, sj] / top_d[sj]).astype(d.dtype)
    return out


def depth_above_lidar(
    dense: np.ndarray,  # float32 [H, W] completed depth (m), 0 = unknown
    sparse: np.ndarray,  # float32 [H, W] LiDAR z-buffer (m), 0 = no return
    image: np.ndarray,  # uint8 [H, W, 3] RGB
    max_depth: float = 150.0,
    scale: float | None = None,
    edge_threshold: float = 6.0,
    step_max: float = 8.0,
    seed_max: float = 12.0,
    horizontal_cost: float = 2.0,
    guess_factor: float = 2.0,
    sky_delta: float = 20.0,
    camera: Camera | None = None,
    boxes: list | None = None,
    box_grow: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth [H, W], sky [H, W] bool, status [H, W] uint8) with depth for the pixels above
    the LiDAR's field of view, following the rules for what the LiDAR does not cover.

    A column is supported from its highest return down (returns within a few pixels
    sideways count, as in :func:`complete_depth`); there ``dense`` is kept (``SUPPORTED``).
    Above it:

    * ``EXTENDED``: surfaces the LiDAR sees continue upward. Their depth is carried from the
      supported pixels through the image (vertical steps preferred to sideways ones, cost 1
      and ``horizontal_cost``), never across a colour edge (:func:`image_edges`) or a step
      of ``step_max`` ΔE or more: depth edges in unsupported regions follow image edges.
    * ``SKY``: sky-coloured, smooth pixels connected to the top of the image through such
      pixels, of the image's sky colour (a region's mean within ``sky_delta`` ΔE of the mean
      of the region that holds most of the top row's candidates: the lit top of a tanker
      that reaches the image's top is not), that no LiDAR-seen surface continues into. A surface continues into
      sky-coloured pixels only when it is sky-coloured itself (a white tanker, a pale
      facade) and stays within ``seed_max`` ΔE of its colour where the LiDAR saw it.
    * ``ENCLOSED``: the rest, where no pixel of its connected region touches the sky
      (windows in a facade, edges between two surfaces), and the edge pixels of the other
      regions next to a surface (its outline against the sky): carried from the nearest
      surface around as above, without the colour tests.
    * ``GUESSED``: the rest (structure nothing supports): a depth that keeps the
      reprojection error small under sideways moves, far in inverse depth: ``guess_factor``
      times the farthest supported depth in a window ⅛ of the image wide around its column
      (halfway in inverse depth between that depth and infinity for ``guess_factor`` 2),
      at most ``max_depth``.

    With ``camera`` and ``boxes`` (ego-frame vehicle boxes), a depth is never carried to a
    point above a box (inside its footprint grown by ``box_grow``, higher than its top plus
    ``box_grow``): there it is not the vehicle continuing but whatever lies above it (the
    bridge or sign above a truck, dark on dark), and those pixels stay unsupported unless
    another surface continues into them.
    """
    H, W = sparse.shape
    if scale is None:
        scale = W / 1242.0
    hit = cv2.dilate((sparse > 0.1).astype(np.uint8), np.ones((1, _odd(9 * scale)), np.uint8)) > 0
    any_col = hit.any(axis=0)
    top = np.where(any_col, np.argmax(hit, axis=0), H)
    rows = np.arange(H)[:, None]
    supported = (rows >= top[None, :]) & (dense > 0)
    status = np.full((H, W), GUESSED, np.uint8)
    status[supported] = SUPPORTED
    if supported.all():
        return dense.astype(np.float32), np.zeros((H, W), bool), status
    lab = _lab(image)
    edges = image_edges(image, edge_threshold)
    colour = sky_coloured(image)
    # Sky candidates: above the supported part, sky-coloured, smooth, connected to the top.
    sky_cand = _sky_candidates(~supported & colour & ~edges, lab, sky_delta)
    seeds = supported.copy()
    passable = ~supported & ~edges
    lo, hi = _above_boxes(camera, boxes, box_grow, ~supported)
    d, reached, src = _flood(
        np.where(supported, dense, 0).astype(np.float32),
        lab,
        seeds,
        passable,
        sky_cand,
        colour,
        float(step_max),
        float(seed_max),
        float(horizontal_cost),
        lo,
        hi,
    )
    ext = reached & ~supported
    status[ext] = EXTENDED
    top_d = np.where(any_col, dense[np.minimum(top, H - 1), np.arange(W)], 0).astype(np.float64)
    d = _along_columns(d, src, ext, top_d)
    sky = sky_cand & ~reached
    status[sky] = SKY
    rest = ~supported & ~reached & ~sky
    # Far-in-inverse-depth guess from the farthest supported depth around each column.
    col_far = cv2.dilate(top_d.astype(np.float32)[None, :], np.ones((1, _odd(W / 8)), np.uint8))[0]
    if not (col_far > 0).any():
        col_far[:] = max_depth / guess_factor
    col_far = np.where(col_far > 0, col_far, col_far[col_far > 0].max())
    guess = np.minimum(guess_factor * col_far, max_depth)
    n, lab_rest = cv2.connectedComponents(rest.astype(np.uint8), connectivity=4)
    if n > 1:
        # Regions that touch the sky are open (structure standing out against it); others
        # are enclosed by surfaces (and the image border). Edge pixels of open regions next
        # to a surface are that surface's outline (a roof line against the sky).
        near_sky = cv2.dilate(sky.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        open_ = np.zeros(n, bool)
        open_[np.unique(lab_rest[rest & near_sky])] = True
        open_[0] = True
        known = supported | reached
        near_known = cv2.dilate(known.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        inner = rest & (~open_[lab_rest] | (edges & near_known))
        if inner.any():
            # Carried from the nearest surface around, through these pixels only.
            d2, reached2, src2 = _flood(
                d.astype(np.float32),
                lab,
                known,
                inner,
                np.zeros((H, W), bool),
                colour,
                np.float64(np.inf),
                np.float64(np.inf),
                float(horizontal_cost),
                lo,
                hi,
            )
            got = reached2 & inner
            d = _along_columns(np.where(got, d2, d), src2, got, top_d)
            status[got] = ENCLOSED
            rest &= ~got
    d = np.where(rest, guess[None, :], d)
    d = np.where(sky, 0, d)
    return d.astype(np.float32), sky, status
