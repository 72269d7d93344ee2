"""Analytic ray-primitive intersections for toytown (numpy, vectorised over rays).

Rays share one origin ``o`` [3] (a pinhole camera or a spinning LiDAR) and have directions
``d`` [M, 3], not necessarily unit length: the returned ray parameter ``t`` [M] is in units of
``|d|`` (with camera rays scaled to unit camera z it is the camera depth). Misses get
``t = inf``. Face codes say which surface was hit (see each function).
"""

from __future__ import annotations

import numpy as np

#: smallest accepted ray parameter (avoids self-hits at the origin)
T_EPS = 1e-6


def _safe(d: np.ndarray) -> np.ndarray:
    """Directions with exact zeros nudged so that 1/d is finite."""
    return np.where(np.abs(d) < 1e-12, 1e-12, d)


def ray_box(
    o_local: np.ndarray, d_local: np.ndarray, half: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rays against an axis-aligned box centred at the origin with half extents ``half`` [3]
    (slab method), everything in the box frame.

    Returns t [M] (inf: miss or origin inside the box) and face [M] int8:
    ``2*axis + (0 if the outward normal is +axis else 1)``, -1 on a miss. Float64 inputs go
    through :func:`p4dsim.toytown.kernels.ray_box_kernel` (the same arithmetic, compiled).
    """
    o, d, h = np.asarray(o_local), np.asarray(d_local), np.asarray(half)
    if (
        o.dtype == d.dtype == h.dtype == np.float64
        and o.shape == (3,)
        and h.shape == (3,)
        and d.ndim == 2
        and d.shape[1] == 3
        and np.all(np.isfinite(o))
        and np.all(np.isfinite(h))
    ):
        from p4dsim.toytown.kernels import ray_box_kernel

        t = np.empty(len(d))
        face = np.empty(len(d), np.int8)
        ray_box_kernel(o, np.ascontiguousarray(d), h, T_EPS, t, face)
        return t, face
    inv = 1.0 / _safe(d_local)
    t1 = (-half - o_local) * inv
    t2 = (half - o_local) * inv
    tmin = np.minimum(t1, t2)
    tmax = np.maximum(t1, t2)
    axis = np.argmax(tmin, axis=1)
    tn = np.take_along_axis(tmin, axis[:, None], axis=1)[:, 0]
    tf = tmax.min(axis=1)
    hit = (tn <= tf) & (tn > T_EPS)
    t = np.where(hit, tn, np.inf)
    dax = np.take_along_axis(d_local, axis[:, None], axis=1)[:, 0]
    face = (2 * axis + (dax > 0)).astype(np.int8)
    return t, np.where(hit, face, -1).astype(np.int8)


def ray_vertical_cylinder(
    o: np.ndarray, d: np.ndarray, center_xy: np.ndarray, radius: float, z0: float, z1: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rays against a capped vertical cylinder (axis along z from ``z0`` to ``z1``).

    Returns t [M] and face [M] int8: 0 side, 1 top cap, -1 miss.
    """
    ox, oy = o[0] - center_xy[0], o[1] - center_xy[1]
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
    a = dx * dx + dy * dy
    b = 2.0 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - 4.0 * a * c
    ok = (disc >= 0.0) & (a > 1e-18)
    sq = np.sqrt(np.where(ok, disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = (-b - sq) / (2.0 * np.where(a > 1e-18, a, 1.0))
    z = o[2] + ts * dz
    side = ok & (ts > T_EPS) & (z >= z0) & (z <= z1)
    t = np.where(side, ts, np.inf)
    dzs = _safe(dz)
    tc = (z1 - o[2]) / dzs
    px = ox + tc * dx
    py = oy + tc * dy
    cap = (tc > T_EPS) & (px * px + py * py <= radius * radius) & (tc < t)
    t = np.where(cap, tc, t)
    face = np.where(cap, 1, np.where(side, 0, -1)).astype(np.int8)
    return t, face


def ray_ground(
    o: np.ndarray, d: np.ndarray, y_right: float, y_left: float, kerb: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rays against toytown's ground: the road plane z = 0 for ``y_right ≤ y ≤ y_left``, the
    raised plane z = ``kerb`` outside it, and the two vertical kerb faces joining them.

    Returns t [M] and face [M] int8: 0 road, 1 raised ground, 2 left kerb face (y = y_left),
    3 right kerb face (y = y_right), -1 miss.
    """
    dz = _safe(d[:, 2])
    dy = _safe(d[:, 1])
    t = np.full(d.shape[0], np.inf)
    face = np.full(d.shape[0], -1, dtype=np.int8)

    t0 = (0.0 - o[2]) / dz
    y0 = o[1] + t0 * d[:, 1]
    ok = (t0 > T_EPS) & (y0 >= y_right) & (y0 <= y_left)
    t = np.where(ok, t0, t)
    face[ok] = 0

    t1 = (kerb - o[2]) / dz
    y1 = o[1] + t1 * d[:, 1]
    ok = (t1 > T_EPS) & ((y1 > y_left) | (y1 < y_right)) & (t1 < t)
    t = np.where(ok, t1, t)
    face[ok] = 1

    for code, yk in ((2, y_left), (3, y_right)):
        tk = (yk - o[1]) / dy
        zk = o[2] + tk * d[:, 2]
        ok = (tk > T_EPS) & (zk >= 0.0) & (zk <= kerb) & (tk < t)
        t = np.where(ok, tk, t)
        face[ok] = code
    return t, face
