"""Ground plane estimation: RANSAC on LiDAR points (numpy), or a prior without LiDAR."""

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
    # Least-squares refinement on the inliers.
    n, d = best
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
