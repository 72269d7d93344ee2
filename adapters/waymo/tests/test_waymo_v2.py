"""v2 reader on small synthetic components written with the official column names, and the
waymo-v2 exporter read back with pyarrow alone."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from p4dsim_waymo.adapter import WaymoAdapter, WaymoOptions
from waymo_synth import RangeScene, jpeg, pose, real_vehicle_pose_file, rot_z

from p4dsim.errors import ConfigError, SourceError
from p4dsim.geometry import pose_from_xyz_yaw

T16 = pa.list_(pa.float32(), 16)


def _open(path: Path, **opts):
    return WaymoAdapter().open(path, WaymoOptions(**opts))


def _write(root: Path, component: str, seg: str, columns: dict[str, tuple[pa.DataType, list]]):
    table = pa.table({name: pa.array(vals, type=t) for name, (t, vals) in columns.items()})
    path = root / component / f"{seg}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _write_segment(root: Path, seg: str, camera_key: pa.DataType = pa.int8(), lidar=True):
    """Two frames: FRONT and FRONT_LEFT images, calibrations, poses, boxes, TOP range image."""
    ts = [1_000_000, 1_100_000]
    cams = [1, 2] if camera_key == pa.int8() else ["FRONT", "FRONT_LEFT"]
    poses = [pose(rot_z(0.3 + 0.01 * k), [10.0 + k, -2.0, 0.5]) for k in range(2)]
    rows = [(t, c, k) for k, t in enumerate(ts) for c in cams]
    ci = "[CameraImageComponent]"
    _write(
        root,
        "camera_image",
        seg,
        {
            "key.segment_context_name": (pa.string(), [seg] * 4),
            "key.frame_timestamp_micros": (pa.int64(), [t for t, _, _ in rows]),
            "key.camera_name": (camera_key, [c for _, c, _ in rows]),
            f"{ci}.image": (pa.binary(), [jpeg(64, 48, seed=k) for _, _, k in rows]),
            f"{ci}.pose.transform": (T16, [poses[k].reshape(-1).tolist() for _, _, k in rows]),
            f"{ci}.velocity.linear_velocity.x": (pa.float32(), [2.0] * 4),
            f"{ci}.velocity.linear_velocity.y": (pa.float32(), [0.0] * 4),
            f"{ci}.velocity.linear_velocity.z": (pa.float32(), [0.0] * 4),
        },
    )
    cc = "[CameraCalibrationComponent]"
    intr = {
        "f_u": 50.0,
        "f_v": 51.0,
        "c_u": 32.0,
        "c_v": 24.0,
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "k3": 0.0,
    }
    _write(
        root,
        "camera_calibration",
        seg,
        {
            "key.segment_context_name": (pa.string(), [seg] * 2),
            "key.camera_name": (camera_key, cams),
            **{f"{cc}.intrinsic.{k}": (pa.float64(), [v, v + 1.0]) for k, v in intr.items()},
            f"{cc}.extrinsic.transform": (
                T16,
                [
                    pose(np.eye(3), [1.5, 0, 2.0]).reshape(-1).tolist(),
                    pose(rot_z(0.8), [1.0, 0.5, 2.0]).reshape(-1).tolist(),
                ],
            ),
            f"{cc}.width": (pa.int32(), [64, 64]),
            f"{cc}.height": (pa.int32(), [48, 48]),
        },
    )
    vp = "[VehiclePoseComponent]"
    _write(
        root,
        "vehicle_pose",
        seg,
        {
            "key.segment_context_name": (pa.string(), [seg] * 2),
            "key.frame_timestamp_micros": (pa.int64(), ts),
            f"{vp}.world_from_vehicle.transform": (T16, [p.reshape(-1).tolist() for p in poses]),
        },
    )
    lb = "[LiDARBoxComponent]"
    _write(
        root,
        "lidar_box",
        seg,
        {
            "key.segment_context_name": (pa.string(), [seg] * 3),
            "key.frame_timestamp_micros": (pa.int64(), [ts[0], ts[0], ts[1]]),
            "key.laser_object_id": (pa.string(), ["car", "ped", "car"]),
            f"{lb}.box.center.x": (pa.float64(), [12.0, 6.0, 11.5]),
            f"{lb}.box.center.y": (pa.float64(), [1.0, -2.0, 1.0]),
            f"{lb}.box.center.z": (pa.float64(), [0.9, 0.9, 0.9]),
            f"{lb}.box.size.x": (pa.float64(), [4.5, 0.6, 4.5]),
            f"{lb}.box.size.y": (pa.float64(), [2.0, 0.6, 2.0]),
            f"{lb}.box.size.z": (pa.float64(), [1.6, 1.8, 1.6]),
            f"{lb}.box.heading": (pa.float64(), [0.1, -1.0, 0.12]),
            f"{lb}.type": (pa.int8(), [1, 2, 1]),
            f"{lb}.speed.x": (pa.float64(), [3.0, 0.0, 3.0]),
            f"{lb}.speed.y": (pa.float64(), [0.5, 1.0, 0.5]),
            f"{lb}.speed.z": (pa.float64(), [0.0, 0.0, 0.0]),
            f"{lb}.acceleration.x": (pa.float64(), [0.2, 0.0, 0.2]),
            f"{lb}.acceleration.y": (pa.float64(), [0.0, 0.0, 0.0]),
            f"{lb}.acceleration.z": (pa.float64(), [0.0, 0.0, 0.0]),
        },
    )
    scene = None
    if lidar:
        scene = RangeScene(H=6, W=32, rolling=True, seed=4)
        scene.frame_pose = poses[0]
        fr = np.linspace(0.0, 1.0, scene.W)
        img = np.zeros((scene.H, scene.W, 6), dtype=np.float32)
        img[..., 2] = 0.3 + 0.01 * fr[None, :]
        img[..., 3:6] = poses[0][:3, 3] + fr[None, :, None] * poses[0][:3, 0]
        scene.pose_image = img
        ri = np.zeros((scene.H, scene.W, 4), np.float32)
        ri[..., 0] = scene.ranges
        li, lc, lp = "[LiDARComponent]", "[LiDARCalibrationComponent]", "[LiDARPoseComponent]"
        shape_t = pa.list_(pa.int32(), 3)
        _write(
            root,
            "lidar",
            seg,
            {
                "key.segment_context_name": (pa.string(), [seg]),
                "key.frame_timestamp_micros": (pa.int64(), [ts[0]]),
                "key.laser_name": (pa.int8(), [1]),
                f"{li}.range_image_return1.values": (
                    pa.list_(pa.float32()),
                    [ri.reshape(-1).tolist()],
                ),
                f"{li}.range_image_return1.shape": (shape_t, [list(ri.shape)]),
            },
        )
        _write(
            root,
            "lidar_pose",
            seg,
            {
                "key.segment_context_name": (pa.string(), [seg]),
                "key.frame_timestamp_micros": (pa.int64(), [ts[0]]),
                "key.laser_name": (pa.int8(), [1]),
                f"{lp}.range_image_return1.values": (
                    pa.list_(pa.float32()),
                    [img.reshape(-1).tolist()],
                ),
                f"{lp}.range_image_return1.shape": (shape_t, [list(img.shape)]),
            },
        )
        _write(
            root,
            "lidar_calibration",
            seg,
            {
                "key.segment_context_name": (pa.string(), [seg]),
                "key.laser_name": (pa.int8(), [1]),
                f"{lc}.extrinsic.transform": (T16, [scene.extrinsic.reshape(-1).tolist()]),
                f"{lc}.beam_inclination.min": (pa.float64(), [scene.incl_min]),
                f"{lc}.beam_inclination.max": (pa.float64(), [scene.incl_max]),
                f"{lc}.beam_inclination.values": (pa.list_(pa.float64()), [scene.values]),
            },
        )
    return ts, poses, scene


def test_v2_reader_round_trip(tmp_path: Path):
    ts, poses, scene = _write_segment(tmp_path, "segA")
    log = _open(tmp_path)
    assert len(log) == 2 and log.log_id == "segA"
    f0 = log.frame(0)
    assert f0.timestamp_us == ts[0] and f0.image.shape == (48, 64, 3)
    expected_img = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(jpeg(64, 48, 0), np.uint8), 1), cv2.COLOR_BGR2RGB
    )
    np.testing.assert_array_equal(f0.image, expected_img)
    np.testing.assert_allclose(f0.camera.K, [[50, 0, 32], [0, 51, 24], [0, 0, 1]])
    assert f0.camera.T_ego_camera[0, 2] > 0.999  # FRONT looks along ego +x
    np.testing.assert_allclose(f0.T_world_ego, poses[0], atol=1e-4)
    np.testing.assert_allclose(f0.ego_velocity, rot_z(0.3).T @ [2.0, 0, 0], atol=1e-5)
    assert [b.track_id for b in f0.boxes] == ["car", "ped"]
    car = f0.boxes[0]
    assert car.label == "vehicle" and f0.boxes[1].label == "pedestrian"
    np.testing.assert_allclose(car.center, [12.0, 1.0, 0.9])
    np.testing.assert_allclose(car.size, [4.5, 2.0, 1.6])
    np.testing.assert_allclose(car.velocity, [3.0, 0.5, 0.0])
    np.testing.assert_allclose(car.acceleration, [0.2, 0.0, 0.0])
    # LiDAR with per-pixel poses: decoded within 1 cm of the encoded points.
    assert f0.lidar is not None
    assert np.linalg.norm(f0.lidar - scene.points(), axis=1).max() < 0.01
    f1 = log.frame(1)
    assert f1.lidar is None and [b.track_id for b in f1.boxes] == ["car"]
    t, P = log.ego_trajectory()
    assert t.tolist() == ts
    tracks = log.tracks()
    np.testing.assert_allclose(
        tracks["car"].T_world_box[1],
        poses[1] @ pose_from_xyz_yaw([11.5, 1.0, 0.9], 0.12),
        atol=1e-4,
    )
    left = _open(tmp_path, camera="FRONT_LEFT").frame(1)
    np.testing.assert_allclose(left.camera.K[0, 0], 51.0)


def test_v2_string_camera_keys_and_segment_choice(tmp_path: Path):
    _write_segment(tmp_path, "segA", camera_key=pa.string(), lidar=False)
    _write_segment(tmp_path, "segB", lidar=False)
    with pytest.raises(ConfigError, match="segA, segB"):
        _open(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        _open(tmp_path, segment="segC")
    a = _open(tmp_path, segment="segA")
    b = _open(tmp_path, segment="segB")
    fa, fb = a.frame(0), b.frame(0)
    np.testing.assert_array_equal(fa.image, fb.image)
    assert fa.lidar is None and len(fa.boxes) == 2


def test_v2_missing_pieces(tmp_path: Path):
    with pytest.raises(SourceError, match="camera_image"):
        _open(tmp_path)
    _write_segment(tmp_path, "segA", lidar=False)
    (tmp_path / "camera_calibration" / "segA.parquet").unlink()
    with pytest.raises(SourceError, match="camera_calibration"):
        _open(tmp_path)


# -- exporter ----------------------------------------------------------------------------


def _native_dataset(path: Path) -> dict:
    """A small native dataset: one run, variant 'v1', 3 frames at 10 Hz, 2 actors."""
    from p4dsim.io.codecs import encode_depth, encode_rgb
    from p4dsim.io.dataset import DatasetWriter

    W, H = 32, 24
    K = np.array([[30.0, 0, 16.0], [0, 30.0, 12.0], [0, 0, 1]])
    T_ego_cam = pose(np.array([[0, 0, 1.0], [-1, 0, 0], [0, -1, 0]]), [1.5, 0.0, 1.6])
    truth = {"frames": [], "actors": []}
    writer = DatasetWriter(path, rows_per_shard=2)
    rng = np.random.default_rng(0)
    for k in range(3):
        T_we = pose(rot_z(0.05 * k), [3.0 * k * 0.1 * 10, 0.2 * k, 0.0])
        yy, xx = np.mgrid[0:H, 0:W]
        rgb = np.stack([xx * 6 + 10 * k, yy * 8, np.full_like(xx, 120)], -1).astype(np.uint8)
        depth = rng.uniform(1, 50, (H, W)).astype(np.float32)
        ts = 5_000_000 + 100_000 * k
        writer.add(
            {
                "run_id": "lane-shift",
                "variant_id": "v1",
                "frame_index": k,
                "timestamp_us": ts,
                "t_s": 0.1 * k,
                "width": W,
                "height": H,
                "K": K.reshape(-1).tolist(),
                "T_world_camera": (T_we @ T_ego_cam).reshape(-1).tolist(),
                "T_world_ego": T_we.reshape(-1).tolist(),
                "ego_speed": 3.0,
                "rgb": encode_rgb(rgb, "png"),
                "rgb_format": "png",
                "depth": encode_depth(depth, "float16"),
                "depth_format": "float16",
                "coverage": 0.9,
                "source_dataset": "waymo",
                "source_log": "seg123_abc",
                "source_frame": 0,
            },
            [
                {
                    "run_id": "lane-shift",
                    "variant_id": "v1",
                    "frame_index": k,
                    "track_id": "car-1",
                    "label": "vehicle",
                    "center_world": [20.0 + 0.5 * k, 2.0, 0.8],
                    "yaw_world": 0.1,
                    "size": [4.5, 2.0, 1.6],
                    "box2d": [3.0, 4.0, 13.0 + k, 10.0],
                    "visible_fraction": 0.8,
                },
                {
                    "run_id": "lane-shift",
                    "variant_id": "v1",
                    "frame_index": k,
                    "track_id": "ped-2",
                    "label": "pedestrian",
                    "center_world": [8.0, -3.0, 0.9],
                    "yaw_world": 3.1,
                    "size": [0.6, 0.6, 1.8],
                    "box2d": None if k == 1 else [20.0, 5.0, 24.0, 15.0],
                    "visible_fraction": 0.0 if k == 1 else 0.5,
                },
            ],
        )
        truth["frames"].append({"ts": ts, "T_we": T_we, "rgb": rgb, "depth": depth})
    writer.commit({"scenario": {"name": "lane-shift"}})
    truth.update(K=K, T_ego_cam=T_ego_cam, W=W, H=H)
    return truth


def test_export_read_back_by_official_names(tmp_path: Path):
    from p4dsim_waymo.exporter import WaymoV2Exporter

    truth = _native_dataset(tmp_path / "ds")
    out = tmp_path / "v2"
    summary = WaymoV2Exporter().export(tmp_path / "ds", out)
    assert summary.frames == 3 and summary.objects == 6
    seg = "p4dsim__seg123_abc__lane-shift__v1"
    read = {
        c: pq.read_table(out / c / f"{seg}.parquet")
        for c in (
            "camera_image",
            "camera_calibration",
            "camera_box",
            "vehicle_pose",
            "lidar_box",
            "camera_depth",
        )
    }
    ts = [f["ts"] for f in truth["frames"]]

    ci = read["camera_image"].to_pydict()
    assert ci["key.segment_context_name"] == [seg] * 3
    assert ci["key.frame_timestamp_micros"] == ts and ci["key.camera_name"] == [1, 1, 1]
    for k, f in enumerate(truth["frames"]):
        img = cv2.imdecode(np.frombuffer(ci["[CameraImageComponent].image"][k], np.uint8), 1)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        assert img.shape == f["rgb"].shape
        assert np.abs(img.astype(int) - f["rgb"]).mean() < 3  # JPEG, quality 95
        np.testing.assert_allclose(
            np.reshape(ci["[CameraImageComponent].pose.transform"][k], (4, 4)), f["T_we"], atol=1e-5
        )
    # Finite-difference velocity of the poses (world frame), middle frame: 1 m per 0.1 s in x.
    vx = ci["[CameraImageComponent].velocity.linear_velocity.x"][1]
    vy = ci["[CameraImageComponent].velocity.linear_velocity.y"][1]
    assert vx == pytest.approx(30.0, rel=1e-5) and vy == pytest.approx(2.0, rel=1e-5)
    wz = ci["[CameraImageComponent].velocity.angular_velocity.z"][1]
    assert wz == pytest.approx(0.5, rel=1e-6)

    vp = read["vehicle_pose"].to_pydict()
    for k, f in enumerate(truth["frames"]):
        T = np.reshape(vp["[VehiclePoseComponent].world_from_vehicle.transform"][k], (4, 4))
        np.testing.assert_allclose(T, f["T_we"], atol=1e-5)

    cc = read["camera_calibration"].to_pylist()[0]
    p = "[CameraCalibrationComponent]"
    assert (cc[f"{p}.intrinsic.f_u"], cc[f"{p}.intrinsic.c_u"], cc[f"{p}.intrinsic.c_v"]) == (
        30.0,
        16.0,
        12.0,
    )
    assert all(cc[f"{p}.intrinsic.{k}"] == 0.0 for k in ("k1", "k2", "p1", "p2", "k3"))
    assert (cc[f"{p}.width"], cc[f"{p}.height"]) == (truth["W"], truth["H"])
    ext = np.reshape(cc[f"{p}.extrinsic.transform"], (4, 4))
    # Waymo camera axes: x forward (= OpenCV z), y left (= -OpenCV x), z up (= -OpenCV y).
    np.testing.assert_allclose(ext[:3, 0], truth["T_ego_cam"][:3, 2], atol=1e-6)
    np.testing.assert_allclose(ext[:3, 1], -truth["T_ego_cam"][:3, 0], atol=1e-6)
    np.testing.assert_allclose(ext[:3, 3], [1.5, 0.0, 1.6], atol=1e-6)

    cb = read["camera_box"].to_pylist()
    assert [(r["key.frame_timestamp_micros"], r["key.camera_object_id"]) for r in cb] == [
        (ts[0], "car-1"),
        (ts[1], "car-1"),
        (ts[2], "car-1"),
        (ts[0], "ped-2"),
        (ts[2], "ped-2"),
    ]
    b = cb[1]
    assert (b["[CameraBoxComponent].box.center.x"], b["[CameraBoxComponent].box.center.y"]) == (
        8.5,
        7.0,
    )
    assert (b["[CameraBoxComponent].box.size.x"], b["[CameraBoxComponent].box.size.y"]) == (
        11.0,
        6.0,
    )
    assert b["[CameraBoxComponent].type"] == 1 and cb[3]["[CameraBoxComponent].type"] == 2

    lb = read["lidar_box"].to_pylist()
    assert len(lb) == 6
    car2 = next(
        r
        for r in lb
        if r["key.laser_object_id"] == "car-1" and r["key.frame_timestamp_micros"] == ts[2]
    )
    T = truth["frames"][2]["T_we"]
    c_ego = T[:3, :3].T @ (np.array([21.0, 2.0, 0.8]) - T[:3, 3])
    got = [car2[f"[LiDARBoxComponent].box.center.{a}"] for a in "xyz"]
    np.testing.assert_allclose(got, c_ego, atol=1e-9)
    assert car2["[LiDARBoxComponent].box.heading"] == pytest.approx(0.1 - 0.1)
    assert [car2[f"[LiDARBoxComponent].box.size.{a}"] for a in "xyz"] == [4.5, 2.0, 1.6]
    # Ground speed 5 m/s along world x, expressed in the ego axes (yaw 0.1).
    speed = [car2[f"[LiDARBoxComponent].speed.{a}"] for a in "xyz"]
    np.testing.assert_allclose(speed, rot_z(0.1).T @ [5.0, 0, 0], atol=1e-9)

    cd = read["camera_depth"].to_pylist()
    for k, f in enumerate(truth["frames"]):
        r = cd[k]
        assert (
            r["key.frame_timestamp_micros"] == ts[k]
            and r["[CameraDepthComponent].format"] == "float16"
        )
        d = np.frombuffer(r["[CameraDepthComponent].depth"], "<f2").reshape(truth["H"], truth["W"])
        np.testing.assert_array_equal(d, f["depth"].astype(np.float16))

    # The exported folder is itself a v2 root the reader opens.
    log = _open(out)
    fr = log.frame(2)
    assert fr.timestamp_us == ts[2] and [b.track_id for b in fr.boxes] == ["car-1", "ped-2"]
    np.testing.assert_allclose(fr.camera.T_ego_camera, truth["T_ego_cam"], atol=1e-6)


def test_export_schema_matches_official_vehicle_pose(tmp_path: Path):
    from p4dsim_waymo.exporter import WaymoV2Exporter

    _native_dataset(tmp_path / "ds")
    out = tmp_path / "v2"
    WaymoV2Exporter().export(tmp_path / "ds", out)
    official = pq.read_schema(real_vehicle_pose_file())
    ours_by_component = {
        c: pq.read_schema(next((out / c).glob("*.parquet")))
        for c in (
            "vehicle_pose",
            "camera_image",
            "camera_box",
            "lidar_box",
            "camera_depth",
            "camera_calibration",
        )
    }
    assert ours_by_component["vehicle_pose"].names == official.names
    for comp, ours in ours_by_component.items():
        shared = [n for n in official.names if n in ours.names]
        assert "key.segment_context_name" in shared, comp
        for n in shared:
            assert ours.field(n).type == official.field(n).type, (comp, n)
    # The transform type is shared by every 4x4 transform column of the export.
    t = official.field("[VehiclePoseComponent].world_from_vehicle.transform").type
    assert (
        ours_by_component["camera_image"].field("[CameraImageComponent].pose.transform").type == t
    )


def test_entry_points_registered():
    from importlib.metadata import entry_points

    from p4dsim.plugins import Adapter, Exporter

    adapters = {ep.name: ep for ep in entry_points(group="p4dsim.adapters")}
    exporters = {ep.name: ep for ep in entry_points(group="p4dsim.exporters")}
    if "waymo" not in adapters:
        pytest.skip("p4dsim-waymo is not installed (pip install -e adapters/waymo)")
    assert issubclass(adapters["waymo"].load(), Adapter)
    assert issubclass(exporters["waymo-v2"].load(), Exporter)
