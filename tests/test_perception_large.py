"""Large vehicles found in the LiDAR: clusters longer than any rigid vehicle (a tractor and
its semi-trailer) are candidates kept only when the sweeps show them moving, and a
LiDAR-found box whose top the LiDAR did not see lets its vehicle continue above the LiDAR."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.perception.cluster import ClusterConfig, find_clusters
from p4dsim.scene.segment import lidar_top_rows, top_unseen
from p4dsim.source import SourceSpec
from p4dsim.types import Box3D, Camera

GROUND = (np.array([0.0, 0.0, 1.0]), 0.0)  # z = 0 is the ground


def _side(x0: float, x1: float, y: float, top: float, step: float = 0.05) -> np.ndarray:
    """Points on a vertical side from x0 to x1 at lateral offset y, 0.4 m up to ``top``."""
    xs = np.arange(x0, x1, step)
    zs = np.arange(0.4, top, 0.1)
    X, Z = np.meshgrid(xs, zs)
    return np.stack([X.ravel(), np.full(X.size, y), Z.ravel()], axis=1)


def _vehicle(x0: float, length: float, y: float) -> np.ndarray:
    """The sides of a 2.5 m wide, 2.8 m tall vehicle beside the sensor: its near side and
    its rear (an L)."""
    side = _side(x0, x0 + length, y, 2.8)
    rear = _side(0.0, 2.5, 0.0, 2.8)[:, [1, 0, 2]] * [1, -1, 1] + [x0, y, 0]
    return np.concatenate([side, rear])


def test_long_clusters_are_candidates_that_need_motion():
    cfg = ClusterConfig()
    for length, kept, needs in ((9.0, True, False), (15.0, True, True), (24.0, False, False)):
        cl = find_clusters(_vehicle(6.0, length, -4.0), GROUND, cfg)
        long_ = [c for c in cl if c.size[0] > 6.0]
        assert bool(long_) == kept, length
        if kept:
            assert long_[0].needs_motion == needs, length
            assert long_[0].size[0] == pytest.approx(length, abs=0.3)


def _camera(W: int = 200, H: int = 100) -> Camera:
    # camera 1.6 m above the ground, looking along +x (ego: x forward, y left, z up)
    T = np.eye(4)
    T[:3, :3] = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    T[2, 3] = 1.6
    K = np.array([[100.0, 0, W / 2], [0, 100.0, H / 2], [0, 0, 1]])
    return Camera(K=K, width=W, height=H, T_ego_camera=T)


def test_top_unseen_only_for_boxes_above_the_camera_where_the_lidar_ends():
    cam = _camera()
    W, H = cam.width, cam.height
    tall = Box3D("t", "vehicle", np.array([12.0, 0.0, 1.2]), np.array([6.0, 2.5, 2.4]), 0.0)
    car = Box3D("c", "vehicle", np.array([12.0, 0.0, 0.75]), np.array([4.2, 1.8, 1.5]), 0.0)
    # the top edge of the tall box (2.4 m at 9 to 15 m) projects at rows 45..47
    ends_there = np.full(W, 46.0)  # returns up to the tall box's top, nothing above
    sees_above = np.full(W, 20.0)  # returns far above it (a facade behind)
    assert top_unseen(tall, cam, ends_there)
    assert not top_unseen(tall, cam, sees_above)
    # a car lower than the camera: a LiDAR on the roof saw its whole top, whatever is behind
    assert not top_unseen(car, cam, np.full(W, float(H)))
    # the LiDAR's upper limit per column: the highest row with a return nearby
    pix = np.array([30 * W + 10, 60 * W + 50])
    top = lidar_top_rows(pix, H, W, 2)
    assert top[10] == 30 and top[12] == 30 and top[50] == 60 and top[100] == H


def _kitti(real_data, drive: str):
    base = real_data / "kitti_raw" / "2011_09_26" / f"2011_09_26_drive_{drive}_sync"
    if not base.is_dir():
        pytest.skip(f"KITTI raw drive {drive} not in the real sample data")
    return SourceSpec.parse(f"kitti-raw:{real_data}/kitti_raw?date=2011_09_26&drive={drive}").open()


def test_real_tanker_is_a_moving_vehicle(real_data):
    """KITTI raw 0052 frame 5: a tractor with a tanker semi-trailer drives in the lane to the
    right, its side 2.3 m from the LiDAR, from 1.6 m behind it to 12.4 m ahead (its cluster
    is 14 m long: longer than any rigid vehicle); the log shows it moving with the traffic."""
    from p4dsim.perception.track import detect

    log = _kitti(real_data, "0052")
    dets = detect(log, 5)
    tanker = [
        d for d in dets if 2.0 < d.cluster.center[0] < 9.0 and -5.0 < d.cluster.center[1] < -2.5
    ]
    assert len(tanker) == 1
    t = tanker[0]
    assert t.cluster.needs_motion and 13.0 < t.cluster.size[0] < 15.0
    assert 2.0 < t.speed < 8.0  # stop-and-go traffic at the ego's pace or a bit faster
    assert abs(np.cos(np.arctan2(t.velocity[1], t.velocity[0]))) > 0.95  # along the lane


def test_real_facades_are_not_long_vehicles(real_data):
    """KITTI raw 0048 frames 2 and 5 (a residential street, the ego at 7.4 m/s): a facade
    and a row of parked cars cut by the LiDAR's field of view give clusters 16-19 m long,
    about 2.5 m high, like a truck's side; they are candidates but do not move, so none is a
    vehicle."""
    from p4dsim.perception.cluster import ground_plane
    from p4dsim.perception.track import detect

    log = _kitti(real_data, "0048")
    for i in (2, 5):
        lidar = log.frame(i).lidar
        assert any(c.needs_motion for c in find_clusters(lidar, ground_plane(lidar)))
        assert not any(d.cluster.needs_motion for d in detect(log, i))


def test_real_truck_cab_above_the_lidar_goes_with_the_vehicle(real_data):
    """KITTI raw 0052 frame 5 at 640×192: the tractor's cab (dark green, image columns
    410..460, rows 36..52, checked by eye on the image) stands above the LiDAR's returns in
    its columns (they end at rows 66..72), above the 2.4 m its cluster reaches; it belongs to
    the tanker's vehicle mask, so it moves with it."""
    from p4dsim.eval.future import resize_frame
    from p4dsim.perception.select import frame_with_actors
    from p4dsim.scene.builder import BuildConfig, _dense_depth
    from p4dsim.scene.depth import project_lidar
    from p4dsim.scene.segment import segment_vehicles

    log = _kitti(real_data, "0052")
    fr = frame_with_actors(resize_frame(log.frame(5), 640, 192), log, 5, "auto")
    sp = project_lidar(fr.lidar, fr.camera) > 0
    assert sp[:60, 410:460].sum() == 0  # the region is above every return in its columns
    _, sky, _, ground, _ = _dense_depth(fr, BuildConfig())
    seg = segment_vehicles(fr.image, fr.camera, fr.boxes, fr.lidar, ground, sky)
    ti = [i for i, b in enumerate(fr.boxes) if b.size[0] > 13.0 and 2.0 < b.center[0] < 9.0]
    assert len(ti) == 1
    cab = seg.labels[36:52, 410:460]
    assert (cab == ti[0]).mean() > 0.6
    assert fr.boxes[ti[0]].center[2] + fr.boxes[ti[0]].size[2] / 2 < 0.8  # box top < 2.6 m


