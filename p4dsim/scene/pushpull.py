"""One pull step of the push-pull interpolation of :mod:`p4dsim.scene.layers`, compiled
with numba: the normalised colour of a pyramid level where it has weight, the coarser level
over the uncovered share. One pass instead of six numpy temporaries per level (the
background fill runs a whole pyramid per depth step); the same float32 operations in the
same order, so the result is identical to :func:`pull_level_reference`."""

from __future__ import annotations

import numpy as np
from numba import njit

_EPS = np.float32(1e-12)


def pull_level_reference(c: np.ndarray, a: np.ndarray, up: np.ndarray) -> np.ndarray:
    """[h, w, k]: ``cov * norm + (1 - cov) * up`` with ``norm = c / a`` where ``a > 0`` (0
    elsewhere) and ``cov = clip(a, 0, 1)``; c: weighted colour [h, w, k], a: weight [h, w],
    up: the coarser level upsampled [h, w, k]."""
    norm = np.where(a[..., None] > 0, c / np.maximum(a, 1e-12)[..., None], 0.0)
    cov = np.clip(a, 0.0, 1.0)[..., None]
    return cov * norm + (1.0 - cov) * up


@njit(cache=True)
def _pull_kernel(c, a, up, eps, one, zero, out):  # pragma: no cover - compiled
    h, w, k = c.shape
    for i in range(h):
        for j in range(w):
            aa = a[i, j]
            m = aa if aa > eps else eps
            cov = aa if aa > zero else zero
            cov = cov if cov < one else one
            rest = one - cov
            for ch in range(k):
                norm = c[i, j, ch] / m if aa > zero else zero
                out[i, j, ch] = cov * norm + rest * up[i, j, ch]


def pull_level(c: np.ndarray, a: np.ndarray, up: np.ndarray) -> np.ndarray:
    """:func:`pull_level_reference`, by the compiled kernel for float32 inputs."""
    if (
        c.dtype == a.dtype == up.dtype == np.float32
        and c.ndim == 3
        and up.shape == c.shape
        and a.shape == c.shape[:2]
    ):
        out = np.empty_like(c)
        _pull_kernel(
            np.ascontiguousarray(c),
            np.ascontiguousarray(a),
            np.ascontiguousarray(up),
            _EPS,
            np.float32(1.0),
            np.float32(0.0),
            out,
        )
        return out
    return pull_level_reference(c, a, up)
