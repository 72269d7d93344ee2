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