def test_side_continues_along_the_length_to_the_cut_end():
    from p4dsim.scene.gaussians import GaussianSet
    from p4dsim.scene.layers import continue_along_length

    n = 300
    x = np.linspace(0.0, 3.0, n, dtype=np.float32)  # observed from x = 0 to 3 m
    means = np.stack([x, np.full(n, 1.2, np.float32), np.full(n, 1.5, np.float32)], 1)
    colors = np.stack([x / 3, np.zeros(n), np.ones(n)], 1).astype(np.float32)
    g = GaussianSet(
        means,
        np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)),
        np.full((n, 3), 0.05, np.float32),
        np.full(n, 0.9, np.float32),
        colors,
        np.ones(n, np.float32),
    )
    rear = continue_along_length(g, 5.0, -1, 1.0, 0.0)
    # the rear 5 m: covered up to the box's end, with the colours of the first observed metre
    assert rear.means[:, 0].min() >= -5.0 - 1e-5 and rear.means[:, 0].min() < -4.9
    assert rear.means[:, 0].max() < 0.05  # from the observed end (its 1st percentile)
    assert np.allclose(rear.means[:, 1:], [1.2, 1.5])
    assert rear.colors[:, 0].max() <= 0.35  # the observed metre nearest that end
    assert (rear.confidence == 0).all()
    front = continue_along_length(g, 5.0, 1, 1.0, 0.0)
    assert front.means[:, 0].min() > 2.95 and front.means[:, 0].max() <= 5.0 + 1e-5
    assert front.colors[:, 0].min() >= 2.0 / 3 - 1e-2
    assert len(continue_along_length(g, 3.1, 1, 1.0, 0.0)) == 0  # it reaches that end
