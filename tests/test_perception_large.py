"""Large vehicles found in the LiDAR: clusters longer than any rigid vehicle (a tractor and
its semi-trailer) are candidates kept only when the sweeps show them moving; a vehicle cut off
by the image's border is continued along its length."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.perception.cluster import ClusterConfig, find_clusters
from p4dsim.source import SourceSpec

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


def test_real_tanker_moves_with_its_side_continued(real_data):
    """KITTI raw 0052 frame 5 at 640×192: the tanker's side (image columns 520..600, rows
    90..130, checked by eye: the white tank and its dark underside, inside the LiDAR's view)
    belongs to the tanker's actor, which moves; the part of its box behind the image's right
    border (its rear, beside the ego) is filled with copies of its side, synthesised
    (confidence 0), so that the road does not show where the tanker is when it moves
    forward."""
    from p4dsim.eval.future import resize_frame
    from p4dsim.geometry import inv_pose, pose_from_xyz_yaw, transform_points
    from p4dsim.perception.select import frame_with_actors
    from p4dsim.scene.builder import BuildConfig, _dense_depth, build_scene
    from p4dsim.scene.segment import segment_vehicles

    log = _kitti(real_data, "0052")
    fr = frame_with_actors(resize_frame(log.frame(5), 640, 192), log, 5, "auto")
    ti = [i for i, b in enumerate(fr.boxes) if b.size[0] > 13.0 and 2.0 < b.center[0] < 9.0]
    assert len(ti) == 1
    box = fr.boxes[ti[0]]
    assert np.hypot(*box.velocity[:2]) > 2.0
    _, sky, _, ground, _ = _dense_depth(fr, BuildConfig())
    seg = segment_vehicles(fr.image, fr.camera, fr.boxes, fr.lidar, ground, sky)
    assert (seg.labels[90:130, 520:600] == ti[0]).mean() > 0.9
    scene = build_scene(fr)
    actor = next(a for a in scene.actors if a.track_id == box.track_id)
    g = actor.gaussians
    synth = g.confidence == 0
    assert synth.sum() > 1000
    observed_end = np.percentile(g.means[~synth, 0], 1)
    rear = g.means[synth, 0] < observed_end
    # the copies run from the observed end to the box's rear end, on the box's side
    assert g.means[synth][rear, 0].min() < -box.size[0] / 2 + 1.0
    assert np.all(np.abs(g.means[synth][:, 1]) <= box.size[1] / 2 + 0.5)
    # and none of them is seen from the source camera (they lie outside its image)
    cam = scene.camera
    T = inv_pose(cam.T_ego_camera) @ pose_from_xyz_yaw(box.center, box.yaw)
    pc = transform_points(T, g.means[synth].astype(np.float64))
    z = np.maximum(pc[:, 2], 1e-3)
    u = cam.K[0, 0] * pc[:, 0] / z + cam.K[0, 2]
    v = cam.K[1, 1] * pc[:, 1] / z + cam.K[1, 2]
    seen = (pc[:, 2] > 0.1) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    assert not seen.any()


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
