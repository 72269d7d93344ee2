"""The fast paths of the scene builder give exactly what their plain numpy references give:
the compiled ray-box slab test, the normals of an organised point map, the background fill's
push-pull runs and the ray-box depths tested only within each box's image rectangle (the
references below are the numpy code they replaced)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from p4dsim.geometry import ray_box_interval, rot_z
from p4dsim.raybox import box_pixels
from p4dsim.scene import layers
from p4dsim.scene.builder import _normals
from p4dsim.scene.depth import ray_box_depths
from p4dsim.scene.pushpull import pull_level, pull_level_reference
from p4dsim.scene.segment import _rays, box_interval
from p4dsim.toytown.adapter import toytown_camera
from p4dsim.types import Box3D


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


def _boxes_all_around(rng, n: int = 40) -> list[Box3D]:
    """Boxes in front of, beside, behind and around the camera (some straddle its plane)."""
    boxes = []
    for i in range(n):
        center = np.array([rng.uniform(-15, 40), rng.uniform(-12, 12), rng.uniform(-0.5, 1.5)])
        if i == 0:
            center = np.array([0.5, 0.0, 1.0])  # around the camera
        size = np.array([rng.uniform(1, 6), rng.uniform(1, 3), rng.uniform(1, 3)])
        boxes.append(Box3D(f"t{i}", "vehicle", center, size, float(rng.uniform(-np.pi, np.pi))))
    return boxes


def ray_box_depths_reference(camera, boxes, grow):
    H, W = camera.height, camera.width
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    Kinv = np.linalg.inv(camera.K)
    rays_c = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3) @ Kinv.T
    T = np.asarray(camera.T_ego_camera, dtype=np.float64)
    rays_e = rays_c @ T[:3, :3].T
    entry = np.full(H * W, np.inf)
    exit_ = np.zeros(H * W)
    for b in boxes:
        R = rot_z(b.yaw)
        o = R.T @ (T[:3, 3] - np.asarray(b.center, dtype=np.float64))
        tmin, tmax = ray_box_interval(o, rays_e @ R, np.asarray(b.size) / 2 + grow)
        ok = (tmax >= np.maximum(tmin, 0)) & (tmax > 0)
        entry = np.where(ok, np.minimum(entry, np.maximum(tmin, 1e-3)), entry)
        exit_ = np.where(ok, np.maximum(exit_, tmax), exit_)
    entry = np.where(np.isfinite(entry), entry, 0.0)
    return entry.reshape(H, W).astype(np.float32), exit_.reshape(H, W).astype(np.float32)


def test_ray_box_depths_and_box_intervals_within_the_box_rectangle_match_all_rays():
    """Testing only the rays through a box's image rectangle (raybox.box_pixels) finds every
    ray that meets it: the same depths as testing every ray against every box."""
    cam = toytown_camera(160, 48)
    rng = np.random.default_rng(3)
    boxes = _boxes_all_around(rng)
    for grow in (0.0, 0.25):
        got = ray_box_depths(cam, boxes, grow)
        want = ray_box_depths_reference(cam, boxes, grow)
        for a, b in zip(got, want, strict=True):
            assert np.array_equal(a, b)
    assert (want[1] > 0).any()
    rays_e, origin = _rays(cam)
    n_rect = 0
    for box in boxes:
        half = np.asarray(box.size) / 2 + 0.25
        near = box_pixels(cam.K, cam.T_ego_camera, cam.width, cam.height, box.center, box.yaw, half)
        n_rect += near is not None and 0 < len(near) < cam.width * cam.height
        got = box_interval(rays_e, origin, box, 0.25, near)
        want = box_interval(rays_e, origin, box, 0.25)
        for a, b in zip(got, want, strict=True):
            assert np.array_equal(a, b)
    assert n_rect >= 5  # the rectangles were used, not only the all-rays fallback


def test_pull_level_matches_numpy_reference():
    rng = np.random.default_rng(4)
    for h, w in ((1, 1), (5, 7), (47, 93)):
        c = rng.random((h, w, 3), dtype=np.float32)
        a = rng.random((h, w), dtype=np.float32) * 1.5
        a[a < 0.4] = 0.0  # uncovered pixels; weights above 1 clip
        up = rng.random((h, w, 3), dtype=np.float32)
        got = pull_level(c, a, up)
        want = pull_level_reference(c, a, up)
        assert got.dtype == want.dtype == np.float32
        assert np.array_equal(got, want)
    # float64 levels keep numpy's arithmetic
    c64, a64, up64 = c.astype(np.float64), a.astype(np.float64), up.astype(np.float64)
    assert np.array_equal(pull_level(c64, a64, up64), pull_level_reference(c64, a64, up64))
