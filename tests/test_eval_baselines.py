"""copy and lidar_warp baselines on a constructed frame: a textured wall at known depth."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.eval.baselines import (
    colour_lidar,
    copy_prediction,
    lidar_warp_prediction,
    splat_points,
)
from p4dsim.geometry import make_pose
from p4dsim.types import Camera, Frame, SourceInfo

W, H, F, Z = 64, 40, 100.0, 10.0
# Camera looks along ego +x: ego (x fwd, y left, z up) -> camera (x right, y down, z fwd).
R_EGO_CAM = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _camera() -> Camera:
    K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
    return Camera(K=K, width=W, height=H, T_ego_camera=make_pose(R_EGO_CAM, [0, 0, 1.5]))


def _wall_frame(step: int = 1) -> Frame:
    """A fronto-parallel wall Z m ahead, one LiDAR point at the centre of every ``step``-th
    pixel, and a random image."""
    cam = _camera()
    jj, ii = np.meshgrid(np.arange(0, W, step), np.arange(0, H, step))
    u, v = jj.ravel() + 0.5, ii.ravel() + 0.5
    pc = np.stack([(u - W / 2) * Z / F, (v - H / 2) * Z / F, np.full(u.shape, Z)], axis=1)
    pts = pc @ R_EGO_CAM.T + cam.T_ego_camera[:3, 3]
    img = np.random.default_rng(0).integers(0, 256, (H, W, 3)).astype(np.uint8)
    return Frame(
        image=img,
        camera=cam,
        lidar=pts.astype(np.float32),
        boxes=[],
        T_world_ego=np.eye(4),
        ego_velocity=np.zeros(3),
        timestamp_us=0,
        source=SourceInfo("test", "wall", 0),
    )


def test_splat_nearest_point_wins():
    cam = _camera()
    # Two points on the ray through pixel (row 20, col 32) centre; the nearer one must win.
    pts = np.array([[0.5 / F * 8.0, 0.5 / F * 8.0, 8.0], [0.5 / F * 4.0, 0.5 / F * 4.0, 4.0]])
    cols = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    rgb, depth, hit = splat_points(pts, cols, cam)
    assert hit.sum() == 1 and hit[20, 32]
    assert depth[20, 32] == pytest.approx(4.0)
    assert tuple(rgb[20, 32]) == (0, 255, 0)


def test_copy_is_frame_t():
    f = _wall_frame()
    p = copy_prediction(f)
    np.testing.assert_array_equal(p.rgb, f.image)
    # Completed depth of the wall is Z everywhere it has LiDAR.
    assert np.median(p.depth[p.depth > 0]) == pytest.approx(Z, rel=1e-3)


def test_identity_warp_reproduces_source():
    f = _wall_frame()
    pts, cols = colour_lidar(f)
    assert len(pts) == W * H
    p = lidar_warp_prediction(f, f.camera.T_ego_camera, f.camera)
    np.testing.assert_array_equal(p.rgb, f.image)
    np.testing.assert_allclose(p.depth, Z, rtol=1e-5)
    assert p.coverage == pytest.approx(1.0)


def test_sideways_warp_shifts_by_parallax():
    f = _wall_frame()
    # Camera 0.3 m to the right (ego -y): the wall moves fx·0.3/Z = 3 px to the left.
    T = make_pose(np.eye(3), [0.0, -0.3, 0.0]) @ f.camera.T_ego_camera
    p = lidar_warp_prediction(f, T, f.camera)
    np.testing.assert_array_equal(p.rgb[:, : W - 3], f.image[:, 3:])
    # The 3 uncovered right-most columns: 2 filled from the nearest splat, 1 from frame t.
    np.testing.assert_array_equal(p.rgb[:, W - 3], f.image[:, W - 1])
    np.testing.assert_array_equal(p.rgb[:, W - 2], f.image[:, W - 1])
    np.testing.assert_array_equal(p.rgb[:, W - 1], f.image[:, W - 1])  # fallback = copy
    assert p.coverage == pytest.approx((W - 1) / W)


def test_sparse_lidar_gaps_filled_up_to_two_pixels():
    f = _wall_frame(step=6)  # a splat every 6 px: gaps up to 3 px from the nearest splat
    p = lidar_warp_prediction(f, f.camera.T_ego_camera, f.camera)
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    dj = np.abs(jj - 6 * np.round(jj / 6))
    di = np.abs(ii - 6 * np.round(ii / 6))
    near = np.hypot(di, dj) <= 2
    near &= (6 * np.round(jj / 6) < W) & (6 * np.round(ii / 6) < H)
    # Pixel (4, 4) is 2.8 px from every splat: it keeps frame t's colour; (0, 2) takes (0, 0)'s.
    np.testing.assert_array_equal(p.rgb[0, 2], f.image[0, 0])
    np.testing.assert_array_equal(p.rgb[4, 4], f.image[4, 4])
    assert p.coverage == pytest.approx(near.mean(), abs=0.02)
