"""v1 reader: the real one-frame sample (cameras, calibration, labels) and synthetic
TFRecords with range images written by the test."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from p4dsim_waymo.adapter import WaymoAdapter, WaymoOptions
from p4dsim_waymo.camera import undistort
from p4dsim_waymo.tfrecord import write_records
from waymo_synth import RangeScene, make_frame, pose, real_v1_file, rot_z

from p4dsim.errors import SourceError
from p4dsim.geometry import inv_pose, project, transform_points

pytest.importorskip("waymo_open_dataset.dataset_pb2", reason="Waymo protos not installed")


def _open(path: Path, **opts):
    return WaymoAdapter().open(path, WaymoOptions(**opts))


# -- real sample --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    log = _open(real_v1_file())
    return log, log.frame(0)


def test_real_cameras_decode(real):
    log, frame = real
    from p4dsim_waymo.camera import decode_jpeg

    pb = log._proto(0)
    sizes = {}
    for im in pb.images:
        img = decode_jpeg(im.image, "test")
        sizes[int(im.name)] = (img.shape[1], img.shape[0])
    assert len(sizes) == 5
    assert sizes[1] == (1920, 1280)
    assert frame.image.shape == (1280, 1920, 3) and frame.image.dtype == np.uint8
    assert (frame.camera.width, frame.camera.height) == (1920, 1280)


def test_real_frame_contents(real):
    log, frame = real
    assert len(log) == 1 and log.log_id == "1024360143612057520_3580_000_3600_000"
    assert frame.lidar is None
    assert len(frame.boxes) == 75
    ids = [b.track_id for b in frame.boxes]
    assert all(ids) and len(set(ids)) == 75
    assert {b.label for b in frame.boxes} <= {"vehicle", "pedestrian", "cyclist", "sign", "other"}
    assert all(b.velocity is not None and b.acceleration is not None for b in frame.boxes)
    # Camera looks forward: optical axis (OpenCV +z) close to the ego +x axis.
    z_axis = frame.camera.T_ego_camera[:3, 2]
    assert z_axis[0] > 0.99
    # OpenCV +y (down) is ego -z.
    assert frame.camera.T_ego_camera[2, 1] < -0.99
    ts, poses = log.ego_trajectory()
    assert ts.tolist() == [frame.timestamp_us] and np.allclose(poses[0], frame.T_world_ego)
    assert len(log.tracks()) == 75


def test_real_visible_boxes_project_inside_front_image(real):
    """Boxes marked visible in FRONT — those with a FRONT entry in the frame's
    ``projected_lidar_labels`` (the official projection of each laser label into each camera)
    — project inside the undistorted FRONT image; re-distorting our corner projection with the
    loaded distortion reproduces the official projected 2D boxes to within 2 px."""
    log, frame = real
    pb = log._proto(0)
    official = {
        lab.id.rsplit("_", 1)[0]: lab.box
        for cl in pb.projected_lidar_labels
        if cl.name == 1
        for lab in cl.labels
    }
    assert len(official) == 12
    cam = frame.camera
    T_cam_ego = inv_pose(cam.T_ego_camera)
    K_cv = cam.K.copy()
    K_cv[:2, 2] -= 0.5
    checked = 0
    for box in frame.boxes:
        if box.track_id not in official:
            continue
        centre = transform_points(T_cam_ego, box.center[None])
        uv, z = project(cam.K, centre)
        assert z[0] > 0
        assert 0 <= uv[0, 0] < cam.width and 0 <= uv[0, 1] < cam.height, box.track_id
        corners = transform_points(T_cam_ego, box.corners())
        assert (corners[:, 2] > 0).all()
        d, _ = cv2.projectPoints(
            corners.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K_cv, frame.extras["distortion"]
        )
        d = d[:, 0] + 0.5
        d = np.clip(d, 0, [cam.width, cam.height])
        ob = official[box.track_id]
        ref = [
            ob.center_x - ob.length / 2,
            ob.center_y - ob.width / 2,
            ob.center_x + ob.length / 2,
            ob.center_y + ob.width / 2,
        ]
        np.testing.assert_allclose(np.r_[d.min(0), d.max(0)], ref, atol=2.0)
        checked += 1
    assert checked == 12


def test_undistort_moves_a_distorted_dot_to_its_pinhole_position():
    K = np.array([[80.0, 0, 64.0], [0, 80.0, 48.0], [0, 0, 1]])
    dist = np.array([-0.25, 0.05, 0.001, -0.002, 0.0])
    p = np.array([[0.55, 0.35, 1.0]])  # a ray towards the lower right corner
    uv_pin, _ = project(K, p)
    K_cv = K.copy()
    K_cv[:2, 2] -= 0.5
    d, _ = cv2.projectPoints(p.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K_cv, dist)
    u, v = d[0, 0] + 0.5
    ii, jj = np.mgrid[0:96, 0:128]
    blob = np.exp(-((jj + 0.5 - u) ** 2 + (ii + 0.5 - v) ** 2) / 2.0)
    img = np.repeat((blob * 255).astype(np.uint8)[..., None], 3, axis=2)
    out = undistort(img, K, dist)[..., 0].astype(float)
    ii, jj = np.nonzero(out > 60)
    w = out[ii, jj]
    centroid = np.array([(jj * w).sum() / w.sum() + 0.5, (ii * w).sum() / w.sum() + 0.5])
    assert np.linalg.norm(np.array([u, v]) - uv_pin[0]) > 3  # distortion is significant here
    np.testing.assert_allclose(centroid, uv_pin[0], atol=0.5)


# -- synthetic range images ---------------------------------------------------------------


@pytest.mark.parametrize(
    "uniform,rolling",
    [(False, False), (True, False), (False, True)],
    ids=["beams", "uniform", "rolling"],
)
def test_synthetic_range_image_decodes_to_known_points(tmp_path: Path, uniform, rolling):
    scene = RangeScene(uniform=uniform, rolling=rolling)
    p = tmp_path / "seg.tfrecord"
    write_records(p, [make_frame(scene)])
    frame = _open(p).frame(0)
    expected = scene.points()
    assert frame.lidar is not None and frame.lidar.dtype == np.float32
    assert frame.lidar.shape == expected.shape and expected.shape[0] > 100
    err = np.linalg.norm(frame.lidar - expected, axis=1)
    assert err.max() < 0.01
    if rolling:
        # The per-pixel poses matter: ignoring them would move points by up to ~1 m.
        static = RangeScene(uniform=uniform, rolling=False).points()
        assert np.abs(static - expected).max() > 0.5


def test_synthetic_frame_forward_column_and_velocity(tmp_path: Path):
    scene = RangeScene(H=4, W=40)
    scene.ranges[:] = 0
    scene.ranges[2, 20] = 10.0  # the column just right of the middle looks (almost) forward
    p = tmp_path / "fwd.tfrecord"
    write_records(p, [make_frame(scene)])
    frame = _open(p).frame(0)
    pt = frame.lidar[0] - scene.extrinsic[:3, 3]
    assert pt[0] > 9.5 and abs(np.arctan2(pt[1], pt[0]) + np.pi / 40) < 1e-3
    # Image velocity (3, 4, 0) is in the world frame; the ego is yawed by 0.7 rad.
    np.testing.assert_allclose(frame.ego_velocity, rot_z(0.7).T @ [3.0, 4.0, 0.0], atol=1e-9)


def test_multi_frame_log_trajectory_and_tracks(tmp_path: Path):
    recs = []
    for k in range(3):
        T = pose(rot_z(0.1 * k), [2.0 * k, 0.0, 0.0])
        labels = [("car-1", 1, (10.0 - k, 1.0, 0.8), (4.5, 2.0, 1.6), 0.05, (1, 0, 0), (0, 0, 0))]
        if k < 2:
            labels.append(
                ("ped-7", 2, (5.0, -3.0, 0.9), (0.5, 0.5, 1.8), 1.0, (0, 1, 0), (0, 0, 0))
            )
        recs.append(
            make_frame(None, timestamp_us=1_000_000 + 100_000 * k, labels=labels, frame_pose=T)
        )
    p = tmp_path / "three.tfrecord"
    write_records(p, recs)
    log = _open(p)
    assert len(log) == 3
    ts, poses = log.ego_trajectory()
    assert ts.tolist() == [1_000_000, 1_100_000, 1_200_000]
    np.testing.assert_allclose(poses[2][:3, 3], [4.0, 0.0, 0.0])
    tracks = log.tracks()
    assert set(tracks) == {"car-1", "ped-7"}
    car = tracks["car-1"]
    assert car.label == "vehicle" and car.T_world_box.shape == (3, 4, 4)
    T2 = pose(rot_z(0.2), [4.0, 0.0, 0.0])
    np.testing.assert_allclose(car.T_world_box[2][:3, 3], T2[:3, :3] @ [8.0, 1.0, 0.8] + T2[:3, 3])
    assert tracks["ped-7"].timestamps_us.tolist() == [1_000_000, 1_100_000]
    f1 = log.frame(1)
    assert f1.lidar is None and [b.track_id for b in f1.boxes] == ["car-1", "ped-7"]
    np.testing.assert_allclose(f1.boxes[0].velocity, [1, 0, 0])
    with pytest.raises(Exception, match="out of range"):
        log.frame(3)


def test_corrupt_record_through_the_adapter(tmp_path: Path):
    raw_ok = make_frame(RangeScene(H=4, W=16))
    p = tmp_path / "bad.tfrecord"
    write_records(p, [raw_ok, raw_ok])
    data = bytearray(p.read_bytes())
    second = len(data) // 2
    data[second + 12 + 100] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(SourceError) as exc:
        log = _open(p)
        log.frame(1)
    assert str(p) in str(exc.value) and f"byte offset {second}" in str(exc.value)


def test_missing_and_wrong_paths(tmp_path: Path):
    with pytest.raises(SourceError, match="does not exist"):
        _open(tmp_path / "nope.tfrecord")
    junk = tmp_path / "junk.tfrecord"
    junk.write_bytes(b"not a tfrecord at all, just text")
    with pytest.raises(SourceError, match="junk.tfrecord"):
        _open(junk)
    good = tmp_path / "good.tfrecord"
    write_records(good, [make_frame(None)])
    with pytest.raises(SourceError, match="segment"):
        _open(good, segment="x")


def test_real_frame_builds_and_renders_without_lidar(real):
    """The LiDAR-free real frame builds a scene with the geometric prior, and re-rendering the
    source view (CPU backend, reduced resolution) reproduces the source image."""
    from dataclasses import replace

    from p4dsim.geometry import inv_pose
    from p4dsim.render.cpu import CpuRenderer
    from p4dsim.scene.builder import BuildConfig, build_scene

    _, frame = real
    W, H = 192, 128
    small = replace(
        frame,
        image=cv2.resize(frame.image, (W, H), interpolation=cv2.INTER_AREA),
        camera=frame.camera.with_resolution(W, H),
    )
    scene = build_scene(small, BuildConfig(stride=1))
    assert scene.num_gaussians() > 0.5 * W * H
    gs, _ = scene.compose({a.track_id: a.motion.pose(0.0) for a in scene.actors})
    out = CpuRenderer().render(
        gs, inv_pose(small.camera.T_ego_camera)[None], small.camera.K[None], W, H
    )
    assert out.alpha[0].mean() > 0.95
    err = np.abs(out.rgb[0] - small.image / 255.0).mean()
    assert err < 0.05, err
