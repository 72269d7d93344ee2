"""Ego bases and perturbations against closed-form expectations (1 cm, 0.1°)."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.geometry import pose_from_xyz_yaw, yaw_of
from p4dsim.scenario.ego import (
    constant_velocity_base,
    ego_kinematics,
    ego_poses,
    log_base,
    stationary_base,
    waypoints_base,
)
from p4dsim.scenario.model import EgoModel

V = 10.0
T = np.linspace(0.0, 4.0, 41)
POS_TOL, YAW_TOL = 0.01, np.deg2rad(0.1)


def run(perts, base=None, **kw):
    model = EgoModel.model_validate({"base": "constant_velocity", "perturbations": perts, **kw})
    base = base or constant_velocity_base(np.array([V, 0.0, 0.0]))
    return model, base, ego_poses(model, base, T)


def smooth(x):
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def dsmooth(x):
    return np.where((x > 0) & (x < 1), 6 * x * (1 - x), 0.0)


def test_longitudinal_offset():
    _, _, P = run([{"type": "longitudinal_offset", "offset_m": 3.0, "start_s": 1.0, "ramp_s": 2.0}])
    np.testing.assert_allclose(P[:, 0, 3], V * T + 3.0 * smooth((T - 1) / 2), atol=POS_TOL)
    np.testing.assert_allclose(P[:, 1, 3], 0.0, atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), 0.0, atol=YAW_TOL)


def test_yaw_offset_turns_heading_only():
    _, _, P = run(
        [
            {
                "type": "yaw_offset",
                "offset_deg": 10.0,
                "start_s": 0.5,
                "ramp_s": 1.0,
                "profile": "linear",
            }
        ]
    )
    np.testing.assert_allclose(P[:, 0, 3], V * T, atol=POS_TOL)
    np.testing.assert_allclose(P[:, 1, 3], 0.0, atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), np.deg2rad(10.0) * np.clip(T - 0.5, 0, 1), atol=YAW_TOL)


def test_height_offset():
    _, _, P = run([{"type": "height_offset", "offset_m": 0.5, "start_s": 0.0, "ramp_s": 2.0}])
    np.testing.assert_allclose(P[:, 2, 3], 0.5 * smooth(T / 2), atol=POS_TOL)
    np.testing.assert_allclose(P[:, 0, 3], V * T, atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), 0.0, atol=YAW_TOL)


def test_speed_scale_ramp():
    # factor 1 + (s - 1) * linear ramp from 1 s over 2 s: distance = V * ∫ factor.
    s = 1.5
    _, _, P = run(
        [{"type": "speed_scale", "scale": s, "start_s": 1.0, "ramp_s": 2.0, "profile": "linear"}]
    )
    tau = np.clip(T - 1, 0, 2)
    integral = T + (s - 1) * (tau**2 / 4 + np.clip(T - 3, 0, None))
    np.testing.assert_allclose(P[:, 0, 3], V * integral, atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), 0.0, atol=YAW_TOL)


def test_swerve():
    A, per = 0.8, 2.0
    _, _, P = run(
        [{"type": "swerve", "amplitude_m": A, "period_s": per, "start_s": 1.0, "cycles": 1}]
    )
    ph = (T - 1.0) / per
    on = (ph >= 0) & (ph <= 1)
    y = np.where(on, A * np.sin(2 * np.pi * ph), 0.0)
    dy = np.where(on, A * 2 * np.pi / per * np.cos(2 * np.pi * ph), 0.0)
    np.testing.assert_allclose(P[:, 0, 3], V * T, atol=POS_TOL)
    np.testing.assert_allclose(P[:, 1, 3], y, atol=POS_TOL)
    inner = on & (ph > 0.01) & (ph < 0.99)  # the heading jumps where the swerve starts/ends
    np.testing.assert_allclose(yaw_of(P)[inner], np.arctan2(dy, V)[inner], atol=YAW_TOL)


def test_lane_change():
    w, d = -3.5, 3.0
    _, _, P = run([{"type": "lane_change", "width_m": w, "start_s": 0.5, "duration_s": d}])
    x = np.clip((T - 0.5) / d, 0, 1)
    y = w * (0.5 - 0.5 * np.cos(np.pi * x))
    dy = np.where((x > 0) & (x < 1), w * np.pi / (2 * d) * np.sin(np.pi * x), 0.0)
    np.testing.assert_allclose(P[:, 1, 3], y, atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), np.arctan2(dy, V), atol=YAW_TOL)


def test_stacked_offsets_on_a_circle():
    """Lateral and longitudinal offsets act along the normal and tangent of a curved path."""
    R, w = 50.0, V / 50.0  # circle of radius R at speed V, counter-clockwise from (0, 0)
    ts = np.linspace(-1, 6, 71)
    pts = [[t, R * np.sin(w * t), R * (1 - np.cos(w * t)), np.rad2deg(w * t)] for t in ts]
    base = waypoints_base(pts)
    perts = [
        {"type": "lateral_offset", "offset_m": 2.0, "start_s": 0.0, "ramp_s": 0.0},
        {"type": "longitudinal_offset", "offset_m": 1.0, "start_s": 0.0, "ramp_s": 0.0},
    ]
    _, _, P = run(perts, base=base)
    th = w * T
    x = R * np.sin(th) + 1.0 * np.cos(th) - 2.0 * np.sin(th)
    y = R * (1 - np.cos(th)) + 1.0 * np.sin(th) + 2.0 * np.cos(th)
    np.testing.assert_allclose(P[:, 0, 3], x, atol=POS_TOL)
    np.testing.assert_allclose(P[:, 1, 3], y, atol=POS_TOL)
    # Constant offsets: the heading still follows the (parallel) path.
    np.testing.assert_allclose(yaw_of(P), th, atol=YAW_TOL)


def test_stationary_and_waypoint_bases():
    P = stationary_base()(T)
    np.testing.assert_allclose(P, np.broadcast_to(np.eye(4), P.shape), atol=1e-12)
    pts = [[0, 0, 0, 0], [1, 5, 1, 10], [2, 10, 3, 20], [4, 18, 4, 0]]
    P = waypoints_base(pts)(np.array([0.0, 1.0, 2.0, 4.0]))
    np.testing.assert_allclose(P[:, :2, 3], np.array(pts)[:, 1:3], atol=1e-9)
    np.testing.assert_allclose(np.rad2deg(yaw_of(P)), np.array(pts)[:, 3], atol=1e-9)
    # A straight, uniform path is reproduced exactly between and beyond the waypoints.
    line = [[t, 2 * t, -t, 30.0] for t in (0.0, 0.7, 2.0, 3.0)]
    P = waypoints_base(line)(np.array([0.35, 1.5, 4.0]))
    np.testing.assert_allclose(P[:, 0, 3], [0.7, 3.0, 8.0], atol=1e-9)
    np.testing.assert_allclose(P[:, 1, 3], [-0.35, -1.5, -4.0], atol=1e-9)


def test_log_base_with_lateral_offset_on_logged_poses():
    times = np.linspace(-0.5, 5, 56)
    poses = np.stack([pose_from_xyz_yaw([V * t, 0, 0], 0.0) for t in times])
    model = EgoModel.model_validate(
        {"perturbations": [{"type": "lateral_offset", "offset_m": 1.0, "ramp_s": 2.0}]}
    )
    P = ego_poses(model, log_base(times, poses), T)
    np.testing.assert_allclose(P[:, 1, 3], smooth(T / 2), atol=POS_TOL)
    np.testing.assert_allclose(yaw_of(P), np.arctan2(dsmooth(T / 2) / 2, V), atol=YAW_TOL)


def test_kinematic_warning_reports_without_clipping():
    # lane change of 3.5 m in 1 s at 10 m/s: lateral accel up to w π² / (2 d²) ≈ 17 m/s².
    w, d, s0 = 3.5, 1.0, 0.55
    model, base, P = run([{"type": "lane_change", "width_m": w, "duration_s": d, "start_s": s0}])
    kin = ego_kinematics(model, base, T)
    x = (T - s0) / d
    inner = (x > 0.05) & (x < 0.95)
    vy = w * np.pi / (2 * d) * np.sin(np.pi * x)
    ay = w * np.pi**2 / (2 * d**2) * np.cos(np.pi * x)
    expect = V * ay / np.hypot(V, vy)
    np.testing.assert_allclose(kin.lateral_accel[inner], expect[inner], rtol=0.01, atol=0.05)
    np.testing.assert_allclose(kin.speed[inner], np.hypot(V, vy)[inner], rtol=1e-3)
    assert any(w and "lateral acceleration" in w for w in kin.warning)
    assert kin.warning[-1] is None  # after the manoeuvre
    assert P[-1, 1, 3] == pytest.approx(3.5, abs=1e-9)  # not clipped
    # The same manoeuvre over 4 s is within the default limits (4 m/s², 30 °/s).
    model, base, _ = run([{"type": "lane_change", "width_m": 3.5, "duration_s": 4.0}])
    assert all(w is None for w in ego_kinematics(model, base, T).warning)
    # Limits are configurable.
    model, base, _ = run(
        [{"type": "lane_change", "width_m": 3.5, "duration_s": 4.0}],
        limits={"lateral_accel_mps2": 0.5, "yaw_rate_dps": 30},
    )
    assert any(w for w in ego_kinematics(model, base, T).warning)
