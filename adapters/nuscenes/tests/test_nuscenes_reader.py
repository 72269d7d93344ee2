"""The nuscenes reader on the real scene-0916, against the devkit's own answers."""

from __future__ import annotations

import numpy as np
import pytest
from nus_helpers import SCENE, VERSION
from p4dsim_nuscenes.adapter import NuScenesAdapter
from p4dsim_nuscenes.categories import label_of
from p4dsim_nuscenes.lidar import load_pcd_bin
from p4dsim_nuscenes.log import PIXEL_OFFSET, record_pose

from p4dsim.calibration import edge_alignment
from p4dsim.errors import ConfigError, SourceError
from p4dsim.geometry import inv_pose, project, transform_points
from p4dsim.plugins import get_adapter, validate_options
from p4dsim.source import SourceSpec


@pytest.fixture(scope="module")
def frame10(nus_log):
    return nus_log.frame(10)


def test_source_string_opens_41_keyframes(nus_root):
    spec = SourceSpec.parse(f"nuscenes:{nus_root}?version={VERSION}&scene={SCENE}&frame=3")
    log = spec.open()
    assert log.dataset == "nuscenes" and log.log_id == SCENE and len(log) == 41
    assert spec.frame == 3
    assert isinstance(get_adapter("nuscenes"), NuScenesAdapter)
    ts = log.timestamps_us
    assert np.all((np.diff(ts) > 3e5) & (np.diff(ts) < 7e5))  # keyframes at about 2 Hz


def test_frame_image_camera_and_lidar(nus_log, frame10, nusc):
    f = frame10
    assert f.image.shape == (900, 1600, 3) and f.image.dtype == np.uint8
    assert (f.camera.width, f.camera.height) == (1600, 900)
    cs = nusc.get("calibrated_sensor", nus_log.cam_sd[10]["calibrated_sensor_token"])
    K = np.asarray(cs["camera_intrinsic"])
    np.testing.assert_allclose(f.camera.K[:2, 2], K[:2, 2] + PIXEL_OFFSET)
    # the camera looks forward (optical axis along ego +x), 1.5 m above the ego origin
    np.testing.assert_allclose(f.camera.T_ego_camera[:3, 2], [1, 0, 0], atol=0.02)
    assert 1.3 < f.camera.T_ego_camera[2, 3] < 1.7
    assert f.lidar.dtype == np.float32 and f.lidar.shape == (34752, 3)
    # a 32-beam LiDAR on the roof: most returns within 80 m, ground about 1.8 m below it
    r = np.linalg.norm(f.lidar[:, :2], axis=1)
    assert np.median(r) < 30 and np.percentile(f.lidar[:, 2], 10) < 0.3
    assert f.timestamp_us == nus_log.cam_sd[10]["timestamp"]
    assert f.source.frame_index == 10 and f.extras["notes"] == []


def test_lidar_compensated_to_camera_time(nus_log, frame10, nusc):
    """The cloud is the keyframe LiDAR moved by the ego displacement between the LiDAR's and
    the camera's timestamps: world points agree exactly, and the correction is the ego
    velocity times the time difference."""
    sd_l = nus_log.lidar_sd[10]
    raw = load_pcd_bin(nus_root_file(nus_log, sd_l))
    T_el = record_pose(nusc.get("calibrated_sensor", sd_l["calibrated_sensor_token"]))
    T_wl = record_pose(nusc.get("ego_pose", sd_l["ego_pose_token"]))
    world_ref = transform_points(T_wl @ T_el, raw)
    world_ours = transform_points(frame10.T_world_ego, frame10.lidar)
    np.testing.assert_allclose(world_ours, world_ref, atol=1e-3)
    dt = (sd_l["timestamp"] - frame10.timestamp_us) * 1e-6
    assert abs(dt) > 0.005  # the two sensors are not exposed at the same instant
    uncompensated = transform_points(T_el, raw)
    shift = np.median(frame10.lidar - uncompensated, axis=0)
    expected = frame10.ego_velocity * dt  # ego moved forward: points move back by v·dt
    np.testing.assert_allclose(shift[:2], expected[:2], atol=0.05)
    assert np.linalg.norm(expected) > 0.05


def nus_root_file(log, sd):
    return log.root / sd["filename"]


