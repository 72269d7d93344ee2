"""Dense depth for the source frame: LiDAR z-buffer, morphological completion, sky.

All depth maps are float32 [H, W] camera z in metres, 0 where unknown.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit, prange

from p4dsim.geometry import inv_pose, ray_box_interval, transform_points
from p4dsim.raybox import box_pixels
from p4dsim.types import Camera


def project_lidar(points_ego: np.ndarray, camera: Camera, min_depth: float = 0.5) -> np.ndarray:
    """Sparse depth [H, W] from ego-frame points [N, 3]: nearest return per pixel (z-buffer)."""
    H, W = camera.height, camera.width
    pts = transform_points(inv_pose(camera.T_ego_camera), points_ego)
    z = pts[:, 2]
    keep = z > min_depth
    pts, z = pts[keep], z[keep]
    u = np.floor(camera.K[0, 0] * pts[:, 0] / z + camera.K[0, 2]).astype(np.int64)
    v = np.floor(camera.K[1, 1] * pts[:, 1] / z + camera.K[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H)
    u, v, z = u[inside], v[inside], z[inside]
    depth = np.full(H * W, np.inf, dtype=np.float64)
    np.minimum.at(depth, v * W + u, z)
    depth[~np.isfinite(depth)] = 0.0
    return depth.reshape(H, W).astype(np.float32)


_DIAMOND5 = np.array(
    [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ],
    dtype=np.uint8,
)


def _odd(n: float) -> int:
    k = max(3, int(round(n)))
    return k if k % 2 else k + 1


def complete_depth(
    sparse: np.ndarray,
    max_depth: float = 150.0,
    scale: float | None = None,
    image: np.ndarray | None = None,
) -> np.ndarray:
    """Dense depth from sparse returns by morphological completion (in the spirit of IP-Basic).

    Depth is inverted (near = large) so that dilation lets near surfaces win at depth edges;
    small holes are closed, columns are extended upwards from their highest return, larger
    holes are filled, then a median and a masked Gaussian blur smooth the result. Kernel sizes
    are those of IP-Basic at KITTI's 1242-pixel width, scaled by ``scale`` (default: width/1242).

    With ``image`` (uint8 [H, W, 3], the camera frame the returns were projected into), pixels
    near depth edges are then refined by :func:`refine_depth_edges` (the near-preferring
    dilations above let near surfaces bleed a few pixels into the background), and the column
    extension is redone from the refined values. For the refinement, a column whose highest
    return lies well below those of the columns around it had beams above that return that met
    nothing: just above the return they count as far returns (1.2 times the farthest return),
    so that, for instance, a car roof's depth does not bleed into the distant background above
    the car. They are not trusted further up: real scanners also miss dark surfaces. Below
    about half KITTI's width (a window radius under 3 pixels) the windows hold too few returns
    to decide on, and the refinement is skipped (measured: it then hurts on KITTI).
    """
    if scale is None:
        scale = sparse.shape[1] / 1242.0
    k_close, k_fill, k_big = _odd(5 * scale), _odd(7 * scale), _odd(31 * scale)
    k_blur = _odd(5 * scale)
    d = sparse.astype(np.float32).copy()
    valid = d > 0.1
    d[valid] = max_depth - d[valid]
    d = cv2.dilate(d, _DIAMOND5 if scale > 0.75 else np.ones((3, 3), np.uint8))
    d = cv2.morphologyEx(d, cv2.MORPH_CLOSE, np.ones((k_close, k_close), np.uint8))
    empty = d < 0.1
    dil = cv2.dilate(d, np.ones((k_fill, k_fill), np.uint8))
    d[empty] = dil[empty]
    # Extend each column's highest value to the top of the image, unless the beams above it
    # saw nothing within range: its highest return lies well below those of the columns
    # around it. Those columns are far down to just above their highest return.
    H, Wd = d.shape
    has = d > 0.1
    any_col = has.any(axis=0)
    top = np.where(any_col, np.argmax(has, axis=0), H)
    rows = np.arange(H)[:, None]
    top_val = d[np.minimum(top, H - 1), np.arange(Wd)]
    hit = cv2.dilate((sparse > 0.1).astype(np.uint8), np.ones((1, _odd(9 * scale)), np.uint8)) > 0
    top_sp = np.where(hit.any(axis=0), np.argmax(hit, axis=0), H)
    env = cv2.erode(top_sp.astype(np.float32)[None, :], np.ones((1, _odd(Wd / 8)), np.uint8))[0]
    gap = any_col & (top_sp < H) & (top_sp > env + 12 * scale)
    # Beyond the farthest returns (the sensor's range), within max_depth.
    ret = sparse[sparse > 0.1]
    far_d = (
        float(min(0.99 * max_depth, 1.2 * np.percentile(ret, 99.9)))
        if len(ret)
        else 0.99 * max_depth
    )
    fill = (rows < top[None, :]) & any_col[None, :]
    d = np.where(fill, top_val[None, :], d)
    # Just above those returns, the beams that met nothing are far evidence for the edge
    # refinement (they need not be: real scanners also miss dark surfaces).
    r_ref = max(2, int(round(6 * scale)))
    far_zone = (rows < top_sp[None, :] - 1) & (rows >= top_sp[None, :] - 1 - 2 * r_ref)
    far_zone &= gap[None, :]
    empty = d < 0.1
    dil = cv2.dilate(d, np.ones((k_big, k_big), np.uint8))
    d[empty] = dil[empty]
    valid = d > 0.1
    blurred = cv2.medianBlur(d, 5 if k_blur >= 5 else 3)
    d[valid] = blurred[valid]
    blurred = cv2.GaussianBlur(d, (k_blur, k_blur), 0)
    weight = cv2.GaussianBlur(valid.astype(np.float32), (k_blur, k_blur), 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = np.where(weight > 0, blurred / np.maximum(weight, 1e-6), 0)
    # Keep depth edges: only smooth where the local depth range is small.
    local_max = cv2.dilate(d, np.ones((k_blur, k_blur), np.uint8))
    local_min = -cv2.dilate(-np.where(valid, d, max_depth * 2), np.ones((k_blur, k_blur), np.uint8))
    flat = (local_max - local_min) < 0.05 * np.maximum(max_depth - d, 1.0)
    d = np.where(valid & flat, smooth, d)
    out = np.where(d > 0.1, max_depth - d, 0.0).astype(np.float32)
    if image is not None and r_ref >= 3:
        # Beams that met nothing count as far returns for the edge refinement.
        pseudo = np.where(far_zone & (sparse <= 0), np.float32(far_d), sparse).astype(np.float32)
        out = refine_depth_edges(out, pseudo, image, radius=r_ref)
        # Extend the refined top values again: the extension above copied the bleed upwards.
        top_ref = out[np.minimum(top, H - 1), np.arange(Wd)]
        out = np.where(fill & (top_ref > 0)[None, :], top_ref[None, :], out)
    return out


@njit(parallel=True, cache=True)
def _refine_kernel(dense, sparse, lab, ii, jj, radius, ratio, sigma_s, sigma_c, margin, out):
    H, W = dense.shape
    inv2s = 1.0 / (2.0 * sigma_s * sigma_s)
    inv2c = 1.0 / (2.0 * sigma_c * sigma_c)
    for n in prange(ii.shape[0]):
        i, j = ii[n], jj[n]
        zmin, zmax = 1e30, 0.0
        sw, swz = 0.0, 0.0
        for a in range(max(i - radius, 0), min(i + radius + 1, H)):
            for b in range(max(j - radius, 0), min(j + radius + 1, W)):
                z = sparse[a, b]
                if z > 0:
                    zmin = min(zmin, z)
                    zmax = max(zmax, z)
                    w = math.exp(-((a - i) ** 2 + (b - j) ** 2) * inv2s)
                    sw += w
                    swz += w * z
        if sw == 0.0:
            continue
        cur = dense[i, j]
        if cur * ratio < zmin or cur > ratio * zmax:
            # No return around supports this depth: take theirs.
            out[i, j] = swz / sw
            continue
        if zmax < ratio * zmin:
            continue
        split = math.sqrt(zmin * zmax)
        ws = np.zeros(2)
        wc = np.zeros(2)
        wz = np.zeros(2)
        for a in range(max(i - radius, 0), min(i + radius + 1, H)):
            for b in range(max(j - radius, 0), min(j + radius + 1, W)):
                z = sparse[a, b]
                if z <= 0:
                    continue
                side = 0 if z < split else 1
                w = math.exp(-((a - i) ** 2 + (b - j) ** 2) * inv2s)
                e = 0.0
                for c in range(3):
                    e += (lab[i, j, c] - lab[a, b, c]) ** 2
                ws[side] += w
                wc[side] += w * math.exp(-e * inv2c)
                wz[side] += w * z
        near = wc[0] / ws[0]
        far = wc[1] / ws[1]
        if far > margin * near and cur < split:
            out[i, j] = wz[1] / ws[1]
        elif near > margin * far and cur >= split:
            out[i, j] = wz[0] / ws[0]


def refine_depth_edges(
    dense: np.ndarray,  # float32 [H, W] completed depth (m), 0 = unknown
    sparse: np.ndarray,  # float32 [H, W] LiDAR z-buffer (m), 0 = no return
    image: np.ndarray,  # uint8 [H, W, 3] RGB
    radius: int = 6,
    ratio: float = 1.1,
    sigma_c: float = 12.0,
    margin: float = 2.0,
) -> np.ndarray:
    """Completed depth [H, W] with pixels at depth edges moved to the side whose colour they
    share.

    For each pixel whose ``(2 radius + 1)²`` window holds returns
    spanning a far/near ratio ≥ ``ratio``, the returns are split at the geometric mean of the
    nearest and farthest into a near and a far side; each side scores the mean colour
    similarity (Gaussian in CIE Lab distance, ``sigma_c``) of its returns to the pixel,
    weighted by distance. A pixel whose completed depth lies on one side while the other
    side's score is ``margin`` times higher takes the other side's distance-weighted mean
    depth; otherwise (ambiguous colour) it is left unchanged. A pixel nearer or farther than
    every return in its window (by ``ratio``) takes their distance-weighted mean depth.
    """
    H, W = dense.shape
    if not (sparse > 0).any():
        return dense
    d = np.where(dense > 0, dense, np.float32(1e6)).astype(np.float32)
    k = 2 * radius + 1
    hi = cv2.dilate(np.where(dense > 0, dense, 0).astype(np.float32), np.ones((k, k), np.uint8))
    lo = cv2.erode(d, np.ones((k, k), np.uint8))
    cand = (hi >= ratio * lo) & (dense > 0)
    ii, jj = np.nonzero(cand)
    out = dense.astype(np.float32).copy()
    if len(ii) == 0:
        return out
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (3, 3), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    _refine_kernel(
        dense.astype(np.float32),
        sparse.astype(np.float32),
        lab,
        ii.astype(np.int64),
        jj.astype(np.int64),
        int(radius),
        float(ratio),
        max(radius / 2.0, 1.0),
        float(sigma_c),
        float(margin),
        out,
    )
    return out


def detect_sky(image: np.ndarray, sparse: np.ndarray) -> np.ndarray:
    """Sky mask [H, W] bool: above every LiDAR return of its column, sky-coloured, smooth, and
    connected to the top edge of the image."""
    H, W = sparse.shape
    has = sparse > 0
    top = np.where(has.any(axis=0), np.argmax(has, axis=0), H)
    above = np.arange(H)[:, None] < top[None, :]
    img = image.astype(np.float32) / 255.0
    r, b = img[..., 0], img[..., 2]
    bright = img.max(axis=2)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    grad = np.abs(cv2.Laplacian(cv2.GaussianBlur(gray, (3, 3), 0), cv2.CV_32F))
    grad = cv2.blur(grad, (5, 5))
    sky_colour = ((b >= r - 0.02) & (bright > 0.45)) | (bright > 0.9)
    cand = (above & sky_colour & (grad < 0.08)).astype(np.uint8)
    n, labels = cv2.connectedComponents(cand, connectivity=4)
    top_labels = np.unique(labels[0][cand[0] > 0])
    return np.isin(labels, top_labels[top_labels > 0])


def prior_depth(
    camera: Camera,
    ground: tuple[np.ndarray, float],
    boxes: list,
    far: float = 80.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Geometric depth prior for frames without LiDAR.

    Rays that hit a 3D box (ego frame) take the nearest box face; rays that hit the ground
    plane ``n·x + d = 0`` (ego frame) take its depth (capped at ``far``); every other ray is
    put on a far background at ``far`` metres. Returns depth [H, W] camera z (m) and ``hit``
    [H, W] bool, True where a box or the ground was hit within ``far``.
    """
    from p4dsim.scene.ground import ray_plane_depth

    H, W = camera.height, camera.width
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    zg = ray_plane_depth(camera.K, camera.T_ego_camera, ground, u, v)
    hit = (zg > 0) & (zg < far)
    depth = np.where(hit, zg, far)
    if boxes:
        entry, _ = ray_box_depths(camera, boxes)
        box_hit = entry > 0
        depth = np.where(box_hit, np.minimum(entry, depth), depth)
        hit |= box_hit
    return depth.astype(np.float32), hit


