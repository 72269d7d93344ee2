"""Safety metrics: footprints, distances and time to collision against references."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.geometry import pose_from_xyz_yaw
from p4dsim.metrics import (
    ActorState,
    FrameMetrics,
    footprint,
    frame_metrics,
    run_summary,
    time_to_collision,
    translated,
)


def test_footprint_corners_and_offset():
    fp = footprint(pose_from_xyz_yaw([10, 2, 0], np.pi / 2), 4.0, 2.0, center_x=1.0)
    xs, ys = fp.exterior.xy
    # heading +y: length along y, centre 1 m ahead of the pose origin
    assert min(xs) == pytest.approx(9.0) and max(xs) == pytest.approx(11.0)
    assert min(ys) == pytest.approx(1.0) and max(ys) == pytest.approx(5.0)
    assert fp.area == pytest.approx(8.0)


def brute_ttc(a, va, b, vb, horizon=10.0, dt=1e-3):
    for t in np.arange(0.0, horizon, dt):
        if translated(a, np.asarray(va) * t).intersects(translated(b, np.asarray(vb) * t)):
            return t
    return None


@pytest.mark.parametrize(
    ("pose_b", "va", "vb"),
    [
        (([20, 0, 0], 0.0), [10, 0], [4, 0]),  # closing on a lead vehicle
        (([15, 5, 0], 0.3), [8, 0], [0, -3]),  # crossing, rotated box
        (([10, -4, 0], 0.0), [5, 1], [5, 0]),  # drifting sideways
        (([20, 6, 0], 0.0), [10, 0], [4, 0]),  # parallel, never meets
        (([-12, 0, 0], 0.0), [5, 0], [9, 0]),  # rear-ended
    ],
)
def test_ttc_matches_brute_force(pose_b, va, vb):
    a = footprint(np.eye(4), 4.5, 1.9)
    b = footprint(pose_from_xyz_yaw(*pose_b), 4.5, 1.8)
    got = time_to_collision(a, va, b, vb, 10.0)
    ref = brute_ttc(a, va, b, vb)
    if ref is None:
        assert got is None
    else:
        assert got == pytest.approx(ref, abs=2e-3)


def test_frame_metrics_and_summary():
    actors = [
        ActorState(
            "near", pose_from_xyz_yaw([6.0, 0, 0.75], 0.0), np.array([4.0, 2.0, 1.5]), np.zeros(3)
        ),
        ActorState(
            "far", pose_from_xyz_yaw([30.0, 3.5, 0.75], 0.0), np.array([4.0, 2.0, 1.5]), np.zeros(3)
        ),
    ]
    m = frame_metrics(np.eye(4), np.array([5.0, 0, 0]), 4.0, 2.0, 0.0, actors)
    assert not m.collision
    assert m.min_distance_m == pytest.approx(6.0 - 2.0 - 2.0)
    assert m.closest == "near"
    assert m.ttc_s == pytest.approx(2.0 / 5.0)
    m2 = frame_metrics(pose_from_xyz_yaw([3.0, 0, 0], 0.0), np.zeros(3), 4.0, 2.0, 0.0, actors)
    assert (
        m2.collision and m2.colliding == ["near"] and m2.min_distance_m == 0.0 and m2.ttc_s == 0.0
    )
    s = run_summary(np.array([0.0, 0.1]), [m, m2])
    assert s["first_collision_s"] == 0.1 and s["min_distance_m"] == 0.0
    s = run_summary(np.array([0.0]), [FrameMetrics(False, None, None)])
    assert s["first_collision_s"] is None and s["min_distance_m"] is None