def test_lidar_depth_edges_land_on_image_edges(nus_log):
    """Depth discontinuities of the compensated LiDAR coincide with image edges better than
    with the projection shifted 5 px in any direction (8 keyframes across the scene)."""
    frames = [nus_log.frame(i) for i in range(0, 41, 5)]
    shifts = [(5.0, 0.0), (-5.0, 0.0), (0.0, 5.0), (0.0, -5.0)]
    s0, *others = edge_alignment(frames, [(0.0, 0.0), *shifts])
    shifted = dict(zip(shifts, others, strict=True))
    assert all(s0 > v for v in shifted.values()), (s0, shifted)


def test_visible_boxes_match_devkit_projection(nus_log, nusc):
    """Every box the devkit calls visible in CAM_FRONT (any corner in the image), at every
    keyframe: it projects inside the image (some corner; its centre too where the devkit has
    every corner inside), and each of its 8 projected corners lands within 1 px of the
    devkit's own projection of the same corner (the devkit moves the box with the camera
    sample_data's ego pose; the box carries the ego's pitch and roll against the map frame,
    which a yaw alone cannot)."""
    from nuscenes.utils.geometry_utils import BoxVisibility, view_points

    n_boxes = n_all = 0
    worst = 0.0
    for i in range(len(nus_log)):
        sd = nus_log.cam_sd[i]
        _, ref_boxes, K = nusc.get_sample_data(sd["token"], box_vis_level=BoxVisibility.ANY)
        f_boxes, _ = nus_log.boxes(i, nus_log._ego_pose(sd))
        cam = nus_log.camera(i, 1600, 900)
        T_ce = inv_pose(cam.T_ego_camera)
        by_track = {b.track_id: b for b in f_boxes}
        all_in = {
            b.token for b in nusc.get_sample_data(sd["token"], box_vis_level=BoxVisibility.ALL)[1]
        }
        for rb in ref_boxes:
            b = by_track[nusc.get("sample_annotation", rb.token)["instance_token"]]
            corners_cam = transform_points(T_ce, b.corners())
            if np.any(corners_cam[:, 2] <= 0.1):
                continue  # a corner behind the camera: no pinhole projection to compare
            uv, _ = project(cam.K, corners_cam)
            uv -= PIXEL_OFFSET  # nuScenes pixels
            # devkit corner order: front face (x +l/2) top-left, top-right, bottom-right,
            # bottom-left, then the rear face; matched as sets, then one to one
            ref_uv = view_points(rb.corners(), K, normalize=True)[:2].T
            d = np.linalg.norm(uv[:, None, :] - ref_uv[None, :, :], axis=2)
            assert sorted(d.argmin(axis=1)) == list(range(8))
            err = float(d.min(axis=1).max())
            worst = max(worst, err)
            assert err <= 1.0, (i, rb.token, err)
            # visible: some corner inside the image (nuScenes pixels: [0, 1600) x [0, 900))
            assert np.any(np.all((uv >= 0) & (uv < [1600, 900]), axis=1)), (i, rb.token)
            if rb.token in all_in:  # every corner inside: so is the centre
                c_uv, _ = project(cam.K, transform_points(T_ce, b.center[None]))
                assert np.all((c_uv[0] >= 0) & (c_uv[0] <= [1600, 900]))
                n_all += 1
            n_boxes += 1
    print(f"{n_boxes} visible boxes ({n_all} entirely in the image), worst corner {worst:.2e} px")
    assert n_boxes > 500 and n_all > 300, (n_boxes, n_all)


def test_box_velocities_labels_and_tracks(nus_log, frame10, nusc):
    T_ew = inv_pose(frame10.T_world_ego)
    cats = frame10.extras["nuscenes_categories"]
    sample = nus_log.samples[10]
    anns = {nusc.get("sample_annotation", a)["instance_token"]: a for a in sample["anns"]}
    assert len(frame10.boxes) == len(anns) == 71
    tracks = nus_log.tracks()
    assert len(tracks) == 95
    for b in frame10.boxes:
        assert b.label == label_of(cats[b.track_id])
        v = nusc.box_velocity(anns[b.track_id])
        if np.all(np.isfinite(v)):
            np.testing.assert_allclose(b.velocity, T_ew[:3, :3] @ v, atol=1e-9)
        else:
            assert b.velocity is None
        # the track's pose at the keyframe is the box, in world coordinates
        tr = tracks[b.track_id]
        k = int(np.flatnonzero(tr.timestamps_us == frame10.timestamp_us)[0])
        np.testing.assert_allclose(
            transform_points(frame10.T_world_ego, b.center[None])[0],
            tr.T_world_box[k, :3, 3],
            atol=1e-9,
        )
        np.testing.assert_allclose(tr.size, b.size)
    assert {"vehicle", "pedestrian", "cyclist", "other"} <= {b.label for b in frame10.boxes}
    # buses of the scene are vehicles, their kind kept for exports
    assert any(c.startswith("vehicle.bus") for c in cats.values())


