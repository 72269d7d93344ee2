"""Safety metrics: the ego footprint against every actor footprint, per frame and per run.

Footprints are rectangles on the ground plane of the scene's world frame (x forward, y left,
metres): their corners are computed in numpy for every time step and actor at once, and the
geometry runs through shapely's array functions (:func:`frame_metrics_batch`). Per frame: whether the ego overlaps an actor (collision), the
smallest gap between the ego and any actor (0 when they overlap) and the time to collision
when every footprint keeps its current velocity (no rotation), exact for rectangles: the
first contact time is where the ray ``t · (v_ego - v_actor)`` enters the Minkowski difference
``actor ⊖ ego``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import Polygon


def footprint_corners(
    T_world: np.ndarray,
    length: np.ndarray | float,
    width: np.ndarray | float,
    center_x: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Corners [..., 4, 2] (world x, y, m; counter-clockwise: front-left, rear-left, rear-right,
    front-right) of the ground rectangles of bodies at poses T_world [..., 4, 4] (their x axis =
    length direction), ``length`` × ``width`` metres (scalars or arrays broadcasting to
    ``...``), centred ``center_x`` m ahead of each pose's origin."""
    T = np.asarray(T_world, dtype=np.float64)
    yaw = np.arctan2(T[..., 1, 0], T[..., 0, 0])
    c, s = np.cos(yaw)[..., None], np.sin(yaw)[..., None]
    hl = np.asarray(length, dtype=np.float64)[..., None] / 2.0
    hw = np.asarray(width, dtype=np.float64)[..., None] / 2.0
    lx = np.array([1.0, -1.0, -1.0, 1.0]) * hl + np.asarray(center_x, dtype=np.float64)[..., None]
    ly = np.array([1.0, 1.0, -1.0, -1.0]) * hw
    x = lx * c - ly * s + T[..., 0, 3, None]
    y = lx * s + ly * c + T[..., 1, 3, None]
    return np.stack(np.broadcast_arrays(x, y), axis=-1)


def footprint(T_world: np.ndarray, length: float, width: float, center_x: float = 0.0) -> Polygon:
    """The ground rectangle of a body at pose T_world [4, 4] (its x axis = length direction),
    ``length`` × ``width`` metres, centred ``center_x`` m ahead of the pose's origin."""
    return Polygon(footprint_corners(T_world, length, width, center_x))


def _ttc_many(
    a: np.ndarray,
    b: np.ndarray,
    v_rel: np.ndarray,
    overlap: np.ndarray,
    horizon_s: float,
) -> np.ndarray:
    """Times to collision [N] (s; NaN: no contact within ``horizon_s``) of convex footprints
    with vertices a [N, n, 2] and b [N, m, 2] (world m) moving at relative velocity
    v_rel [N, 2] (velocity of a minus velocity of b, m/s); overlap [N]: whether they
    intersect now (time 0)."""
    n = len(v_rel)
    out = np.full(n, np.nan)
    out[overlap] = 0.0
    speed = np.hypot(v_rel[:, 0], v_rel[:, 1])
    todo = np.flatnonzero(~overlap & ~(speed < 1e-9))
    if len(todo) == 0:
        return out
    # a + v_rel t meets b  <=>  v_rel t ∈ b ⊖ a = hull{b_i - a_j}
    pts = (b[todo][:, :, None, :] - a[todo][:, None, :, :]).reshape(len(todo), -1, 2)
    # the hull of a vertex set, built from a line through it (cheaper than a MultiPoint)
    diff = shapely.convex_hull(shapely.linestrings(pts))
    ray = np.zeros((len(todo), 2, 2))
    ray[:, 1] = v_rel[todo] * horizon_s
    hit = shapely.intersection(shapely.linestrings(ray), diff)
    met = ~shapely.is_empty(hit)
    idx = todo[met]
    out[idx] = shapely.distance(shapely.points(np.zeros(2)), hit[met]) / speed[idx]
    return out


def time_to_collision(
    ego: Polygon,
    v_ego: np.ndarray,
    other: Polygon,
    v_other: np.ndarray,
    horizon_s: float = 10.0,
) -> float | None:
    """Seconds until two convex footprints moving at constant velocities [2] (m/s, no
    rotation) first touch; 0 when they overlap now; None when they do not meet within
    ``horizon_s``."""
    a = np.asarray(ego.exterior.coords)[None, :-1, :2]
    b = np.asarray(other.exterior.coords)[None, :-1, :2]
    v_rel = np.asarray(v_ego, dtype=np.float64)[:2] - np.asarray(v_other, dtype=np.float64)[:2]
    ttc = _ttc_many(a, b, v_rel[None], np.array([ego.intersects(other)]), horizon_s)[0]
    return None if np.isnan(ttc) else float(ttc)


@dataclass
class FrameMetrics:
    """Metrics of one frame: collision (any actor overlaps the ego), min_distance_m (smallest
    gap to any actor, 0 on overlap; None without actors), ttc_s (smallest time to collision;
    None when nothing meets within the horizon), colliding (track ids overlapping the ego),
    closest (track id at min_distance_m)."""

    collision: bool
    min_distance_m: float | None
    ttc_s: float | None
    colliding: list[str] = field(default_factory=list)
    closest: str | None = None


@dataclass
class ActorState:
    """An actor at one instant for the metrics: pose T_world [4, 4], size [3] (length, width,
    height, m), velocity [3] world m/s."""

    track_id: str
    T_world: np.ndarray
    size: np.ndarray
    velocity: np.ndarray


