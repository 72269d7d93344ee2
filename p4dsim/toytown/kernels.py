"""Toytown's hot loops compiled with numba: the value noise of
:func:`p4dsim.toytown.textures.value_noise` and the ray-box slab test of
:func:`p4dsim.toytown.raycast.ray_box`. One pass per sample instead of many numpy
temporaries, with the same operations in the same order (the noise's uint32 hash wrapping
as numpy's does, its float32 arithmetic in float32), so the results are identical."""

from __future__ import annotations

import numpy as np
from numba import njit

_M32 = np.uint64(0xFFFFFFFF)


@njit(cache=True)
def _hash01(ix, iy, salt):  # pragma: no cover - compiled
    m = np.uint64(0xFFFFFFFF)
    h = ((np.uint64(ix) & m) * np.uint64(0x9E3779B1)) & m
    h ^= ((np.uint64(iy) & m) * np.uint64(0x85EBCA77)) & m
    h ^= salt
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & m
    h ^= h >> np.uint64(12)
    h = (h * np.uint64(0x297A2D39)) & m
    h ^= h >> np.uint64(15)
    return np.float32(h >> np.uint64(8)) * np.float32(1.0 / 16777216.0)


@njit(cache=True)
def value_noise_kernel(x, y, salt, out):  # pragma: no cover - compiled
    """x, y [n] float64 (finite), salt: the seed's hash word (uint64 < 2**32) -> out [n]."""
    three = np.float32(3.0)
    two = np.float32(2.0)
    for i in range(x.shape[0]):
        xf = np.floor(x[i])
        yf = np.floor(y[i])
        fx = np.float32(x[i] - xf)
        fy = np.float32(y[i] - yf)
        ix = np.int64(xf)
        iy = np.int64(yf)
        sx = fx * fx * (three - two * fx)
        sy = fy * fy * (three - two * fy)
        a = _hash01(ix, iy, salt)
        b = _hash01(ix + 1, iy, salt)
        c = _hash01(ix, iy + 1, salt)
        d = _hash01(ix + 1, iy + 1, salt)
        top = a + (b - a) * sx
        bot = c + (d - c) * sx
        out[i] = top + (bot - top) * sy


def value_noise_fast(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray | None:
    """:func:`value_noise_kernel` over arrays of any shape, or None when the inputs are not
    finite float64 arrays of one shape (the numpy code then runs)."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype != np.float64 or y.dtype != np.float64 or x.shape != y.shape:
        return None
    xr = np.ascontiguousarray(x).reshape(-1)
    yr = np.ascontiguousarray(y).reshape(-1)
    # |x| < 2**62: the lattice index fits an int64 exactly as numpy's cast gives it
    if not (np.all(np.abs(xr) < 2.0**62) and np.all(np.abs(yr) < 2.0**62)):
        return None
    out = np.empty(xr.shape[0], np.float32)
    salt = np.uint64((int(seed) * 0xC2B2AE3D + 0x27D4EB2F) & 0xFFFFFFFF)
    value_noise_kernel(xr, yr, salt, out)
    return out.reshape(x.shape)


@njit(cache=True)
def ray_box_kernel(o, d, half, eps, t_out, face_out):  # pragma: no cover - compiled
    """o [3], d [M, 3], half [3] (float64) -> t [M] (inf on a miss), face [M] int8 (-1 on
    a miss), as :func:`p4dsim.toytown.raycast.ray_box` defines them."""
    lo0, hi0 = -half[0] - o[0], half[0] - o[0]
    lo1, hi1 = -half[1] - o[1], half[1] - o[1]
    lo2, hi2 = -half[2] - o[2], half[2] - o[2]
    for i in range(d.shape[0]):
        tn = -np.inf
        tf = np.inf
        axis = 0
        nan = False  # numpy: a NaN slab makes the ray a miss
        for k in range(3):
            dk = d[i, k]
            if abs(dk) < 1e-12:
                dk = 1e-12
            inv = 1.0 / dk
            nan |= np.isnan(inv)
            if k == 0:
                t1, t2 = lo0 * inv, hi0 * inv
            elif k == 1:
                t1, t2 = lo1 * inv, hi1 * inv
            else:
                t1, t2 = lo2 * inv, hi2 * inv
            a = min(t1, t2)
            b = max(t1, t2)
            if k == 0 or a > tn:  # argmax: the first of equal maxima
                tn = a
                axis = k
            if b < tf:
                tf = b
        if not nan and tn <= tf and tn > eps:
            t_out[i] = tn
            face_out[i] = 2 * axis + (1 if d[i, axis] > 0 else 0)
        else:
            t_out[i] = np.inf
            face_out[i] = -1
