"""Dense depth for the source frame: LiDAR z-buffer, morphological completion, sky.

All depth maps are float32 [H, W] camera z in metres, 0 where unknown.
"""

from __future__ import annotations

import cv2
import numpy as np

from p4dsim.geometry import inv_pose, transform_points
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
    sparse: np.ndarray, max_depth: float = 150.0, scale: float | None = None
) -> np.ndarray:
    """Dense depth from sparse returns by morphological completion (in the spirit of IP-Basic).

    Depth is inverted (near = large) so that dilation lets near surfaces win at depth edges;
    small holes are closed, columns are extended upwards from their highest return, larger
    holes are filled, then a median and a masked Gaussian blur smooth the result. Kernel sizes
    are those of IP-Basic at KITTI's 1242-pixel width, scaled by ``scale`` (default: width/1242).
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
    # Extend each column's highest value to the top of the image.
    H = d.shape[0]
    has = d > 0.1
    top = np.where(has.any(axis=0), np.argmax(has, axis=0), H)
    rows = np.arange(H)[:, None]
    top_val = d[np.minimum(top, H - 1), np.arange(d.shape[1])]
    fill = (rows < top[None, :]) & has.any(axis=0)[None, :]
    d = np.where(fill, top_val[None, :], d)
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
        c, s = np.cos(b.yaw), np.sin(b.yaw)
        R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        o = R.T @ (o_e - np.asarray(b.center, dtype=np.float64))
        dr = rays_e @ R  # ray directions in the box frame
        half = np.asarray(b.size, dtype=np.float64) / 2 + grow
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o) / dr
            t2 = (half - o) / dr
        tmin = np.nanmax(np.minimum(t1, t2), axis=1)
        tmax = np.nanmin(np.maximum(t1, t2), axis=1)
        ok = (tmax >= np.maximum(tmin, 0)) & (tmax > 0)
        entry = np.where(ok, np.minimum(entry, np.maximum(tmin, 1e-3)), entry)
        exit_ = np.where(ok, np.maximum(exit_, tmax), exit_)
    entry = np.where(np.isfinite(entry), entry, 0.0)
    return entry.reshape(H, W).astype(np.float32), exit_.reshape(H, W).astype(np.float32)
