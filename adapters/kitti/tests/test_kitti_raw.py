"""kitti-raw on drive 2011_09_26_0052 (15 frames) and on small synthetic layouts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from p4dsim_kitti.oxts import oxts_poses, parse_oxts_lines
from p4dsim_kitti.raw import KittiRawAdapter, KittiRawLog

from p4dsim.calibration import edge_alignment
from p4dsim.errors import ConfigError, SourceError
from p4dsim.plugins import validate_options

DRIVE = "2011_09_26/2011_09_26_drive_0052_sync"


def _open(path, **opts):
    a = KittiRawAdapter()
    return a.open(path, validate_options(a, {"date": "2011_09_26", "drive": "0052", **opts}, "t"))


def test_drive_loads_15_frames_with_poses(kitti_raw_dir):
    log = _open(kitti_raw_dir)
    assert len(log) == 15
    ts, T = log.ego_trajectory()
    assert ts.shape == (15,) and T.shape == (15, 4, 4) and np.all(np.diff(ts) > 0)
    np.testing.assert_allclose(np.diff(ts), 1e5, rtol=0.15)  # 10 Hz
    f = log.frame(5)
    assert f.image.shape == (375, 1242, 3) and f.image.dtype == np.uint8
    assert f.lidar.dtype == np.float32 and f.lidar.shape[1] == 3 and len(f.lidar) > 100_000
    assert f.boxes == [] and log.tracks() == {}  # the sample has no tracklet_labels.xml
    np.testing.assert_array_equal(f.T_world_ego, T[5])
    assert f.timestamp_us == ts[5]
    # ego velocity (oxts, rotated into the velodyne frame) agrees with the pose differences
    v_world = (T[6, :3, 3] - T[4, :3, 3]) / ((ts[6] - ts[4]) * 1e-6)
    v_ego = T[5, :3, :3].T @ v_world
    np.testing.assert_allclose(f.ego_velocity, v_ego, atol=0.25)
    assert 2.0 < f.ego_velocity[0] < 2.8  # slow traffic, forward
    # the camera looks forward: optical axis along ego +x, about 0.27 m ahead of the velodyne
    cam = f.camera
    np.testing.assert_allclose(cam.T_ego_camera[:3, 2], [1, 0, 0], atol=0.02)
    assert 0.2 < cam.T_ego_camera[0, 3] < 0.35


def test_oxts_poses_match_pykitti(kitti_raw_dir):
    import pykitti

    ds = pykitti.raw(str(kitti_raw_dir), "2011_09_26", "0052")
    files = sorted((kitti_raw_dir / DRIVE / "oxts" / "data").glob("*.txt"))
    lines = [p.read_text().splitlines()[0] for p in files]
    ours = oxts_poses(parse_oxts_lines(lines, "oxts"))
    ref = np.stack([o.T_w_imu for o in ds.oxts])
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_lidar_depth_edges_land_on_image_edges(kitti_raw_dir):
    """Depth discontinuities of the projected LiDAR coincide with image edges better with the
    loaded calibration than with the calibration shifted 5 px in any direction."""
    log = _open(kitti_raw_dir)
    frames = [log.frame(i) for i in range(len(log))]
    shifts = [(5.0, 0.0), (-5.0, 0.0), (0.0, 5.0), (0.0, -5.0)]
    s0, *others = edge_alignment(frames, [(0.0, 0.0), *shifts])
    shifted = dict(zip(shifts, others, strict=True))
    assert all(s0 > v for v in shifted.values()), (s0, shifted)


def test_tracklets_become_boxes_with_world_velocity(kitti_raw_dir, tmp_path):
    """A tracklet file (written here: the sample has none) gives ego-frame boxes whose
    velocities remove the ego's own motion."""
    root = tmp_path / "raw"
    shutil.copytree(kitti_raw_dir / "2011_09_26", root / "2011_09_26")
    log0 = KittiRawLog(root, "2011_09_26", "0052")
    # a car parked in the world, 10 m ahead of the ego at frame 0: its tracklet is in each
    # frame's velodyne frame
    p_world = log0.T_world_ego[0] @ np.array([10.0, 3.0, -0.8, 1.0])
    poses = ""
    for k in range(len(log0)):
        p = np.linalg.inv(log0.T_world_ego[k]) @ p_world
        poses += (
            f"<item><tx>{p[0]:.9f}</tx><ty>{p[1]:.9f}</ty><tz>{p[2] - 0.75:.9f}</tz><rx>0</rx>"
            f"<ry>0</ry><rz>0.1</rz><state>1</state></item>"
        )
    xml = (
        '<?xml version="1.0"?><boost_serialization><tracklets><count>1</count>'
        "<item><objectType>Car</objectType><h>1.5</h><w>1.6</w><l>4.0</l>"
        f"<first_frame>0</first_frame><poses><count>{len(log0)}</count>{poses}</poses>"
        "<finished>1</finished></item></tracklets></boost_serialization>"
    )
    (root / DRIVE / "tracklet_labels.xml").write_text(xml)
    log = KittiRawLog(root, "2011_09_26", "0052")
    f = log.frame(7)
    (box,) = f.boxes
    assert box.label == "vehicle"
    np.testing.assert_allclose(box.size, [4.0, 1.6, 1.5])
    expected = (np.linalg.inv(log.T_world_ego[7]) @ p_world)[:3]
    np.testing.assert_allclose(box.center, expected, atol=1e-6)
    np.testing.assert_allclose(box.velocity, 0.0, atol=1e-6)  # parked: no ground velocity
    assert set(log.tracks()) == {"0"} and len(log.tracks()["0"].timestamps_us) == 15


def test_missing_oxts_and_velodyne(kitti_raw_dir, tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(kitti_raw_dir / "2011_09_26", root / "2011_09_26")
    shutil.rmtree(root / DRIVE / "oxts")
    shutil.rmtree(root / DRIVE / "velodyne_points")
    log = KittiRawLog(root, "2011_09_26", "0052")
    assert len(log) == 15 and log.ego_trajectory() is None
    f = log.frame(3)
    assert f.lidar is None
    np.testing.assert_array_equal(f.T_world_ego, np.eye(4))
    assert f.timestamp_us == 300_000


def test_bad_paths_and_options(kitti_raw_dir, tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        _open(tmp_path / "nowhere")
    with pytest.raises(SourceError, match=r"2011_09_27.*dates under"):
        KittiRawLog(kitti_raw_dir, "2011_09_27", "0052")
    with pytest.raises(SourceError, match=r"drive_0001_sync.*drive_0052_sync"):
        KittiRawLog(kitti_raw_dir, "2011_09_26", "0001")
    a = KittiRawAdapter()
    with pytest.raises(ConfigError, match="date"):
        validate_options(a, {"date": "26-09-2011", "drive": "0052"}, "t")
    with pytest.raises(ConfigError, match="colour"):
        validate_options(a, {"date": "2011_09_26", "drive": "0052", "colour": 1}, "t")
    assert validate_options(a, {"date": "2011_09_26", "drive": 52}, "t").drive == "0052"
    with pytest.raises(ConfigError, match="out of range"):
        _open(kitti_raw_dir).frame(15)
