"""Safety metrics: footprints, distances and time to collision against references."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import LineString, MultiPoint, Point, Polygon

from p4dsim.geometry import pose_from_xyz_yaw
from p4dsim.metrics import (
    ActorState,
    ActorTrack,
    FrameMetrics,
    footprint,
    footprint_corners,
    frame_metrics,
    frame_metrics_batch,
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


# -- batch metrics against a per-frame reference built from scalar shapely objects -------------


def ref_footprint(T, length, width, center_x=0.0):
    yaw = np.arctan2(T[1, 0], T[0, 0])
    R = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    hl, hw = length / 2.0, width / 2.0
    local = np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]]) + [center_x, 0.0]
    return Polygon(local @ R.T + T[:2, 3])


def ref_ttc(ego, v_ego, other, v_other, horizon):
    """First contact of two translating convex polygons: ray t·v_rel into other ⊖ ego."""
    if ego.intersects(other):
        return 0.0
    a = np.asarray(ego.exterior.coords)[:-1]
    b = np.asarray(other.exterior.coords)[:-1]
    diff = MultiPoint((b[:, None] - a[None]).reshape(-1, 2)).convex_hull
    v_rel = np.asarray(v_ego)[:2] - np.asarray(v_other)[:2]
    speed = float(np.hypot(*v_rel))
    if speed < 1e-9:
        return None
    hit = LineString([(0.0, 0.0), tuple(v_rel * horizon)]).intersection(diff)
    return None if hit.is_empty else Point(0.0, 0.0).distance(hit) / speed


def ref_frame(T_ego, v_ego, ego_l, ego_w, ego_cx, actors, horizon):
    """actors: (track_id, T [4, 4], size [3], velocity [3]) present at this step."""
    ego = ref_footprint(T_ego, ego_l, ego_w, ego_cx)
    colliding, best_d, best_id, best_ttc = [], None, None, None
    for tid, T, size, v in actors:
        fp = ref_footprint(T, size[0], size[1])
        d = 0.0 if ego.intersects(fp) else ego.distance(fp)
        if ego.intersects(fp):
            colliding.append(tid)
        if best_d is None or d < best_d:
            best_d, best_id = d, tid
        ttc = ref_ttc(ego, v_ego, fp, v, horizon)
        if ttc is not None and (best_ttc is None or ttc < best_ttc):
            best_ttc = ttc
    return FrameMetrics(bool(colliding), best_d, best_ttc, colliding, best_id)


def random_run(rng, n_t, n_a):
    """Ego poses/velocities [T] and actor tracks mixing overlapping, closing, never-meeting,
    same-velocity and absent actors."""
    T_ego = np.stack(
        [
            pose_from_xyz_yaw([rng.uniform(-5, 5), rng.uniform(-2, 2), 0], rng.uniform(-0.3, 0.3))
            for _ in range(n_t)
        ]
    )
    v_ego = np.c_[rng.uniform(0, 12, (n_t, 2)) * [1, 0.2], np.zeros(n_t)]
    v_ego[rng.random(n_t) < 0.2] = 0.0
    tracks = []
    for j in range(n_a):
        poses, vel = np.empty((n_t, 4, 4)), np.empty((n_t, 3))
        for k in range(n_t):
            p = T_ego[k, :3, 3]
            kind = rng.integers(5)
            if kind == 0:  # overlapping the ego
                xy, v = p[:2] + rng.uniform(-2, 2, 2), rng.uniform(-5, 5, 2)
            elif kind == 1:  # ahead in the ego lane, closing in within the horizon
                xy, v = (
                    p[:2] + [rng.uniform(8, 30), rng.uniform(-0.5, 0.5)],
                    [-rng.uniform(1, 8), 0],
                )
            elif kind == 2:  # parallel lane moving away: never meets
                xy, v = p[:2] + [rng.uniform(-10, 10), 8.0], [0, 5.0]
            elif kind == 3:  # same velocity as the ego: zero relative velocity
                xy, v = p[:2] + rng.uniform(-15, 15, 2), v_ego[k, :2]
            else:  # anywhere
                xy, v = p[:2] + rng.uniform(-40, 40, 2), rng.uniform(-15, 15, 2)
            poses[k] = pose_from_xyz_yaw([xy[0], xy[1], 0.75], rng.uniform(-np.pi, np.pi))
            vel[k] = [v[0], v[1], 0.0]
        size = np.array([rng.uniform(3.5, 5.0), rng.uniform(1.6, 2.1), 1.5])
        present = rng.random(n_t) < 0.8
        tracks.append(ActorTrack(f"car{j}", poses, size, vel, None if j == 0 else present))
    return T_ego, v_ego, tracks


def assert_same(got, ref):
    assert got.collision == ref.collision
    assert got.colliding == ref.colliding
    assert got.closest == ref.closest
    for a, b in ((got.min_distance_m, ref.min_distance_m), (got.ttc_s, ref.ttc_s)):
        assert (a is None) == (b is None)
        if a is not None:
            assert isinstance(a, float) and abs(a - b) <= 1e-9


@pytest.mark.parametrize("horizon", [10.0, 2.0])
def test_frame_metrics_batch_matches_per_frame_reference(horizon):
    rng = np.random.default_rng(7)
    n_t = 60
    T_ego, v_ego, tracks = random_run(rng, n_t, 5)
    tracks[1].present[:3] = False  # steps with no actor present at all
    for t in tracks[2:]:
        t.present[:3] = False
    tracks[0] = ActorTrack(**{**tracks[0].__dict__, "present": np.arange(n_t) >= 3})
    # two actors overlapping the ego at one step: the first in order is the closest
    tracks[3].poses[10], tracks[4].poses[10] = T_ego[10], T_ego[10]
    tracks[3].present[10] = tracks[4].present[10] = True
    got = frame_metrics_batch(T_ego, v_ego, 4.5, 1.9, 1.2, tracks, horizon)
    assert len(got) == n_t
    seen = {"collision": 0, "ttc": 0, "none_ttc": 0, "no_actor": 0}
    for k in range(n_t):
        present = [
            (t.track_id, t.poses[k], t.size, t.velocity[k])
            for t in tracks
            if t.present is None or t.present[k]
        ]
        ref = ref_frame(T_ego[k], v_ego[k], 4.5, 1.9, 1.2, present, horizon)
        assert_same(got[k], ref)
        # the scalar entry point agrees with the batch
        scalar = frame_metrics(
            T_ego[k], v_ego[k], 4.5, 1.9, 1.2, [ActorState(*a) for a in present], horizon
        )
        assert scalar == got[k]
        seen["collision"] += ref.collision
        seen["ttc"] += ref.ttc_s is not None and ref.ttc_s > 0
        seen["none_ttc"] += ref.ttc_s is None and bool(present)
        seen["no_actor"] += not present
    assert got[10].colliding[-2:] == ["car3", "car4"] and got[10].closest == got[10].colliding[0]
    assert all(v > 0 for v in seen.values()), seen


def test_frame_metrics_batch_edge_cases():
    T = np.stack([pose_from_xyz_yaw([0.0, 0, 0], 0.0), pose_from_xyz_yaw([1.0, 0, 0], 0.0)])
    v = np.array([[5.0, 0, 0], [5.0, 0, 0]])
    # no actors at all
    for m in frame_metrics_batch(T, v, 4.0, 2.0, 0.0, []):
        assert m == FrameMetrics(False, None, None, [], None)
    # a lead car 10 m ahead (gap 6 m) closing at 5 m/s: contact at 1.2 s, inside a 2 s horizon
    # but not a 1 s one; same velocity: never meets
    lead = ActorTrack(
        "lead",
        np.stack([pose_from_xyz_yaw([10.0, 0, 0], 0.0)] * 2),
        np.array([4.0, 2.0, 1.5]),
        np.array([[0.0, 0, 0], [5.0, 0, 0]]),
    )
    m = frame_metrics_batch(T, v, 4.0, 2.0, 0.0, [lead], horizon_s=2.0)
    assert m[0].ttc_s == pytest.approx(1.2, abs=1e-12) and m[0].min_distance_m == pytest.approx(6)
    assert m[1].ttc_s is None and m[1].min_distance_m == pytest.approx(5.0)
    assert frame_metrics_batch(T, v, 4.0, 2.0, 0.0, [lead], horizon_s=1.0)[0].ttc_s is None
    # absent at every step: like no actors
    gone = ActorTrack(**{**lead.__dict__, "present": np.zeros(2, bool)})
    assert frame_metrics_batch(T, v, 4.0, 2.0, 0.0, [gone])[0] == FrameMetrics(False, None, None)


def test_footprint_corners_batch_match_scalar():
    rng = np.random.default_rng(3)
    poses = np.stack(
        [pose_from_xyz_yaw(rng.normal(0, 20, 3), rng.uniform(-4, 4)) for _ in range(8)]
    )
    lengths = rng.uniform(1, 6, 8)
    got = footprint_corners(poses, lengths, 2.0, 0.5)
    assert got.shape == (8, 4, 2)
    for k in range(8):
        ref = ref_footprint(poses[k], lengths[k], 2.0, 0.5)
        np.testing.assert_allclose(got[k], np.asarray(ref.exterior.coords)[:-1], atol=1e-12)
        assert footprint(poses[k], lengths[k], 2.0, 0.5).equals_exact(ref, 1e-12)