def test_tracks_pass_through_the_frame_boxes(nus_log, frame10):
    """On the camera clock, every logged track at the frame's time is the frame's box (centre
    and full rotation): an actor built from the image starts on its box. At the annotations'
    own instants (the LiDAR's, ~35 ms after the camera) a moving car would be 17 cm off."""
    from p4dsim.scene.motion import interpolate_poses

    tracks = nus_log.tracks()
    worst = moved = 0.0
    for b in frame10.boxes:
        tr = tracks[b.track_id]
        t = (tr.timestamps_us - frame10.timestamp_us) * 1e-6
        T = interpolate_poses(t, tr.T_world_box, np.array([0.0]))[0]
        worst = max(worst, float(np.abs(T - frame10.T_world_ego @ b.pose()).max()))
        if len(t) > 1 and b.velocity is not None:
            moved = max(moved, float(np.linalg.norm(b.velocity)) * 0.034)
    assert worst < 1e-9 and moved > 0.1, (worst, moved)


def test_ego_trajectory_from_every_camera_pose(nus_log, nusc):
    ts, T = nus_log.ego_trajectory()
    n_cam = sum(1 for r in nusc.sample_data if r["channel"] == "CAM_FRONT")
    assert len(ts) == n_cam == 240  # 41 keyframes + 199 sweep records (files absent)
    assert np.all(np.diff(ts) > 0)
    rate = (len(ts) - 1) / ((ts[-1] - ts[0]) * 1e-6)
    np.testing.assert_allclose(rate, 12.0, rtol=0.05)  # the camera runs at 12 Hz
    assert set(nus_log.timestamps_us) <= set(ts)
    speed = np.linalg.norm(np.diff(T[:, :3, 3], axis=0), axis=1) / (np.diff(ts) * 1e-6)
    assert np.all(np.isfinite(speed)) and speed.min() >= 0 and speed.max() <= 20
    for i in (0, 20, 40):
        v = nus_log.frame(i).ego_velocity
        assert np.all(np.isfinite(v)) and 0 <= np.linalg.norm(v) <= 20


def test_lidar_sweeps_absent_are_skipped_with_a_note(nus_root, nus_log):
    from p4dsim_nuscenes.log import NuScenesLog

    log = NuScenesLog(nus_root, VERSION, SCENE, lidar_sweeps=3)
    f = log.frame(5)
    np.testing.assert_array_equal(f.lidar, nus_log.frame(5).lidar)  # only the keyframe's
    assert len(f.extras["notes"]) == 2 and "sweeps/LIDAR_TOP" in f.extras["notes"][0]


def test_category_mapping():
    assert label_of("vehicle.car") == "vehicle"
    assert label_of("vehicle.bus.rigid") == "vehicle"
    assert label_of("vehicle.bicycle") == label_of("vehicle.motorcycle") == "cyclist"
    assert label_of("human.pedestrian.adult") == "pedestrian"
    assert label_of("movable_object.trafficcone") == label_of("static_object.bicycle_rack")
    assert label_of("animal") == "other"


def test_options(nus_root):
    a = NuScenesAdapter()
    with pytest.raises(ConfigError, match="camera"):
        validate_options(a, {"camera": "CAM_TOP"}, "t")
    with pytest.raises(ConfigError, match="colour"):
        validate_options(a, {"colour": 1}, "t")
    o = validate_options(a, {"scene": SCENE}, "t")
    assert o.camera == "CAM_FRONT" and o.version == "v1.0-mini"
    with pytest.raises(SourceError, match=r"no scene 'scene-0001' \(scenes: scene-0916\)"):
        a.open(nus_root, validate_options(a, {"scene": "scene-0001"}, "t"))
    with pytest.raises(SourceError, match=r"no CAM_BACK data"):
        a.open(nus_root, validate_options(a, {"camera": "CAM_BACK"}, "t"))
    with pytest.raises(SourceError, match=r"v1.0-trainval does not exist.*v1.0-mini"):
        a.open(nus_root, validate_options(a, {"version": "v1.0-trainval"}, "t"))
