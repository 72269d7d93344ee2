"""Ground plane estimation: RANSAC on LiDAR points (open3d ``segment_plane``, numpy fallback),
or a prior without LiDAR; ray/plane intersection for the depth prior and hidden layers."""

from __future__ import annotations

import numpy as np

from p4dsim.types import Box3D


def fit_ground_plane(
    points: np.ndarray,
    threshold: float = 0.08,
    iterations: int = 200,
    max_range: float = 40.0,
    seed: int = 0,
) -> tuple[np.ndarray, float] | None:
    """Plane ``n·x + d = 0`` (n [3] unit, n_z > 0) fitted to the ground among ego-frame points.

    Candidates are points within ``max_range`` metres horizontally and in the lowest part of
    the cloud; planes tilted more than ~25° from horizontal are rejected. Returns None when no
    plausible plane has enough support.
    """
    if points is None or len(points) < 50:
        return None
    p = np.asarray(points, dtype=np.float64)
    r = np.hypot(p[:, 0], p[:, 1])
    p = p[r < max_range]
    if len(p) < 50:
        return None
    low = p[p[:, 2] < np.percentile(p[:, 2], 50)]
    best = _segment_plane_open3d(low, threshold, iterations, seed)
    if best is not None:
        n, d = best
        if np.sum(np.abs(low @ n + d) < threshold) >= 30:
            return _refine(low, n, d, threshold)
    rng = np.random.default_rng(seed)
    best, best_count = None, 0
    for _ in range(iterations):
        s = low[rng.choice(len(low), 3, replace=False)]
        n = np.cross(s[1] - s[0], s[2] - s[0])
        norm = np.linalg.norm(n)
        if norm < 1e-9:
            continue
        n /= norm
        if n[2] < 0:
            n = -n
        if n[2] < 0.9:
            continue
        d = -n @ s[0]
        count = int(np.sum(np.abs(low @ n + d) < threshold))
        if count > best_count:
            best, best_count = (n, d), count
    if best is None or best_count < 30:
        return None
    return _refine(low, best[0], best[1], threshold)


def _segment_plane_open3d(
    low: np.ndarray, threshold: float, iterations: int, seed: int
) -> tuple[np.ndarray, float] | None:
    """open3d's RANSAC plane; None when open3d is unavailable or the plane is not horizontal."""
    try:
        import open3d as o3d
    except Exception:
        return None
    if len(low) < 3:
        return None
    try:
        o3d.utility.random.seed(seed)
    except Exception:
        pass
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(low))
    model, _ = pc.segment_plane(threshold, 3, iterations)
    n = np.asarray(model[:3], dtype=np.float64)
    d = float(model[3])
    norm = np.linalg.norm(n)
    if norm < 1e-9:
        return None
    n, d = n / norm, d / norm
    if n[2] < 0:
        n, d = -n, -d
    if n[2] < 0.9:
        return None
    return n, d


def _refine(low: np.ndarray, n: np.ndarray, d: float, threshold: float):
    """Least-squares plane through the inliers of (n, d)."""
    inl = low[np.abs(low @ n + d) < threshold]
    c = inl.mean(axis=0)
    _, _, vt = np.linalg.svd(inl - c, full_matrices=False)
    n = vt[2] if vt[2][2] > 0 else -vt[2]
    return n, float(-n @ c)


def ground_prior(
    boxes: list[Box3D], camera_height_in_ego: float | None = None
) -> tuple[np.ndarray, float]:
    """A horizontal ground plane without LiDAR: under the boxes' bottoms when there are boxes,
    else at z = 0 of the ego frame."""
    n = np.array([0.0, 0.0, 1.0])
    if boxes:
        bottoms = [float(b.center[2] - b.size[2] / 2) for b in boxes]
        return n, -float(np.median(bottoms))
    return n, 0.0


def ray_plane_depth(
    camera_K: np.ndarray,
    T_ego_camera: np.ndarray,
    plane: tuple[np.ndarray, float],
    u: np.ndarray,
    v: np.ndarray,
) -> np.ndarray:
    """Camera z (m) [same shape as u] where the rays through pixels (u, v) meet the ego-frame
    plane ``n·x + d = 0``; 0 where the ray does not hit it in front of the camera."""
    n, d = np.asarray(plane[0], dtype=np.float64), float(plane[1])
    T = np.asarray(T_ego_camera, dtype=np.float64)
    Kinv = np.linalg.inv(camera_K)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ Kinv.T  # camera frame, z = 1
    n_cam = T[:3, :3].T @ n  # plane normal in the camera frame
    d_cam = float(n @ T[:3, 3] + d)  # signed height of the camera above the plane
    denom = rays @ n_cam
    with np.errstate(divide="ignore", invalid="ignore"):
        z = -d_cam / denom
    return np.where(np.isfinite(z) & (z > 0), z, 0.0)
