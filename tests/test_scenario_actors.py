"""Actor behaviours against closed-form expectations (1 cm, 0.1°), and rule selection."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.errors import ConfigError
from p4dsim.geometry import pose_from_xyz_yaw, yaw_of
from p4dsim.scenario.actors import resolve_motions
from p4dsim.scenario.model import ActorsModel
from p4dsim.scene.gaussians import GaussianSet
from p4dsim.scene.motion import RigidMotion
from p4dsim.scene.scene4d import Actor, Scene4D
from p4dsim.toytown.adapter import toytown_camera
from p4dsim.types import SourceInfo

T = np.linspace(0.0, 5.0, 51)
POS_TOL, YAW_TOL = 0.01, np.deg2rad(0.1)
SIZE = np.array([4.5, 1.8, 1.5])


def actor(tid, x, y, yaw, speed, label="vehicle"):
    T0 = pose_from_xyz_yaw([x, y, 0.75], yaw)
    v = speed * np.array([np.cos(yaw), np.sin(yaw), 0.0])
    return Actor(tid, label, SIZE, GaussianSet.empty(), RigidMotion.from_velocity(T0, v))


@pytest.fixture()
def scene():
    actors = [
        actor("lead", 20.0, 0.0, 0.0, 8.0),
        actor("right", 5.0, -3.5, 0.0, 10.0),
        actor("oncoming", 60.0, 3.5, np.pi, 9.0),
        actor("walker", 12.0, 6.0, np.pi / 2, 1.2, label="pedestrian"),
    ]
    return Scene4D(
        GaussianSet.empty(), actors, toytown_camera(64, 20), np.eye(4), SourceInfo("t", "t", 0), 0
    )


def poses(scene, spec, tid):
    model = ActorsModel.model_validate(spec)
    motions = resolve_motions(model, scene, None, "test.yaml")
    m = motions[tid]
    return None if m is None else m.poses(T)


def rule(tid, behaviour):
    return {
        "default": "constant_velocity",
        "rules": [{"select": {"track_id": tid}, "behaviour": behaviour}],
    }


def test_constant_velocity(scene):
    P = poses(scene, {"default": "constant_velocity"}, "oncoming")
    np.testing.assert_allclose(P[:, 0, 3], 60.0 - 9.0 * T, atol=POS_TOL)
    np.testing.assert_allclose(P[:, 1, 3], 3.5, atol=POS_TOL)
    np.testing.assert_allclose(np.cos(yaw_of(P)), -1.0, atol=1e-9)


def test_constant_acceleration_with_turn(scene):
    a, w = 1.5, np.deg2rad(10.0)
    P = poses(
        scene,
        rule(
            "right", {"type": "constant_acceleration", "acceleration_mps2": a, "yaw_rate_dps": 10.0}
        ),
        "right",
    )
    # x' = (v0 + a t) cos(w t), y' = (v0 + a t) sin(w t): integrate numerically (fine grid).
    tt = np.linspace(0, 5, 500_001)
    sp = 10.0 + a * tt
    x = 5.0 + np.concatenate(
        [
            [0],
            np.cumsum(
                0.5 * (sp[1:] * np.cos(w * tt[1:]) + sp[:-1] * np.cos(w * tt[:-1])) * np.diff(tt)
            ),
        ]
    )
    y = -3.5 + np.concatenate(
        [
            [0],
            np.cumsum(
                0.5 * (sp[1:] * np.sin(w * tt[1:]) + sp[:-1] * np.sin(w * tt[:-1])) * np.diff(tt)
            ),
        ]
    )
    idx = np.round(T / 1e-5).astype(int)
    np.testing.assert_allclose(P[:, 0, 3], x[idx], atol=POS_TOL)
    np.testing.assert_allclose(P[:, 1, 3], y[idx], atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), w * T, atol=YAW_TOL)


def test_brake(scene):
    d, t0 = 3.0, 0.5
    P = poses(scene, rule("lead", {"type": "brake", "deceleration_mps2": d, "start_s": t0}), "lead")
    tau = np.clip(T - t0, 0, 8.0 / d)
    x = 20.0 + 8.0 * np.minimum(T, t0) + 8.0 * tau - 0.5 * d * tau**2
    np.testing.assert_allclose(P[:, 0, 3], x, atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), 0.0, atol=YAW_TOL)


def test_stop(scene):
    P = poses(scene, rule("lead", {"type": "stop", "start_s": 1.0}), "lead")
    np.testing.assert_allclose(P[:, 0, 3], 20.0 + 8.0 * np.minimum(T, 1.0), atol=POS_TOL)
    P = poses(scene, rule("lead", "stop"), "lead")
    np.testing.assert_allclose(P[:, 0, 3], 20.0, atol=POS_TOL)


def test_cut_in(scene):
    t0, dur = 0.5, 2.0
    P = poses(
        scene,
        rule("right", {"type": "cut_in", "lane_offset_m": 0.0, "start_s": t0, "duration_s": dur}),
        "right",
    )
    x = np.clip((T - t0) / dur, 0, 1)
    y = -3.5 + 3.5 * (0.5 - 0.5 * np.cos(np.pi * x))
    dy = np.where((x > 0) & (x < 1), 3.5 * np.pi / (2 * dur) * np.sin(np.pi * x), 0.0)
    np.testing.assert_allclose(P[:, 0, 3], 5.0 + 10.0 * T, atol=POS_TOL)
    np.testing.assert_allclose(P[:, 1, 3], y, atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), np.arctan2(dy, 10.0), atol=YAW_TOL)
    # Into the lane left of the ego: the actor ends 3.5 m left of the ego's source position.
    P = poses(
        scene, rule("right", {"type": "cut_in", "lane_offset_m": 3.5, "duration_s": 1.0}), "right"
    )
    assert P[-1, 1, 3] == pytest.approx(3.5, abs=POS_TOL)


def test_waypoints(scene):
    pts = [[0, 20, 0, 0], [1, 28, 0.5, 10], [3, 40, 3, 20]]
    P = poses(scene, rule("lead", {"type": "waypoints", "points": pts}), "lead")
    for t, x, y, yaw in pts:
        k = int(round(t * 10))
        assert P[k, 0, 3] == pytest.approx(x, abs=1e-9)
        assert P[k, 1, 3] == pytest.approx(y, abs=1e-9)
        assert np.rad2deg(yaw_of(P[k])) == pytest.approx(yaw, abs=1e-6)
    np.testing.assert_allclose(P[:, 2, 3], 0.75)  # keeps its height


def test_remove_and_shift(scene):
    assert poses(scene, rule("lead", "remove"), "lead") is None
    P = poses(
        scene,
        rule("lead", {"type": "shift", "offset_m": [1.0, -0.5, 0.0], "base": "constant_velocity"}),
        "lead",
    )
    np.testing.assert_allclose(P[:, 0, 3], 21.0 + 8.0 * T, atol=POS_TOL)
    np.testing.assert_allclose(P[:, 1, 3], -0.5, atol=POS_TOL)
    # base log without a log: the box-velocity motion
    P2 = poses(scene, rule("lead", {"type": "shift", "offset_m": [1.0, -0.5, 0.0]}), "lead")
    np.testing.assert_allclose(P2, P, atol=1e-12)


def test_selection_by_label_and_distance(scene):
    spec = {
        "default": "constant_velocity",
        "rules": [
            {"select": {"label": "vehicle", "distance_m": [0, 25]}, "behaviour": "stop"},
            {"select": {"label": "pedestrian"}, "behaviour": "remove"},
        ],
    }
    model = ActorsModel.model_validate(spec)
    m = resolve_motions(model, scene, None, "test.yaml")
    assert m["walker"] is None
    np.testing.assert_allclose(m["lead"].poses(T)[:, 0, 3], 20.0, atol=POS_TOL)  # 20 m: stops
    np.testing.assert_allclose(m["right"].poses(T)[:, 0, 3], 5.0, atol=POS_TOL)  # 6.1 m: stops
    np.testing.assert_allclose(m["oncoming"].poses(T)[:, 0, 3], 60.0 - 9.0 * T, atol=POS_TOL)


def test_unknown_track_id_names_file_and_field(scene):
    model = ActorsModel.model_validate(rule("car99", "stop"))
    with pytest.raises(ConfigError) as exc:
        resolve_motions(model, scene, None, "my.yaml")
    msg = str(exc.value)
    assert "my.yaml" in msg and "actors.rules[0].select" in msg and "car99" in msg
