"""The slab test of :func:`p4dsim.geometry.ray_box_interval`, compiled with numba.

One pass over the rays instead of numpy's six temporaries and two NaN-aware reductions over
[n, 3] arrays (the scene builder tests every pixel's ray against every box several times).
The arithmetic is the same IEEE operations in the same order, so the results are identical.
Kept out of :mod:`p4dsim.geometry` so that importing the geometry helpers does not import
numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def ray_box_interval_kernel(origin, dirs, half, tmin, tmax):  # pragma: no cover - compiled
    """origin [3], dirs [n, 3], half [3] (float64) -> tmin [n], tmax [n] (written in place).

    Per axis t1 = (-half - o) / d and t2 = (half - o) / d; numpy's minimum/maximum
    propagate a NaN (0 / 0: a ray parallel to a slab it starts on), the NaN-aware
    reductions then skip that axis; an all-NaN ray gives NaN, as ``np.nanmax`` does."""
    lo0, hi0 = -half[0] - origin[0], half[0] - origin[0]
    lo1, hi1 = -half[1] - origin[1], half[1] - origin[1]
    lo2, hi2 = -half[2] - origin[2], half[2] - origin[2]
    for i in range(dirs.shape[0]):
        best_lo = np.nan
        best_hi = np.nan
        for k in range(3):
            d = dirs[i, k]
            if k == 0:
                t1, t2 = lo0 / d, hi0 / d
            elif k == 1:
                t1, t2 = lo1 / d, hi1 / d
            else:
                t1, t2 = lo2 / d, hi2 / d
            if np.isnan(t1) or np.isnan(t2):
                continue
            a = t1 if t1 < t2 else t2
            b = t2 if t1 < t2 else t1
            if np.isnan(best_lo) or a > best_lo:
                best_lo = a
            if np.isnan(best_hi) or b < best_hi:
                best_hi = b
        tmin[i] = best_lo
        tmax[i] = best_hi


def ray_box_interval_fast(
    origin: np.ndarray, dirs: np.ndarray, half: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(tmin [n], tmax [n]) by :func:`ray_box_interval_kernel`, or None when the inputs are
    not float64 (numpy's own type promotion then decides, in the caller)."""
    o = np.asarray(origin)
    d = np.asarray(dirs)
    h = np.asarray(half)
    if not (o.dtype == d.dtype == h.dtype == np.float64) or d.ndim != 2 or d.shape[1] != 3:
        return None
    if o.shape != (3,) or h.shape != (3,):
        return None
    n = d.shape[0]
    tmin = np.empty(n)
    tmax = np.empty(n)
    ray_box_interval_kernel(o, np.ascontiguousarray(d), h, tmin, tmax)
    return tmin, tmax


def box_pixels(
    K: np.ndarray,  # [3, 3]
    T_ego_camera: np.ndarray,  # [4, 4]
    width: int,
    height: int,
    center: np.ndarray,  # [3] ego frame
    rotation: np.ndarray | float,  # [3, 3] box-to-ego rotation, or a yaw (rad)
    half: np.ndarray,  # [3] half sizes (m), grown as the caller tests them
    margin: float = 2.0,
) -> np.ndarray | None:
    """Flat row-major indices [n] of the pixels whose centre ray can meet the box: the
    bounding rectangle of its eight projected corners, grown by ``margin`` pixels (a ray
    meets the box only at a point in front of the camera, whose projection lies in the convex
    hull of the corners' projections; the margin absorbs rounding). None when a corner lies
    at or behind the camera plane, or a value is not finite: every pixel can then meet it;
    none when the whole box lies behind the camera (by more than a micrometre)."""
    if np.ndim(rotation) == 0:
        c, s = np.cos(float(rotation)), np.sin(float(rotation))
        R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    else:
        R = np.asarray(rotation, np.float64)
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)
    corners = np.asarray(center, np.float64) + (signs * np.asarray(half, np.float64)) @ R.T
    T = np.asarray(T_ego_camera, np.float64)
    cam = (corners - T[:3, 3]) @ T[:3, :3]  # R_ego_camera^T (x - t)
    if not np.all(np.isfinite(cam)):
        return None
    if np.all(cam[:, 2] < -1e-6):
        return np.zeros(0, np.int64)
    if np.any(cam[:, 2] <= 1e-6):
        return None
    p = cam @ np.asarray(K, np.float64).T
    u, v = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
    # pixel j's centre is at j + 0.5
    c0 = max(int(np.floor(u.min() - margin - 0.5)), 0)
    c1 = min(int(np.floor(u.max() + margin - 0.5)) + 1, int(width))
    r0 = max(int(np.floor(v.min() - margin - 0.5)), 0)
    r1 = min(int(np.floor(v.max() + margin - 0.5)) + 1, int(height))
    if c1 <= c0 or r1 <= r0:
        return np.zeros(0, np.int64)
    return (np.arange(r0, r1)[:, None] * int(width) + np.arange(c0, c1)[None, :]).reshape(-1)
