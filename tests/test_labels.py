"""Labels on toytown: 2D boxes from the rendered visibility match the oracle's per-actor masks;
truncation and visible fraction against simple references."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.geometry import make_pose, pose_from_xyz_yaw, rot_z
from p4dsim.io.rows import actor_rows
from p4dsim.labels import alone_pixels, box2d_from_mask, box_iou, corners_camera, truncation
from p4dsim.render import get_renderer
from p4dsim.render.frames import render_frame
from p4dsim.scenario.model import Scenario
from p4dsim.scenario.timeline import make_timeline
from p4dsim.scene.builder import build_scene
from p4dsim.source import SourceSpec
from p4dsim.toytown.adapter import toytown_camera

W, H = 414, 125


@pytest.fixture(scope="module")
def toytown():
    log = SourceSpec.parse(f"toytown:?width={W}&height={H}").open()
    return log, build_scene(log.frame(0))


def test_box2d_matches_oracle_masks(toytown):
    log, scene = toytown
    sc = Scenario.model_validate(
        {
            "source": {"adapter": "toytown"},
            "duration_s": 0.6,
            "fps": 10,
            "ego": {"perturbations": [{"type": "lateral_offset", "offset_m": 0.5, "ramp_s": 0.6}]},
        }
    )
    tl = make_timeline(sc, scene, log, "test")
    renderer = get_renderer("cpu")
    checked = 0
    for k in (0, 3):
        fr = render_frame(scene, tl, k, renderer)
        poses = {tid: P[k] for tid, P in tl.actor_poses.items()}
        alone = alone_pixels(scene, poses, tl.T_world_camera[k], tl.camera, renderer)
        rows = actor_rows(scene, tl, fr, {"frame_index": k}, alone)
        cam = tl.camera
        gt = log.world.render(
            cam.K, cam.width, cam.height, scene.T_log_scene @ tl.T_world_camera[k], tl.times[k]
        )
        for r in rows:
            if r["visible_fraction"] is None or r["visible_fraction"] <= 0.5:
                continue
            if r["visible_pixels"] < 400:  # small and far: one pixel of blur moves IoU a lot
                continue
            oracle = box2d_from_mask(gt.actor_id == log.world.track_ids.index(r["track_id"]))
            iou = box_iou(r["box2d"], oracle)
            assert iou >= 0.9, (k, r["track_id"], r["box2d"], oracle, iou)
            checked += 1
    assert checked >= 5


def test_truncation_reference():
    cam = toytown_camera(200, 100)
    T_cam_world = np.linalg.inv(cam.T_ego_camera)
    # straight ahead: fully inside
    c = corners_camera(T_cam_world, pose_from_xyz_yaw([20, 0, 0.75], 0.0), np.array([4, 2, 1.5]))
    assert truncation(c, cam) == 0.0
    # far to the side: half the projected width (cube at the image edge straddling it)
    x = 20.0
    u_edge = cam.width  # right image border: u = fx * X/Z + cx
    lateral = (u_edge - cam.K[0, 2]) * x / cam.K[0, 0]
    box = np.array([0.02, 2.0, 0.02])  # thin along depth and height: a horizontal segment
    c = corners_camera(T_cam_world, pose_from_xyz_yaw([x + 0.5, -lateral, 1.65], 0.0), box)
    assert truncation(c, cam) == pytest.approx(0.5, abs=0.02)
    # entirely behind the camera
    c = corners_camera(T_cam_world, pose_from_xyz_yaw([-10, 0, 0.75], 0.0), np.array([4, 2, 1.5]))
    assert truncation(c, cam) is None


def test_visible_fraction_counts_occlusion(toytown):
    """An actor hidden behind another reports a lower visible fraction than in the open."""
    log, scene = toytown
    renderer = get_renderer("cpu")
    sc = Scenario.model_validate(
        {
            "source": {"adapter": "toytown"},
            "duration_s": 0.1,
            "fps": 10,
            "ego": {"base": "stationary"},
        }
    )
    tl = make_timeline(sc, scene, log, "test")
    i0 = scene.actor_index("car0")
    T0 = tl.actor_poses["car0"][0]
    poses = {t: P[0] for t, P in tl.actor_poses.items()}
    alone = alone_pixels(scene, poses, tl.T_world_camera[0], tl.camera, renderer)
    fr = render_frame(scene, tl, 0, renderer)
    row = next(r for r in actor_rows(scene, tl, fr, {}, alone) if r["track_id"] == "car0")
    assert alone[i0] > 0 and row["visible_fraction"] > 0.9
    before = row["visible_fraction"]
    # Put car1 across the lane halfway to car0, its observed left side facing the camera.
    blocker = make_pose(rot_z(np.pi / 2), T0[:3, 3] * np.array([0.5, 1, 1]))
    tl.actor_poses["car1"][0] = blocker
    fr = render_frame(scene, tl, 0, renderer)
    rows = actor_rows(
        scene,
        tl,
        fr,
        {},
        alone_pixels(
            scene,
            {t: P[0] for t, P in tl.actor_poses.items()},
            tl.T_world_camera[0],
            tl.camera,
            renderer,
        ),
    )
    row = next(r for r in rows if r["track_id"] == "car0")
    assert row["visible_fraction"] < 0.5 * before


def _truncation_reference(corners_cam: np.ndarray, cam, near: float = 0.1) -> float | None:
    """Scalar reference: clip the box at the near plane edge by edge, project, intersect the
    convex hull with the image rectangle."""
    from shapely.geometry import MultiPoint
    from shapely.geometry import box as rect

    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4)]
    edges += [(0, 4), (1, 5), (2, 6), (3, 7)]
    pts = [p for p in corners_cam if p[2] >= near]
    for i, j in edges:
        a, b = corners_cam[i], corners_cam[j]
        if (a[2] - near) * (b[2] - near) < 0:
            pts.append(a + (near - a[2]) / (b[2] - a[2]) * (b - a))
    if len(pts) < 3:
        return None
    uv = [
        (cam.K[0, 0] * p[0] / p[2] + cam.K[0, 2], cam.K[1, 1] * p[1] / p[2] + cam.K[1, 2])
        for p in pts
    ]
    hull = MultiPoint(uv).convex_hull
    if hull.area <= 0:
        return None
    frac = 1.0 - hull.intersection(rect(0, 0, cam.width, cam.height)).area / hull.area
    return 0.0 if frac < 1e-9 else min(frac, 1.0)


def test_label_geometry_matches_per_actor_reference(toytown):
    """The vectorised per-timeline label geometry equals a per-frame, per-actor computation,
    including an actor driving past the camera (near-plane clipping) and a removed one."""
    from p4dsim.geometry import box_corners, inv_pose, yaw_of
    from p4dsim.labels import label_geometry

    log, scene = toytown
    sc = Scenario.model_validate(
        {
            "source": {"adapter": "toytown"},
            "duration_s": 1.0,
            "fps": 10,
            "ego": {"perturbations": [{"type": "yaw_offset", "offset_deg": 25, "ramp_s": 1.0}]},
        }
    )
    tl = make_timeline(sc, scene, log, "test")
    # one actor sweeps from in front of the camera to behind it; one is removed
    first, second = scene.actors[0].track_id, scene.actors[1].track_id
    T_cam = tl.T_world_camera
    xs = np.linspace(8.0, -6.0, len(tl.times))
    tl.actor_poses[first] = np.stack(
        [T_cam[k] @ make_pose(rot_z(0.3), [0.5, 0.2, x]) for k, x in enumerate(xs)]
    )
    del tl.actor_poses[second]
    geom = label_geometry(scene, tl)
    cam = tl.camera
    seen_none = seen_partial = 0
    for k in range(len(tl.times)):
        Tcw = inv_pose(T_cam[k])
        for i, actor in enumerate(scene.actors):
            P = tl.actor_poses.get(actor.track_id)
            assert geom.present[k, i] == (P is not None)
            if P is None:
                continue
            T = P[k]
            np.testing.assert_array_equal(geom.center_world[k, i], T[:3, 3])
            assert geom.yaw_world[k, i] == pytest.approx(np.arctan2(T[1, 0], T[0, 0]), abs=1e-12)
            c = Tcw[:3, :3] @ T[:3, 3] + Tcw[:3, 3]
            np.testing.assert_allclose(geom.center_camera[k, i], c, atol=1e-9)
            fwd = Tcw[:3, :3] @ T[:3, 0]
            assert geom.yaw_camera[k, i] == pytest.approx(np.arctan2(-fwd[2], fwd[0]), abs=1e-9)
            corners = box_corners(T[:3, 3], actor.size, float(yaw_of(T))) @ Tcw[:3, :3].T
            ref = _truncation_reference(corners + Tcw[:3, 3], cam)
            got = geom.truncation[k, i]
            if ref is None:
                assert np.isnan(got)
                seen_none += 1
            else:
                assert got == pytest.approx(ref, abs=1e-9)
                seen_partial += 0.0 < ref < 1.0
            v = tl.actor_velocity.get(actor.track_id)
            if v is not None:
                assert geom.speed[k, i] == pytest.approx(np.linalg.norm(v[k, :2]), abs=1e-9)
    assert seen_none >= 1 and seen_partial >= 3


def test_tilted_boxes_keep_their_rotation():
    """A box with a full rotation (upright in another frame than the one it is given in) has
    exactly its rotated corners and pose; an upright box (no rotation) is unchanged, bit for
    bit."""
    from p4dsim.geometry import BOX_CORNER_SIGNS, box_corners
    from p4dsim.types import Box3D

    size, c = np.array([4.0, 2.0, 1.5]), np.array([10.0, -2.0, 0.5])
    a = 0.05
    R_x = np.array([[1.0, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    R = R_x @ rot_z(0.7)
    up = Box3D("a", "vehicle", c, size, 0.7)
    tilted = Box3D("a", "vehicle", c, size, 0.7, rotation=R)
    np.testing.assert_array_equal(up.pose(), pose_from_xyz_yaw(c, 0.7))
    np.testing.assert_array_equal(up.corners(), box_corners(c, size, 0.7))
    np.testing.assert_array_equal(tilted.pose(), make_pose(R, c))
    np.testing.assert_allclose(tilted.corners(), BOX_CORNER_SIGNS * size / 2 @ R.T + c, atol=1e-12)
    # the corners are the box's local corners moved by its pose
    local = np.linalg.inv(tilted.pose()) @ np.c_[tilted.corners(), np.ones(8)].T
    np.testing.assert_allclose(np.abs(local[:3].T), np.tile(size / 2, (8, 1)), atol=1e-12)
