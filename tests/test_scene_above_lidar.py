"""Depth where the LiDAR has none: surfaces continue upward, sky only where the image says
sky, unsupported depth edges follow image edges, unsupported structure far in inverse depth."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.scene.unsupported import (
    ENCLOSED,
    EXTENDED,
    GUESSED,
    SKY,
    SUPPORTED,
    depth_above_lidar,
)

H, W = 80, 120
SKY_RGB = (200, 220, 250)


def _scan(truth: np.ndarray, top_row: int) -> np.ndarray:
    """LiDAR z-buffer: returns on every other row and column from ``top_row`` down."""
    sparse = np.zeros_like(truth)
    sparse[top_row::2, ::2] = truth[top_row::2, ::2]
    return sparse


def test_sky_coloured_surface_seen_by_lidar_continues_and_is_never_sky():
    # A pale, sky-coloured tanker (left half, 6 m) reaching the top of the image; real sky
    # on the right above a far wall (40 m). The LiDAR sees only rows 40 and below.
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = SKY_RGB
    img[40:, 60:] = (90, 80, 70)  # far wall (seen)
    img[:, :60] = (110, 140, 170)  # tanker, bluish like the sky but darker
    img[:, 57:60] = (20, 20, 20)  # its outline
    truth = np.zeros((H, W), np.float32)
    truth[:, :60] = 6.0
    truth[40:, 60:] = 40.0
    sparse = _scan(truth, 40)
    dense = np.where(np.arange(H)[:, None] >= 40, truth, 0).astype(np.float32)
    d, sky, status = depth_above_lidar(dense, sparse, img, scale=1.0)
    assert not sky[:, :56].any(), "sky put on the tanker the LiDAR sees below"
    assert np.all(status[:40, :54] == EXTENDED)
    np.testing.assert_allclose(d[:40, :56], 6.0, rtol=1e-5)
    # The real sky stays sky.
    assert sky[:35, 65:].all()
    assert np.all(status[45:, :] == SUPPORTED)


def test_sky_needs_the_image_sky_colour():
    # The lit top of a surface of another colour that reaches the top row is not sky even
    # though it is bright and smooth and touches the top; the large sky region is.
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = (250, 252, 253)  # overcast sky
    img[40:] = (90, 90, 90)
    img[:40, 80:] = (120, 150, 200)  # bluish, bright enough, but not this image's sky
    img[:40, 78:80] = (30, 30, 30)
    truth = np.full((H, W), 30.0, np.float32)
    sparse = _scan(truth, 40)
    dense = np.where(np.arange(H)[:, None] >= 40, truth, 0).astype(np.float32)
    _, sky, _ = depth_above_lidar(dense, sparse, img, scale=1.0)
    assert sky[:38, :70].all()
    assert not sky[:, 81:].any()


def test_unsupported_depth_edges_follow_image_edges():
    # Two facades above the LiDAR's field of view meet at a slanted colour edge; each is
    # seen below row 50 only in its own columns. The depth edge above must follow the
    # colour edge (not the columns), to within the edge's own width.
    img = np.zeros((H, W, 3), np.uint8)
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    boundary = 40 + (50 - ii) * 0.6  # column of the colour edge per row (slanted)
    left = jj < boundary
    img[left] = (160, 60, 50)
    img[~left] = (60, 90, 160)
    img[:5] = SKY_RGB  # a strip of sky at the top
    truth = np.where(left, 10.0, 25.0).astype(np.float32)
    sparse = _scan(truth, 50)
    dense = np.where(ii >= 50, truth, 0).astype(np.float32)
    d, sky, status = depth_above_lidar(dense, sparse, img, scale=1.0)
    region = (ii >= 6) & (ii < 50) & (np.abs(jj - boundary) > 2.5)
    assert np.all(np.isin(status[region], (EXTENDED, ENCLOSED)))
    np.testing.assert_allclose(d[region], truth[region], rtol=1e-5)
    # (Column extension would have put the near depth only up to column 40 on every row.)
    assert np.all(d[10, 65:] == 25.0) and np.all(d[10, 20:60] == 10.0)


def test_structure_nothing_supports_is_far_in_inverse_depth_not_on_the_sky():
    # A sign board standing out against the sky above a road seen to 20 m: its colour
    # continues no surface the LiDAR sees; it is neither sky nor glued to what is below.
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = SKY_RGB
    img[45:] = (80, 80, 80)
    img[10:25, 50:70] = (30, 120, 40)  # the board
    truth = np.full((H, W), 20.0, np.float32)
    sparse = _scan(truth, 45)
    dense = np.where(np.arange(H)[:, None] >= 45, truth, 0).astype(np.float32)
    d, sky, status = depth_above_lidar(dense, sparse, img, scale=1.0, max_depth=150.0)
    board = (slice(12, 23), slice(52, 68))
    assert not sky[board].any()
    assert np.all(status[board] == GUESSED)
    # Twice the farthest supported depth around: halfway to infinity in inverse depth.
    np.testing.assert_allclose(d[board], 40.0, rtol=1e-5)
    assert sky[:8, :40].all() and np.all(status[:8, :40] == SKY)


def test_depth_is_not_carried_above_a_vehicle_box():
    # A dark truck (8 m) under a dark bridge deck: same colour, no edge between them. The
    # truck's box stops its depth from being carried into the bridge above it.
    from types import SimpleNamespace

    from p4dsim.types import Camera

    K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])
    # Camera axes in the ego frame: x forward, y left, z up; camera 1.65 m above ground.
    T = np.eye(4)
    T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
    T[2, 3] = 1.65
    cam = Camera(K=K, width=W, height=H, T_ego_camera=T)
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = SKY_RGB
    img[10:, :] = (40, 40, 40)  # truck and bridge alike
    truth = np.full((H, W), 8.0, np.float32)
    sparse = _scan(truth, 38)
    dense = np.where(np.arange(H)[:, None] >= 38, truth, 0).astype(np.float32)
    # Truck: 8 m ahead (its back face), 3 m high on the ground (top 1.35 m above camera).
    box = SimpleNamespace(
        center=np.array([10.0, 0.0, 1.5]), size=np.array([4.0, 2.5, 3.0]), yaw=0.0
    )
    d0, _, _ = depth_above_lidar(dense, sparse, img, scale=1.0)
    d1, sky, status = depth_above_lidar(dense, sparse, img, scale=1.0, camera=cam, boxes=[box])
    # Rows whose ray at 8 m passes 0.25–15 m above the box top: 1.35+0.25 m above the camera.
    v_top = H / 2 - 60.0 * (1.35 + 0.25) / 8.0
    above = (np.arange(H) < v_top - 1) & (np.arange(H) >= 11)
    cols = slice(W // 2 - 5, W // 2 + 5)  # inside the truck's footprint
    assert np.all(d0[above, cols] == 8.0)  # without the box: glued to the truck
    assert np.all(d1[above, cols] != 8.0)
    assert not sky[above, cols].any()


@pytest.mark.usefixtures("real_data")
def test_real_kitti_tanker_is_never_sky(real_data):
    """KITTI raw 0052 frame 5: a tanker fills the top right corner of the image; its upper
    half lies above the LiDAR's field of view, its lit top is bluish and bright. The region
    x 1000–1242, y 0–150 was checked by hand to be tanker only."""
    from p4dsim.scene.depth import complete_depth, project_lidar
    from p4dsim.source import SourceSpec

    root = real_data / "kitti_raw"
    if not (root / "2011_09_26" / "2011_09_26_drive_0052_sync").is_dir():
        pytest.skip("KITTI raw drive 0052 not in the real sample data")
    f = SourceSpec.parse(f"kitti-raw:{root}?date=2011_09_26&drive=0052").open().frame(5)
    sparse = project_lidar(f.lidar, f.camera)
    dense = complete_depth(sparse, image=f.image)
    d, sky, status = depth_above_lidar(dense, sparse, f.image, camera=f.camera)
    tanker = (slice(0, 150), slice(1000, 1242))
    assert not sky[tanker].any()
    assert np.all(status[tanker] != GUESSED)
    # Its depth is that of the tanker the LiDAR sees below (a few metres), not far.
    assert np.percentile(d[tanker], 95) < 12.0
    # The open sky above the bridge (hand-checked: x 300–700, y 0–15) is sky.
    assert sky[0:15, 300:700].mean() > 0.95
    assert np.all(status[sky] == SKY)
