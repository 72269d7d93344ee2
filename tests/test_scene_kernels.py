"""The compiled fast paths of the scene builder give exactly what their plain numpy
references give: the ray-box slab test, the normals of an organised point map and the
background fill's push-pull runs (the references below are the numpy code they replaced)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from p4dsim.geometry import ray_box_interval
from p4dsim.scene import layers
from p4dsim.scene.builder import _normals


def ray_box_interval_reference(origin, dirs, half):
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - origin) / dirs
        t2 = (half - origin) / dirs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rays
        return np.nanmax(np.minimum(t1, t2), axis=1), np.nanmin(np.maximum(t1, t2), axis=1)


def normals_reference(P):
    dx = np.zeros_like(P)
    dy = np.zeros_like(P)
    dx[:, 1:-1] = P[:, 2:] - P[:, :-2]
    dx[:, 0] = P[:, 1] - P[:, 0]
    dx[:, -1] = P[:, -1] - P[:, -2]
    dy[1:-1] = P[2:] - P[:-2]
    dy[0] = P[1] - P[0]
    dy[-1] = P[-1] - P[-2]
    n = np.cross(dy, dx)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = n / np.maximum(norm, 1e-12)
    view = P / np.maximum(np.linalg.norm(P, axis=-1, keepdims=True), 1e-12)
    flip = np.sum(n * view, axis=-1, keepdims=True) > 0
    n = np.where(flip, -n, n)
    bad = (norm[..., 0] < 1e-12) | (
        np.maximum(np.abs(dx[..., 2]), np.abs(dy[..., 2])) > 0.25 * P[..., 2]
    )
    n[bad] = -view[bad]
    return n


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """Equal values, NaN where NaN, and the same sign of every zero."""
    assert np.array_equal(a, b, equal_nan=True)
    f = ~np.isnan(a)
    assert np.array_equal(np.signbit(a[f]), np.signbit(b[f]))


@pytest.mark.filterwarnings("ignore:All-NaN slice")
@pytest.mark.parametrize(
    "origin",
    [
        [1.0, -2.0, 0.5],  # outside
        [0.2, 0.1, -0.3],  # inside
        [2.0, -1.0, 0.75],  # on a corner: 0 / 0 where a ray runs along a face
        [-2.0, 1.0, 0.0],
    ],
)
def test_ray_box_interval_matches_numpy_reference(origin):
    rng = np.random.default_rng(0)
    d = rng.normal(size=(20000, 3))
    d[::7, 0] = 0.0
    d[::11, 1] = 0.0
    d[::13, 2] = -0.0
    d[::17] = 0.0  # every slab 0 / 0 or ±inf
    d[::19] = np.round(d[::19])  # many exact ties between t1 and t2
    o = np.asarray(origin)
    half = np.array([2.0, 1.0, 0.75])
    got = ray_box_interval(o, d, half)
    want = ray_box_interval_reference(o, d, half)
    for a, b in zip(got, want, strict=True):
        _same(a, b)
    # non-float64 input keeps numpy's own promotion
    got32 = ray_box_interval(o.astype(np.float32), d.astype(np.float32), half.astype(np.float32))
    want32 = ray_box_interval_reference(
        o.astype(np.float32), d.astype(np.float32), half.astype(np.float32)
    )
    for a, b in zip(got32, want32, strict=True):
        assert a.dtype == b.dtype
        _same(a, b)
    assert ray_box_interval(o, d[:0], half)[0].shape == (0,)


@pytest.mark.parametrize("shape", [(2, 2), (3, 7), (40, 61)])
def test_normals_match_numpy_reference(shape):
    rng = np.random.default_rng(1)
    h, w = shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([(u - w / 2) / 50.0, (v - h / 2) / 50.0, np.ones_like(u)], axis=-1)
    depth = 5.0 + rng.random((h, w))
    depth[h // 2 :, w // 2 :] += 20.0  # a depth edge
    P = rays * depth[..., None]
    if h > 4 and w > 4:
        P[1:3, 1:3] = P[1, 1]  # flat patch: zero cross products
        P[-2:, :2] = 0.0
    got = _normals(P)
    want = normals_reference(P)
    assert np.array_equal(got, want)
    noise = rng.normal(size=(h, w, 3))
    assert np.array_equal(_normals(noise), normals_reference(noise))


def test_background_fill_runs_match_push_pull():
    """The fill reads each run's interpolated colour at the hole pixels directly: the same
    values as the whole :func:`~p4dsim.scene.layers._push_pull_half` image there."""
    rng = np.random.default_rng(2)
    H, W = 60, 90
    img = rng.random((H, W, 3)).astype(np.float32)
    w = (rng.random((H, W)) > 0.4).astype(np.float32)
    full = layers._push_pull_half(img, w)
    fill = layers._push_pull_half_fill(img, w)
    zero = w == 0
    assert np.array_equal(full[zero], fill[zero])
    assert np.array_equal(full[~zero], img[~zero])
    # and the fill itself: colour from nearer sources never enters (one far source region)
    image = np.zeros((H, W, 3), np.uint8)
    image[:, : W // 2] = (200, 10, 10)  # far
    image[:, W // 2 :] = (10, 200, 10)  # near
    depth = np.where(np.arange(W)[None, :] < W // 2, 40.0, 5.0) * np.ones((H, 1))
    hole = np.zeros((H, W), bool)
    hole[20:40, 40:60] = True
    out = layers.background_fill(image, depth, hole, np.full((H, W), 40.0))
    assert np.all(out[hole][:, 0] > 150)
    assert np.array_equal(out[~hole], image[~hole])
    assert cv2.countNonZero((out[..., 1] > 150).astype(np.uint8)) == int((~hole).sum()) - int(
        (~hole[:, : W // 2]).sum()
    )
