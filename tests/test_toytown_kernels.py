"""Toytown's compiled value noise and ray-box test give exactly what their numpy
references give (the references below are the numpy code they replaced)."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.toytown import textures as tx
from p4dsim.toytown.raycast import ray_box


def value_noise_reference(x, y, seed):
    xf = np.floor(x)
    yf = np.floor(y)
    fx = (x - xf).astype(np.float32)
    fy = (y - yf).astype(np.float32)
    ix = xf.astype(np.int64)
    iy = yf.astype(np.int64)
    f3, f2 = np.float32(3.0), np.float32(2.0)
    sx = fx * fx * (f3 - f2 * fx)
    sy = fy * fy * (f3 - f2 * fy)
    a = tx.hash01(ix, iy, seed)
    b = tx.hash01(ix + 1, iy, seed)
    c = tx.hash01(ix, iy + 1, seed)
    d = tx.hash01(ix + 1, iy + 1, seed)
    top = a + (b - a) * sx
    bot = c + (d - c) * sx
    return top + (bot - top) * sy


def ray_box_reference(o_local, d_local, half):
    inv = 1.0 / np.where(np.abs(d_local) < 1e-12, 1e-12, d_local)
    t1 = (-half - o_local) * inv
    t2 = (half - o_local) * inv
    tmin = np.minimum(t1, t2)
    tmax = np.maximum(t1, t2)
    axis = np.argmax(tmin, axis=1)
    tn = np.take_along_axis(tmin, axis[:, None], axis=1)[:, 0]
    tf = tmax.min(axis=1)
    hit = (tn <= tf) & (tn > 1e-6)
    t = np.where(hit, tn, np.inf)
    dax = np.take_along_axis(d_local, axis[:, None], axis=1)[:, 0]
    face = (2 * axis + (dax > 0)).astype(np.int8)
    return t, np.where(hit, face, -1).astype(np.int8)


@pytest.mark.parametrize("scale", [1.0, 40.0, 1e6])
def test_value_noise_matches_numpy_reference(scale):
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000) * scale
    y = rng.normal(size=5000) * scale
    x[::7] = np.round(x[::7])  # on lattice points
    y[::5] = -np.round(y[::5])
    for seed in (0, 7, 101 * 3 + 2, -4):
        got = tx.value_noise(x, y, seed)
        assert got.dtype == np.float32
        assert np.array_equal(got, value_noise_reference(x, y, seed))
    grid = np.stack([x[:400].reshape(20, 20), y[:400].reshape(20, 20)])
    assert np.array_equal(tx.value_noise(*grid, 3), value_noise_reference(*grid, 3))


@pytest.mark.parametrize(
    "origin, hits",
    [([5.0, 1.0, 0.5], True), ([0.1, 0.2, 0.3], False), ([2.0, -1.0, 0.75], False)],
)
def test_ray_box_matches_numpy_reference(origin, hits):
    """Outside the box, inside it and on a corner (no hit beyond T_EPS in either)."""
    rng = np.random.default_rng(1)
    d = rng.normal(size=(5000, 3))
    d[::7, 0] = 0.0
    d[::11, 1] = 1e-13  # below the nudge threshold
    d[::13, 2] = -0.0
    d[::17] = np.round(d[::17])  # ties between slabs
    d[3, 1] = np.nan
    o = np.asarray(origin)
    half = np.array([2.0, 1.0, 0.75])
    t, face = ray_box(o, d, half)
    t_ref, face_ref = ray_box_reference(o, d, half)
    assert np.array_equal(t, t_ref)
    assert np.array_equal(face, face_ref) and face.dtype == np.int8
    assert np.isfinite(t).any() == hits
