import numpy as np
import pytest

from p4dsim.geometry import pose_from_xyz_yaw, yaw_of
from p4dsim.scene.motion import RigidMotion, TrackMotion, interpolate_poses


def test_constant_velocity_straight_line():
    T0 = pose_from_xyz_yaw([1.0, 2.0, 0.5], 0.3)
    m = RigidMotion.from_velocity(T0, np.array([3.0 * np.cos(0.3), 3.0 * np.sin(0.3), 0.0]))
    t = np.array([0.0, 0.5, 2.0])
    P = m.poses(t)
    expect = np.array([1.0, 2.0, 0.5]) + 3.0 * t[:, None] * np.array([np.cos(0.3), np.sin(0.3), 0])
    np.testing.assert_allclose(P[:, :3, 3], expect, atol=1e-9)
    np.testing.assert_allclose(yaw_of(P), 0.3, atol=1e-12)


def test_braking_stops_and_stays():
    m = RigidMotion(T0=np.eye(4), speed=10.0, course=0.0, acceleration=-4.0)
    P = m.poses(np.array([1.0, 2.5, 4.0]))
    # x = v t - a t^2 / 2 until the stop at 2.5 s (12.5 m), then constant.
    np.testing.assert_allclose(P[:, 0, 3], [10 - 2.0, 12.5, 12.5], atol=1e-9)


def test_constant_turn_rate_is_a_circle():
    v, w = 5.0, 0.5
    m = RigidMotion(T0=np.eye(4), speed=v, course=0.0, yaw_rate=w)
    t = np.linspace(0, 4, 9)
    P = m.poses(t)
    r = v / w
    np.testing.assert_allclose(P[:, 0, 3], r * np.sin(w * t), atol=1e-9)
    np.testing.assert_allclose(P[:, 1, 3], r * (1 - np.cos(w * t)), atol=1e-9)
    np.testing.assert_allclose(np.unwrap(yaw_of(P)), w * t, atol=1e-12)


def test_ctra_closed_form_matches_numeric_integration():
    closed = RigidMotion(T0=np.eye(4), speed=4.0, course=0.2, acceleration=1.5, yaw_rate=0.3)
    # A vanishing yaw acceleration takes the numeric path.
    numeric = RigidMotion(
        T0=np.eye(4), speed=4.0, course=0.2, acceleration=1.5, yaw_rate=0.3, yaw_acceleration=1e-12
    )
    t = np.array([0.3, 1.0, 2.7])
    np.testing.assert_allclose(closed.poses(t)[:, :3, 3], numeric.poses(t)[:, :3, 3], atol=1e-3)


def test_track_motion_interpolates_and_extrapolates():
    times = np.array([0.0, 1.0, 2.0])
    poses = np.stack([pose_from_xyz_yaw([2.0 * s, 0, 0], 0.1 * s) for s in times])
    m = TrackMotion(times, poses)
    P = m.poses(np.array([0.5, 2.5]))
    np.testing.assert_allclose(P[:, 0, 3], [1.0, 5.0], atol=1e-9)
    np.testing.assert_allclose(yaw_of(P), [0.05, 0.25], atol=1e-9)


def test_interpolate_single_sample_holds():
    P = interpolate_poses(np.array([0.0]), np.eye(4)[None], np.array([-1.0, 3.0]))
    assert P.shape == (2, 4, 4)
    np.testing.assert_allclose(P, np.broadcast_to(np.eye(4), (2, 4, 4)))


@pytest.mark.parametrize("w", [0.0, 1e-7, 1e-3])
def test_small_turn_rates_are_continuous(w):
    m = RigidMotion(T0=np.eye(4), speed=10.0, course=0.0, yaw_rate=w)
    p = m.poses(np.array([1.0]))[0, :3, 3]
    np.testing.assert_allclose(
        p[:2],
        [10.0 * np.sin(w) / w if w else 10.0, 10.0 * (1 - np.cos(w)) / w if w else 0.0],
        atol=1e-6,
    )
