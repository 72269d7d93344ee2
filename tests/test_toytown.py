"""Tests of the toytown world (the ground-truth oracle) and its adapter."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.errors import ConfigError
from p4dsim.geometry import inv_pose, project, transform_points, yaw_of
from p4dsim.source import SourceSpec
from p4dsim.toytown import ToytownLog, ToytownWorld, toytown_camera
from p4dsim.toytown.layout import KERB_HEIGHT, ROAD_LEFT, ROAD_RIGHT
from p4dsim.toytown.lidar import LIDAR_MAX_RANGE, LIDAR_POSITION
from p4dsim.toytown.shading import SEMANTIC_CLASSES

W, H = 320, 96


@pytest.fixture(scope="module")
def world() -> ToytownWorld:
    return ToytownWorld(seed=0)


@pytest.fixture(scope="module")
def cam():
    return toytown_camera(W, H)


def camera_pose(world: ToytownWorld, cam, t: float) -> np.ndarray:
    return world.ego_pose(t) @ cam.T_ego_camera


@pytest.fixture(scope="module")
def gt0(world, cam):
    return world.render(cam.K, W, H, camera_pose(world, cam, 0.0), 0.0)


def pixel_rays(cam, T_world_camera):
    """World directions [H, W, 3] with unit camera z through every pixel centre."""
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    K = cam.K
    dc = np.stack([(jj - K[0, 2]) / K[0, 0], (ii - K[1, 2]) / K[1, 1], np.ones_like(jj)], -1)
    return dc @ T_world_camera[:3, :3].T


def test_ground_depth_matches_plane_intersection(world, cam, gt0):
    T = camera_pose(world, cam, 0.0)
    d = pixel_rays(cam, T)
    o = T[:3, 3]
    sem = gt0.semantic
    road = sem == SEMANTIC_CLASSES.index("road")
    walk = sem == SEMANTIC_CLASSES.index("sidewalk")
    assert road.sum() > 0.15 * W * H
    # road: plane z = 0; raised ground: plane z = kerb height (kerb faces excluded by normal)
    t_road = -o[2] / d[..., 2]
    np.testing.assert_allclose(gt0.depth[road], t_road[road], rtol=1e-5)
    up = walk & (gt0.normal[..., 2] > 0.99)
    assert up.sum() > 100
    t_walk = (KERB_HEIGHT - o[2]) / d[..., 2]
    np.testing.assert_allclose(gt0.depth[up], t_walk[up], rtol=1e-5)
    # the hit points of road pixels lie between the kerbs
    y = o[1] + t_road[road] * d[..., 1][road]
    assert np.all((y >= ROAD_RIGHT - 1e-6) & (y <= ROAD_LEFT + 1e-6))
    # sky has infinite depth, everything else finite and positive
    sky = sem == SEMANTIC_CLASSES.index("sky")
    assert sky.any() and np.all(np.isinf(gt0.depth[sky]))
    assert np.all(gt0.depth[~sky] > 0) and np.all(np.isfinite(gt0.depth[~sky]))


def test_actor_pixels_match_projected_boxes(world, cam, gt0):
    T = camera_pose(world, cam, 0.0)
    T_cam_world = inv_pose(T)
    states = world.vehicles(0.0)
    seen = np.unique(gt0.actor_id[gt0.actor_id >= 0])
    assert world.track_ids.index("car0") in seen
    assert len(seen) >= 3
    for k in seen:
        st = states[k]
        l, w, h = st.size
        local = np.array(
            [
                [sx * l, sy * w, sz * h]
                for sx in (-0.5, 0.5)
                for sy in (-0.5, 0.5)
                for sz in (-0.5, 0.5)
            ]
        )
        corners = transform_points(T_cam_world @ st.T_world_box, local)
        rows, cols = np.nonzero(gt0.actor_id == k)
        if np.all(corners[:, 2] > 0.1):
            uv, _ = project(cam.K, corners)
            assert (
                cols.min() + 0.5 >= uv[:, 0].min() - 1e-6
                and cols.max() + 0.5 <= uv[:, 0].max() + 1e-6
            )
            assert (
                rows.min() + 0.5 >= uv[:, 1].min() - 1e-6
                and rows.max() + 0.5 <= uv[:, 1].max() + 1e-6
            )
        # depth of actor pixels is within the box's depth range
        assert gt0.depth[rows, cols].min() >= corners[:, 2].min() - 1e-6
    # the lead vehicle is not occluded: its projected centre pixel shows it
    k = world.track_ids.index("car0")
    uv, _ = project(cam.K, transform_points(T_cam_world, states[k].T_world_box[:3, 3][None]))
    j, i = int(uv[0, 0]), int(uv[0, 1])
    assert gt0.actor_id[i, j] == k


def test_render_is_textured(gt0):
    img = gt0.rgb.astype(np.float64)
    assert img.shape == (H, W, 3) and gt0.rgb.dtype == np.uint8
    for name, min_std in (("road", 3.0), ("building", 10.0), ("vehicle", 8.0)):
        m = gt0.semantic == SEMANTIC_CLASSES.index(name)
        assert m.sum() > 50
        assert img[m].mean(axis=1).std() > min_std, name
    # a near road patch (no lane markings needed) still varies
    patch = img[H - 12 : H, W // 2 - 30 : W // 2 + 30].mean(axis=2)
    assert patch.std() > 2.0


def test_supersampling_keeps_centre_geometry(world, cam, gt0):
    T = camera_pose(world, cam, 0.0)
    for s in (2, 3):
        g = world.render(cam.K, W, H, T, 0.0, supersample=s)
        np.testing.assert_array_equal(g.depth, gt0.depth)
        np.testing.assert_array_equal(g.actor_id, gt0.actor_id)
        diff = np.abs(g.rgb.astype(int) - gt0.rgb.astype(int))
        assert np.median(diff) <= 3


def test_render_deterministic_per_seed(world, cam, gt0):
    T = camera_pose(world, cam, 0.0)
    again = ToytownWorld(seed=0).render(cam.K, W, H, T, 0.0)
    np.testing.assert_array_equal(again.rgb, gt0.rgb)
    np.testing.assert_array_equal(again.depth, gt0.depth)
    other = ToytownWorld(seed=1)
    g1 = other.render(cam.K, W, H, T, 0.0)
    assert np.abs(g1.rgb.astype(int) - gt0.rgb.astype(int)).mean() > 5
    # the structure survives: the lead vehicle is ahead in the ego lane and brakes
    lead = other.vehicles(0.0)[other.track_ids.index("car0")]
    assert 15.0 <= lead.T_world_box[0, 3] <= 20.0 and abs(lead.T_world_box[1, 3]) < 0.5
    assert other.vehicles(1.0)[0].acceleration[0] < -1.0


def test_lead_vehicle_braking_motion(world):
    k = world.track_ids.index("car0")
    s0 = world.vehicles(0.0)[k]
    x0, v0 = s0.T_world_box[0, 3], s0.velocity[0]
    tb, a = 0.5, 3.0
    for t in (0.0, 0.3, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0):
        tau = np.clip(t - tb, 0.0, v0 / a)
        x = x0 + v0 * min(t, tb) + v0 * tau - a * tau**2 / 2
        st = world.vehicles(t)[k]
        assert st.T_world_box[0, 3] == pytest.approx(x, abs=1e-9)
        assert st.velocity[0] == pytest.approx(v0 - a * tau, abs=1e-9)
        assert st.T_world_box[2, 3] == pytest.approx(st.size[2] / 2)
    assert world.vehicles(8.0)[k].velocity[0] == 0.0
    assert world.vehicles(1.0)[k].acceleration[0] == pytest.approx(-a)


def test_vehicle_kinematics_are_consistent(world):
    """Velocity, acceleration and yaw rate of every vehicle match finite differences."""
    h = 1e-4
    labels = set()
    for t in (0.2, 1.3, 2.7):
        prev, cur, nxt = world.vehicles(t - h), world.vehicles(t), world.vehicles(t + h)
        for a, b, c in zip(prev, cur, nxt, strict=True):
            labels.add(b.label)
            pa, pb, pc = (s.T_world_box[:3, 3] for s in (a, b, c))
            np.testing.assert_allclose((pc - pa) / (2 * h), b.velocity, atol=1e-5)
            np.testing.assert_allclose((pc - 2 * pb + pa) / h**2, b.acceleration, atol=2e-2)
            dyaw = (yaw_of(c.T_world_box) - yaw_of(a.T_world_box)) / (2 * h)
            assert dyaw == pytest.approx(b.yaw_rate, abs=1e-6)
            assert pb[2] == pytest.approx(b.size[2] / 2)
    assert labels == {"vehicle"}
    kinds = {
        "parked": any(np.linalg.norm(s.velocity) == 0 for s in world.vehicles(1.0)),
        "turning": any(s.yaw_rate != 0 for s in world.vehicles(1.0)),
        "oncoming": any(s.velocity[0] < -1 for s in world.vehicles(1.0)),
    }
    assert all(kinds.values()), kinds


def test_ego_motion(world):
    ts = np.array([0.0, 0.5, 1.5, 3.0])
    T = world.ego_pose(ts)
    assert T.shape == (4, 4, 4)
    assert np.allclose(T[:, 2, 3], 0.0) and np.allclose(T[:, 1, 3], 0.0)
    h = 1e-5
    v_fd = (world.ego_pose(ts + h)[:, :3, 3] - world.ego_pose(ts - h)[:, :3, 3]) / (2 * h)
    v = np.stack([world.ego_velocity(t) for t in ts])
    np.testing.assert_allclose(v_fd, v, atol=1e-4)
    assert v[0, 0] == pytest.approx(8.0)


def test_lidar_points_lie_on_surfaces(world):
    t = 0.4
    T = world.ego_pose(t)
    pts = world.lidar(T, t)
    assert pts.dtype == np.float32 and pts.shape[1] == 3 and len(pts) > 30_000
    rng_ = np.linalg.norm(pts - LIDAR_POSITION, axis=1)
    assert rng_.max() <= LIDAR_MAX_RANGE + 1e-3
    pw = transform_points(T, pts.astype(np.float64))
    on_vehicle = np.zeros(len(pw), dtype=bool)
    for s in world.vehicles(t):
        loc = transform_points(inv_pose(s.T_world_box), pw)
        on_vehicle |= np.all(np.abs(loc) <= s.size / 2 + 1e-3, axis=1)
    assert on_vehicle.sum() > 100
    on_road = (pw[:, 1] > ROAD_RIGHT + 0.05) & (pw[:, 1] < ROAD_LEFT - 0.05) & ~on_vehicle
    assert on_road.sum() > 5000
    np.testing.assert_allclose(pw[on_road, 2], 0.0, atol=1e-4)
    # points near the lead vehicle lie on its box surface
    k = world.track_ids.index("car0")
    st = world.vehicles(t)[k]
    local = transform_points(inv_pose(st.T_world_box), pw)
    half = st.size / 2
    near = np.all(np.abs(local) <= half + 0.05, axis=1)
    assert near.sum() > 50
    on_face = np.min(np.abs(np.abs(local[near]) - half), axis=1)
    assert on_face.max() < 1e-4
    # nothing is inside any vehicle
    for s in world.vehicles(t):
        loc = transform_points(inv_pose(s.T_world_box), pw)
        inside = np.all(np.abs(loc) < s.size / 2 - 1e-3, axis=1)
        assert not inside.any()


def test_ground_height(world):
    xy = np.array([[0.0, 0.0], [10.0, ROAD_LEFT + 1.0], [5.0, ROAD_RIGHT - 1.0], [3.0, -6.0]])
    np.testing.assert_allclose(world.ground_height(xy), [0.0, KERB_HEIGHT, KERB_HEIGHT, 0.0])


def test_log_frames_and_boxes():
    log = SourceSpec.parse("toytown:?seed=2&frames=5&width=160&height=48").open()
    assert isinstance(log, ToytownLog)
    assert len(log) == 5 and log.log_id == "toytown-seed2" and log.dataset == "toytown"
    fr = log.frame(3)
    assert fr.image.shape == (48, 160, 3)
    assert fr.camera.K[0, 0] == pytest.approx(721.5377 * 160 / 1242)
    assert fr.camera.K[0, 2] == pytest.approx(80.0) and fr.camera.K[1, 2] == pytest.approx(24.0)
    assert fr.camera.T_ego_camera[2, 3] == pytest.approx(1.65)
    assert fr.source.frame_index == 3 and fr.source.dataset == "toytown"
    assert fr.timestamp_us - log.frame(0).timestamp_us == 300_000
    t = 0.3
    np.testing.assert_allclose(fr.T_world_ego, log.world.ego_pose(t))
    np.testing.assert_allclose(fr.ego_velocity, log.world.ego_velocity(t))
    assert fr.lidar is not None and fr.lidar.dtype == np.float32
    states = {s.track_id: s for s in log.world.vehicles(t)}
    assert {b.track_id for b in fr.boxes} >= {"car0", "car1", "car2"}
    R_ego_world = fr.T_world_ego[:3, :3].T
    for b in fr.boxes:
        st = states[b.track_id]
        np.testing.assert_allclose(
            transform_points(fr.T_world_ego, b.center[None])[0], st.T_world_box[:3, 3], atol=1e-9
        )
        assert b.yaw == pytest.approx(float(yaw_of(fr.T_world_ego @ st.T_world_box)), abs=1e-9)
        np.testing.assert_allclose(b.velocity, R_ego_world @ st.velocity, atol=1e-9)
        np.testing.assert_allclose(b.acceleration, R_ego_world @ st.acceleration, atol=1e-9)
        np.testing.assert_allclose(b.size, st.size)
        assert b.yaw_rate == st.yaw_rate
    # the rendered image of the frame is the world's render at the frame's camera pose
    gt = log.world.render(fr.camera.K, 160, 48, fr.T_world_ego @ fr.camera.T_ego_camera, t)
    np.testing.assert_array_equal(fr.image, gt.rgb)
    ts, poses = log.ego_trajectory()
    assert ts.dtype == np.int64 and ts.shape == (5,) and poses.shape == (5, 4, 4)
    tracks = log.tracks()
    assert set(tracks) == set(log.world.track_ids)
    tr = tracks["car0"]
    assert tr.T_world_box.shape == (5, 4, 4) and np.array_equal(tr.timestamps_us, ts)
    np.testing.assert_allclose(tr.T_world_box[3], states["car0"].T_world_box)
    with pytest.raises(ConfigError):
        log.frame(5)


def test_option_validation():
    with pytest.raises(ConfigError, match="bogus"):
        SourceSpec.parse("toytown:?bogus=1").open()
    with pytest.raises(ConfigError, match="frames"):
        SourceSpec.parse("toytown:?frames=0").open()
    with pytest.raises(ConfigError):
        SourceSpec.parse("toytown:some/path").open()