@dataclass
class ActorTrack:
    """An actor over T time steps for the metrics: poses [T, 4, 4] (world), size [3] (length,
    width, height, m), velocity [T, 3] world m/s; present [T] bool: the steps at which the
    actor exists (None: all of them)."""

    track_id: str
    poses: np.ndarray
    size: np.ndarray
    velocity: np.ndarray
    present: np.ndarray | None = None


def frame_metrics_batch(
    T_world_ego: np.ndarray,
    v_ego: np.ndarray,
    ego_length: float,
    ego_width: float,
    ego_center_x: float,
    actors: list[ActorTrack],
    horizon_s: float = 10.0,
) -> list[FrameMetrics]:
    """Collision, minimum distance and time to collision of the ego (poses [T, 4, 4], velocity
    [T, 3] world m/s, footprint size in metres) against ``actors`` at each of the T time steps,
    all pairs at once. Per step, ``colliding`` keeps the order of ``actors`` and ``closest`` is
    the first actor at the minimum distance."""
    T_ego = np.asarray(T_world_ego, dtype=np.float64).reshape(-1, 4, 4)
    n_t, n_a = len(T_ego), len(actors)
    if n_a == 0:
        return [FrameMetrics(False, None, None, [], None) for _ in range(n_t)]
    v_ego = np.asarray(v_ego, dtype=np.float64).reshape(n_t, -1)[:, :2]
    poses = np.stack([np.asarray(a.poses, dtype=np.float64).reshape(n_t, 4, 4) for a in actors], 1)
    sizes = np.stack([np.asarray(a.size, dtype=np.float64)[:2] for a in actors])  # [A, 2]
    v_act = np.stack([np.asarray(a.velocity, dtype=np.float64).reshape(n_t, -1) for a in actors], 1)
    present = np.stack(
        [
            np.ones(n_t, bool) if a.present is None else np.asarray(a.present, bool).reshape(n_t)
            for a in actors
        ],
        1,
    )  # [T, A]

    ego_xy = footprint_corners(T_ego, ego_length, ego_width, ego_center_x)  # [T, 4, 2]
    act_xy = footprint_corners(poses, sizes[:, 0], sizes[:, 1])  # [T, A, 4, 2]
    ti, ai = np.nonzero(present)  # the (step, actor) pairs that exist, row-major
    ego_fp = shapely.polygons(ego_xy)[ti]
    act_fp = shapely.polygons(act_xy[ti, ai])
    overlap = shapely.intersects(ego_fp, act_fp)
    dist = np.full((n_t, n_a), np.inf)
    dist[ti, ai] = np.where(overlap, 0.0, shapely.distance(ego_fp, act_fp))
    ttc = np.full((n_t, n_a), np.nan)
    v_rel = v_ego[ti] - v_act[ti, ai, :2]
    ttc[ti, ai] = _ttc_many(ego_xy[ti], act_xy[ti, ai], v_rel, overlap, horizon_s)
    hit = np.zeros((n_t, n_a), bool)
    hit[ti, ai] = overlap

    ids = [a.track_id for a in actors]
    closest = np.argmin(dist, axis=1)
    any_present = present.any(axis=1)
    best_ttc = np.where(np.isnan(ttc), np.inf, ttc).min(axis=1)  # inf: no contact
    out = []
    for k in range(n_t):
        colliding = [ids[j] for j in np.flatnonzero(hit[k])]
        if any_present[k]:
            d, cid = float(dist[k, closest[k]]), ids[closest[k]]
        else:
            d, cid = None, None
        t_c = float(best_ttc[k]) if np.isfinite(best_ttc[k]) else None
        out.append(FrameMetrics(bool(colliding), d, t_c, colliding, cid))
    return out


def frame_metrics(
    T_world_ego: np.ndarray,
    v_ego: np.ndarray,
    ego_length: float,
    ego_width: float,
    ego_center_x: float,
    actors: list[ActorState],
    horizon_s: float = 10.0,
) -> FrameMetrics:
    """Collision, minimum distance and time to collision of the ego (pose [4, 4], velocity
    [3] world m/s, footprint size in metres) against ``actors`` at one instant (a one-step
    :func:`frame_metrics_batch`)."""
    tracks = [
        ActorTrack(
            a.track_id,
            np.asarray(a.T_world, dtype=np.float64)[None],
            np.asarray(a.size, dtype=np.float64),
            np.asarray(a.velocity, dtype=np.float64)[None],
        )
        for a in actors
    ]
    return frame_metrics_batch(
        np.asarray(T_world_ego)[None],
        np.asarray(v_ego, dtype=np.float64)[None],
        ego_length,
        ego_width,
        ego_center_x,
        tracks,
        horizon_s,
    )[0]


def run_summary(times: np.ndarray, metrics: list[FrameMetrics]) -> dict[str, Any]:
    """Per-run summary: first_collision_s (None: no collision), min_distance_m over the run
    (None without actors), min_ttc_s (None: never on a collision course)."""
    first = None
    for t, m in zip(times, metrics, strict=True):
        if m.collision:
            first = float(t)
            break
    dists = [m.min_distance_m for m in metrics if m.min_distance_m is not None]
    ttcs = [m.ttc_s for m in metrics if m.ttc_s is not None]
    return {
        "first_collision_s": first,
        "min_distance_m": float(min(dists)) if dists else None,
        "min_ttc_s": float(min(ttcs)) if ttcs else None,
    }


def translated(poly: Polygon, d: np.ndarray) -> Polygon:
    """``poly`` moved by d [2] (m)."""
    return affinity.translate(poly, float(d[0]), float(d[1]))
