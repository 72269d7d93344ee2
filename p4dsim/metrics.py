"""Safety metrics: the ego footprint against every actor footprint, per frame and per run.

Footprints are rectangles on the ground plane of the scene's world frame (x forward, y left,
metres), built with shapely. Per frame: whether the ego overlaps an actor (collision), the
smallest gap between the ego and any actor (0 when they overlap) and the time to collision
when every footprint keeps its current velocity (no rotation), exact for rectangles: the
first contact time is where the ray ``t · (v_ego - v_actor)`` enters the Minkowski difference
``actor ⊖ ego``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely import affinity
from shapely.geometry import LineString, MultiPoint, Point, Polygon


def footprint(T_world: np.ndarray, length: float, width: float, center_x: float = 0.0) -> Polygon:
    """The ground rectangle of a body at pose T_world [4, 4] (its x axis = length direction),
    ``length`` × ``width`` metres, centred ``center_x`` m ahead of the pose's origin."""
    T = np.asarray(T_world, dtype=np.float64)
    yaw = float(np.arctan2(T[1, 0], T[0, 0]))
    c, s = np.cos(yaw), np.sin(yaw)
    hl, hw = length / 2.0, width / 2.0
    local = np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]]) + [center_x, 0.0]
    R = np.array([[c, -s], [s, c]])
    return Polygon(local @ R.T + T[:2, 3])


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
    if ego.intersects(other):
        return 0.0
    a = np.asarray(ego.exterior.coords)[:-1]
    b = np.asarray(other.exterior.coords)[:-1]
    # ego + v_rel t meets other  <=>  v_rel t ∈ other ⊖ ego = hull{b_i - a_j}
    diff = MultiPoint((b[:, None, :] - a[None, :, :]).reshape(-1, 2)).convex_hull
    v_rel = np.asarray(v_ego, dtype=np.float64)[:2] - np.asarray(v_other, dtype=np.float64)[:2]
    speed = float(np.hypot(*v_rel))
    if speed < 1e-9:
        return None
    ray = LineString([(0.0, 0.0), tuple(v_rel * horizon_s)])
    hit = ray.intersection(diff)
    if hit.is_empty:
        return None
    return float(Point(0.0, 0.0).distance(hit)) / speed


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
    [3] world m/s, footprint size in metres) against ``actors`` at one instant."""
    ego = footprint(T_world_ego, ego_length, ego_width, ego_center_x)
    colliding: list[str] = []
    best_d, best_id, best_ttc = None, None, None
    for a in actors:
        fp = footprint(a.T_world, float(a.size[0]), float(a.size[1]))
        d = float(ego.distance(fp))
        if ego.intersects(fp):
            colliding.append(a.track_id)
            d = 0.0
        if best_d is None or d < best_d:
            best_d, best_id = d, a.track_id
        ttc = time_to_collision(ego, v_ego, fp, a.velocity, horizon_s)
        if ttc is not None and (best_ttc is None or ttc < best_ttc):
            best_ttc = ttc
    return FrameMetrics(bool(colliding), best_d, best_ttc, colliding, best_id)


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