def lidar_confidence(sparse: np.ndarray, radius_px: float) -> np.ndarray:
    """Per-pixel confidence [H, W] in [0.3, 1] of a completed depth map: 1 within
    ``radius_px`` of a LiDAR return, falling to 0.3 three radii away."""
    has = (sparse > 0).astype(np.uint8)
    dist = cv2.distanceTransform(1 - has, cv2.DIST_L2, 3)
    r = max(radius_px, 1.0)
    return np.clip(1.0 - 0.7 * (dist - r) / (2 * r), 0.3, 1.0).astype(np.float32)


def ray_box_depths(camera: Camera, boxes: list, grow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Camera z (m) [H, W] where each pixel's ray first enters any of the ego-frame ``boxes``
    (grown by ``grow`` metres on every side) and where it last leaves them; 0 = no box hit."""
    H, W = camera.height, camera.width
    if not boxes:
        return np.zeros((H, W), np.float32), np.zeros((H, W), np.float32)
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    Kinv = np.linalg.inv(camera.K)
    rays_c = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3) @ Kinv.T  # z = 1
    T = np.asarray(camera.T_ego_camera, dtype=np.float64)
    rays_e = rays_c @ T[:3, :3].T
    o_e = T[:3, 3]
    entry = np.full(H * W, np.inf)
    exit_ = np.zeros(H * W)
    for b in boxes:
        R = b.rotation_matrix()
        o = R.T @ (o_e - np.asarray(b.center, dtype=np.float64))
        half = np.asarray(b.size, dtype=np.float64) / 2 + grow
        # only the rays through the box's image rectangle can meet it
        idx = box_pixels(camera.K, T, W, H, b.center, R, half)
        if idx is not None and len(idx) == 0:
            continue
        dr = rays_e @ R  # ray directions in the box frame
        if idx is None:
            idx = slice(None)
        tmin, tmax = ray_box_interval(o, dr[idx], half)
        ok = (tmax >= np.maximum(tmin, 0)) & (tmax > 0)
        e, x = entry[idx], exit_[idx]
        entry[idx] = np.where(ok, np.minimum(e, np.maximum(tmin, 1e-3)), e)
        exit_[idx] = np.where(ok, np.maximum(x, tmax), x)
    entry = np.where(np.isfinite(entry), entry, 0.0)
    return entry.reshape(H, W).astype(np.float32), exit_.reshape(H, W).astype(np.float32)
