"""kitti-tracking: real label sequences and a synthetic sequence with oxts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from p4dsim_kitti.calib import KittiCalib
from p4dsim_kitti.labels import box_to_label, read_label_file
from p4dsim_kitti.oxts import EARTH_RADIUS_M
from p4dsim_kitti.tracking import KittiTrackingAdapter, KittiTrackingLog

from p4dsim.errors import SourceError
from p4dsim.plugins import validate_options
from p4dsim.types import Box3D


def _open(path, seq):
    a = KittiTrackingAdapter()
    return a.open(path, validate_options(a, {"sequence": seq}, "t"))


@pytest.mark.parametrize("seq", ["0000", "0001"])
def test_track_speeds_are_plausible(kitti_tracking_dir, seq):
    log = _open(kitti_tracking_dir, seq)
    rows = read_label_file(kitti_tracking_dir / "training" / "label_02" / f"{seq}.txt", True)
    ids = {str(r.track_id) for r in rows if r.type != "DontCare"}
    tracks = log.tracks()
    assert set(tracks) == ids and len(tracks) > 5
    assert len(log) == max(r.frame for r in rows) + 1
    assert log.ego_trajectory() is None  # the sample has no oxts: velocities relative to ego
    _, per_frame, _ = log._motion
    n_vel = 0
    for boxes in per_frame.values():
        for b in boxes:
            if b.velocity is None:
                continue
            n_vel += 1
            assert np.all(np.isfinite(b.velocity))
            assert np.linalg.norm(b.velocity) < 40.0, b
            if b.acceleration is not None:
                assert np.all(np.isfinite(b.acceleration))
    assert n_vel > 100


def test_frames_with_images(kitti_tracking_dir):
    log = _open(kitti_tracking_dir, "0001")
    f = log.frame(10)
    assert f.lidar is None and f.image.shape[2] == 3 and len(f.boxes) > 0
    assert all(b.velocity is not None for b in f.boxes)
    with pytest.raises(SourceError, match=r"image_02/0001/000011.png"):
        log.frame(11)
    with pytest.raises(SourceError, match="calibration file"):
        _open(kitti_tracking_dir, "0007")


def _oxts_line(east: float, north: float, yaw: float, lat0: float, vf: float) -> str:
    """An OXTS packet at ``east``/``north`` metres from (lat0, 0) in the devkit's Mercator."""
    scale = np.cos(np.radians(lat0))
    lon = np.degrees(east / (scale * EARTH_RADIUS_M))
    y0 = scale * EARTH_RADIUS_M * np.log(np.tan(np.radians(90 + lat0) / 2))
    lat = 2 * np.degrees(np.arctan(np.exp((y0 + north) / (scale * EARTH_RADIUS_M)))) - 90
    vals = [lat, lon, 100.0, 0.0, 0.0, yaw, 0, 0, vf, 0, 0] + [0.0] * 14 + [4, 10, 5, 5, 5]
    return " ".join(f"{v:.12f}" for v in vals)


def test_ego_motion_removed_with_oxts(kitti_tracking_dir, tmp_path):
    """The ego drives north-east at 10 m/s, a car ahead in the same direction at 6 m/s and
    accelerating at 1 m/s²: with oxts the boxes carry the car's ground velocity (ego axes),
    without oxts the velocity relative to the ego."""
    base = tmp_path / "trk" / "training"
    (base / "calib").mkdir(parents=True)
    calib_txt = (kitti_tracking_dir / "training" / "calib" / "0001.txt").read_text()
    (base / "calib" / "0005.txt").write_text(calib_txt)
    calib = KittiCalib.from_file(base / "calib" / "0005.txt")
    heading, lat0, n = 0.7, 49.0, 12
    d = np.array([np.cos(heading), np.sin(heading)])
    oxts, rows = [], []
    for k in range(n):
        t = 0.1 * k
        e = 10.0 * t * d
        oxts.append(_oxts_line(e[0], e[1], heading, lat0, 10.0))
        s_car = 20.0 + 6.0 * t + 0.5 * t * t
        # car position relative to the ego (along its heading), in the IMU frame then velodyne
        rel_imu = np.array([s_car - 10.0 * t, 0.0, 0.0, 1.0])
        rel_velo = calib.T_velo_imu @ rel_imu
        box = Box3D("3", "vehicle", rel_velo[:3], np.array([4.0, 1.7, 1.5]), 0.0)
        lb = box_to_label(box, calib.T_velo_rect0, "Car", np.array([1, 2, 3, 4.0]))
        rows.append(
            f"{k} 3 Car 0 0 {lb.alpha:.9f} 1 2 3 4 1.5 1.7 4.0 "
            + " ".join(f"{v:.9f}" for v in lb.location)
            + f" {lb.rotation_y:.9f}"
        )
    (base / "oxts").mkdir()
    (base / "oxts" / "0005.txt").write_text("\n".join(oxts) + "\n")
    (base / "label_02").mkdir()
    (base / "label_02" / "0005.txt").write_text("\n".join(rows) + "\n")
    log = KittiTrackingLog(tmp_path / "trk", "0005")
    assert log.ego_trajectory() is not None and len(log) == n
    _, per_frame, _ = log._motion
    R_velo_imu = calib.T_velo_imu[:3, :3]
    for k in (3, 6):
        (b,) = per_frame[k]
        t = 0.1 * k
        np.testing.assert_allclose(b.velocity, R_velo_imu @ [6.0 + t, 0, 0], atol=1e-3)
        np.testing.assert_allclose(b.acceleration, R_velo_imu @ [1.0, 0, 0], atol=1e-2)
    shutil.rmtree(base / "oxts")
    rel = KittiTrackingLog(tmp_path / "trk", "0005")
    assert rel.ego_trajectory() is None
    (b,) = rel._motion[1][3]
    np.testing.assert_allclose(b.velocity, R_velo_imu @ [6.0 + 0.3 - 10.0, 0, 0], atol=1e-3)
