"""Novel-view depth consistency: analytic reference cases and a scene rendered from LiDAR."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.eval.consistency import (
    consistency_absrel,
    consistency_reference,
    jump_pose,
    reprojected_depth,
    static_points,
)
from p4dsim.scene.depth import project_lidar
from p4dsim.source import SourceSpec
from p4dsim.types import Box3D, Camera

W, H = 160, 60


def _camera() -> Camera:
    K = np.array([[80.0, 0, W / 2], [0, 80.0, H / 2], [0, 0, 1]])
    T = np.eye(4)  # camera 1.6 m above the ego origin, looking along ego +x
    T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
    T[2, 3] = 1.6
    return Camera(K, W, H, T)


def _points() -> np.ndarray:
    """A dense ground plane (z = 0) and a wall at x = 20 m, ego frame."""
    rng = np.random.default_rng(1)
    g = np.c_[rng.uniform(3, 20, 40000), rng.uniform(-12, 12, 40000), np.zeros(40000)]
    w = np.c_[np.full(20000, 20.0), rng.uniform(-12, 12, 20000), rng.uniform(0, 5, 20000)]
    return np.vstack([g, w])


def test_zero_for_the_lidar_itself_and_scale_error_is_absrel():
    cam = _camera()
    pts = _points()
    for d in (0.0, 1.0, -2.0):
        T_cam = jump_pose(d) @ cam.T_ego_camera
        ref = reprojected_depth(pts, cam, T_cam)
        assert (ref > 0).sum() > 500
        # depth "rendered" from the same points in the same (moved) camera: exactly consistent
        moved = Camera(cam.K, W, H, T_cam)
        rendered = project_lidar(pts, moved)
        assert consistency_absrel(rendered, ref) == pytest.approx(0.0, abs=1e-6)
        for s in (0.9, 1.05, 1.2):
            assert consistency_absrel(rendered * s, ref) == pytest.approx(abs(s - 1), rel=1e-5)


def test_points_in_boxes_and_occluded_points_are_left_out():
    cam = _camera()
    pts = _points()
    car = Box3D("c", "vehicle", np.array([10.0, 0.0, 0.75]), np.array([4.0, 2.0, 1.5]), 0.3)
    on_car = np.c_[np.full(500, 10.0), np.linspace(-0.5, 0.5, 500), np.full(500, 0.75)]
    kept = static_points(np.vstack([pts, on_car]), [car])
    assert len(kept) < len(pts)  # the ground under the (grown) box goes too
    assert not np.any(np.all(np.abs(kept - [10.0, 0.0, 0.75]) < [0.5, 0.6, 0.5], axis=1))
    # a sparse near fence in front of the wall: wall points seen between its posts are hidden
    fence = np.c_[
        np.full(3000, 8.0),
        np.repeat(np.linspace(-3, 3, 30), 100),
        np.tile(np.linspace(0.5, 3, 100), 30),
    ]
    ref = reprojected_depth(np.vstack([pts, fence]), cam, cam.T_ego_camera)
    u0, u1 = int(W / 2 - 80 * 3 / 8), int(W / 2 + 80 * 3 / 8)
    v0, v1 = int(H / 2 - 80 * 1.1 / 8), int(H / 2 + 80 * 1.1 / 8)
    window = ref[v0:v1, u0:u1]
    assert (window > 0).any() and window[window > 0].max() < 9.0


def test_scene_rendered_from_its_lidar_is_consistent():
    """A toytown scene rendered at its own source pose and 1 m to the left: its depth agrees
    with its LiDAR within a few percent, and a known scale error shows as that AbsRel."""
    from p4dsim.render import get_renderer
    from p4dsim.render.frames import render_frame
    from p4dsim.scenario.timeline import Timeline
    from p4dsim.scene.builder import build_scene

    log = SourceSpec.parse("toytown:?frames=2&width=621&height=188").open()
    f = log.frame(0)
    scene = build_scene(f)
    r = get_renderer("cpu")
    T = np.stack([jump_pose(0.0), jump_pose(1.0)])
    poses = {a.track_id: np.repeat(a.motion.pose(0.0)[None], 2, 0) for a in scene.actors}
    tl = Timeline(np.zeros(2), T, poses, scene.camera)
    for i in range(2):
        fr = render_frame(scene, tl, i, r)
        ref = consistency_reference(f, f.boxes, f.camera, T[i] @ f.camera.T_ego_camera)
        assert (ref > 0).sum() > 200
        e = consistency_absrel(fr.depth, ref)
        assert e < 0.05
        assert abs(consistency_absrel(fr.depth * 1.3, ref) - 0.3) < e + 0.02


def test_vehicles_still_hide_what_is_behind_them():
    """Points of a road user are no reference, but they still occlude the static world."""
    cam = _camera()
    pts = _points()
    car = Box3D("c", "vehicle", np.array([10.0, 0.0, 1.0]), np.array([1.0, 4.0, 2.0]), 0.0)
    yy, zz = np.meshgrid(np.linspace(-1.9, 1.9, 60), np.linspace(0.1, 1.9, 40))
    face = np.c_[np.full(yy.size, 9.5), yy.ravel(), zz.ravel()]
    keep = np.r_[np.ones(len(pts), bool), np.zeros(len(face), bool)]
    ref = reprojected_depth(np.vstack([pts, face]), cam, cam.T_ego_camera, keep=keep)
    u = int(W / 2)
    v = int(H / 2 + 80 * (1.6 - 1.0) / 9.5)  # behind the middle of the car's face
    assert ref[v - 2 : v + 3, u - 5 : u + 5].max() == 0  # wall behind the car: hidden
    assert (ref[:, :5] > 0).any()  # the wall beside it: visible
    from p4dsim.eval.consistency import consistency_reference
    from p4dsim.types import Frame, SourceInfo

    f = Frame(
        np.zeros((H, W, 3), np.uint8),
        cam,
        np.vstack([pts, face]).astype(np.float32),
        [car],
        np.eye(4),
        np.zeros(3),
        0,
        SourceInfo("x", "x", 0),
    )
    ref2 = consistency_reference(f, [car], cam, cam.T_ego_camera)
    assert ref2[v - 2 : v + 3, u - 5 : u + 5].max() == 0 and (ref2[:, :5] > 0).any()
