"""Vehicle-like clusters in one LiDAR sweep: ground removal, range-scaled DBSCAN, size filter
and an oriented box per cluster fitted to the L-shape of its visible sides.

All points are in the ego frame (x forward, y left, z up, metres); the sensor is assumed near
the ego origin, which is what makes "visible sides" and "range" meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p4dsim.scene.ground import fit_ground_plane


@dataclass(frozen=True)
class ClusterConfig:
    """Settings of :func:`find_clusters` (metres unless stated)."""

    min_height: float = 0.3  #: points this close to the ground plane are ground
    max_height: float = 3.6  #: points higher above the ground are cut (canopies, facades)
    min_range: float = 2.5  #: points nearer the sensor (ego body) are dropped
    max_range: float = 50.0  #: horizontal range limit of the search
    eps: float = 0.45  #: DBSCAN neighbourhood at zero range
    eps_range_scale: float = 30.0  #: eps grows as eps * (1 + r / eps_range_scale)
    min_points: int = 4  #: DBSCAN core-point count
    min_cluster_points: int = 12  #: smaller clusters are dropped
    # vehicle-like sizes of the fitted box
    min_length: float = 1.2
    #: the longest rigid vehicles (city buses, rigid trucks: 12-13.5 m)
    max_length: float = 13.0
    #: articulated vehicles (tractor and semi-trailer, truck and trailer, articulated buses)
    #: reach 18.75 m. A longer cluster than ``max_length`` can as well be a wall, a facade or
    #: a row of parked cars, so it is only a candidate (``Cluster.needs_motion``): the tracker
    #: keeps it only when the sweeps show it moving.
    max_articulated_length: float = 19.0
    max_width: float = 3.3
    min_top: float = 0.9  #: the highest point must be at least this far above the ground
    max_bottom: float = 1.0  #: the lowest point must be at most this far above the ground
    max_top: float = 4.3
    # priors that extend boxes whose far sides are hidden
    prior_length: float = 4.2
    prior_width: float = 1.75
    yaw_step_deg: float = 1.0  #: angular resolution of the L-shape search


@dataclass
class Cluster:
    """One vehicle-like cluster.

    points: float64 [N, 3] its points (ego frame); center: [3] box centre; size: [3] length,
    width, height; yaw: heading of the length axis about +z (radians, in (-π/2, π/2]; the
    direction of travel is not known from one sweep); ground_z: ground height under the centre;
    visible: [2] measured extents (length, width) before the size priors were applied;
    needs_motion: longer than ``max_length`` (see :class:`ClusterConfig`).
    """

    points: np.ndarray
    center: np.ndarray
    size: np.ndarray
    yaw: float
    ground_z: float
    visible: np.ndarray
    #: longer than any rigid vehicle: a vehicle only if the sweeps show it moving
    needs_motion: bool = False


def ground_heights(points: np.ndarray, plane: tuple[np.ndarray, float]) -> np.ndarray:
    """Signed heights [N] of points [N, 3] above the plane ``n·x + d = 0``."""
    n, d = plane
    return np.asarray(points, dtype=np.float64) @ np.asarray(n, dtype=np.float64) + float(d)


def ground_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The scene's ground plane of a sweep (see :func:`p4dsim.scene.ground.fit_ground_plane`),
    z = 0 when no plane can be fitted."""
    plane = fit_ground_plane(points) if points is not None else None
    if plane is None:
        return np.array([0.0, 0.0, 1.0]), 0.0
    return plane


def _warp(points: np.ndarray, scale: float) -> np.ndarray:
    """Range compression so that one DBSCAN eps acts as eps * (1 + r / scale) at range r.

    A point at horizontal range r moves to range g(r) = scale * ln(1 + r / scale); its height
    is scaled by g(r) / r like the tangential directions (beam spacing grows with range both
    across and up).
    """
    r = np.hypot(points[:, 0], points[:, 1])
    g = scale * np.log1p(r / scale)
    f = np.where(r > 1e-6, g / np.maximum(r, 1e-6), 1.0)
    return points * f[:, None]


def dbscan_labels(
    points: np.ndarray, eps: float, min_points: int, range_scale: float, voxel: float = 0.15
) -> np.ndarray:
    """Cluster labels [N] (-1 noise) of points [N, 3] by open3d's DBSCAN with eps scaled by
    range (see :func:`_warp`). Points are first merged into ``voxel``-metre cells (their
    centroids are clustered, each point takes its cell's label): dense near-range surfaces
    would otherwise make DBSCAN slow. ``min_points`` counts cells."""
    import open3d as o3d

    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.floor(points / voxel).astype(np.int64)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    cent = np.zeros((len(counts), 3))
    np.add.at(cent, inv, points)
    cent /= counts[:, None]
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(_warp(cent, range_scale)))
    lab = np.asarray(pcd.cluster_dbscan(eps=eps, min_points=min_points, print_progress=False))
    return lab[inv]


def _rect_in_axes(xy: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """Min and max [2] of points xy [N, 2] in the axes rotated by ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    uv = xy @ np.array([[c, -s], [s, c]])
    return uv.min(axis=0), uv.max(axis=0)


def l_shape_yaw(xy: np.ndarray, step_deg: float = 1.0, d0: float = 0.05) -> float:
    """Heading (radians, in [0, π/2)) of the rectangle that hugs the visible sides of a
    footprint xy [N, 2] best: the closeness criterion of L-shape fitting, each point scoring
    1 / max(d, d0) where d is its distance to the nearer of the two rectangle edges in each
    axis. The minimum rotated rectangle's heading (shapely) is always among the candidates."""
    import shapely

    cands = list(np.deg2rad(np.arange(0.0, 90.0, step_deg)))
    mrr = shapely.multipoints(xy).minimum_rotated_rectangle
    if mrr.geom_type == "Polygon":
        e = np.diff(np.asarray(mrr.exterior.coords)[:2], axis=0)[0]
        cands.append(float(np.mod(np.arctan2(e[1], e[0]), np.pi / 2)))
    th = np.asarray(cands)
    if len(xy) > 600:  # the criterion is a sum over points: a subsample ranks angles alike
        xy = xy[np.linspace(0, len(xy) - 1, 600).astype(int)]
    u = xy @ np.stack([np.cos(th), np.sin(th)])  # [N, A]
    v = xy @ np.stack([-np.sin(th), np.cos(th)])
    du = np.minimum(u.max(axis=0) - u, u - u.min(axis=0))
    dv = np.minimum(v.max(axis=0) - v, v - v.min(axis=0))
    score = np.sum(1.0 / np.maximum(np.minimum(du, dv), d0), axis=0)
    return float(th[int(np.argmax(score))])


def fit_box(points: np.ndarray, ground_z: float, cfg: ClusterConfig) -> Cluster:
    """Oriented box of a cluster's points [N, 3] (ego frame) standing on ``ground_z``.

    The footprint rectangle is the L-shape fit (:func:`l_shape_yaw`); its longer axis is the
    length. A side shorter than the prior vehicle size is taken to be hidden: the box grows
    away from the sensor (the visible edges stay put) to the prior length/width. When both
    visible extents are short, the axis nearer the line of sight is the length.
    """
    xy = points[:, :2]
    th = l_shape_yaw(xy, cfg.yaw_step_deg)
    lo, hi = _rect_in_axes(xy, th)
    ext = hi - lo
    # choose the length axis
    axes = np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])  # rows: u, v axes
    centre_xy = ((lo + hi) / 2) @ axes
    sight = centre_xy / max(np.linalg.norm(centre_xy), 1e-6)
    if max(ext) < cfg.prior_length * 0.6:
        li = int(np.argmax(np.abs(axes @ sight)))
    else:
        li = int(np.argmax(ext))
    wi = 1 - li
    target = np.empty(2)
    target[li] = max(ext[li], cfg.prior_length)
    target[wi] = max(ext[wi], cfg.prior_width)
    # grow away from the sensor: the sensor sees the low or the high edge along each axis
    towards = axes @ sight  # >0: the far edge is the high edge
    for k in range(2):
        grow = target[k] - ext[k]
        if grow > 0:
            if towards[k] >= 0:
                hi[k] += grow
            else:
                lo[k] -= grow
    c_uv = (lo + hi) / 2
    c_xy = c_uv @ axes
    yaw = th if li == 0 else th + np.pi / 2
    yaw = float(np.mod(yaw + np.pi / 2, np.pi) - np.pi / 2)
    top = float(points[:, 2].max())
    height = max(top - ground_z, 0.1)
    return Cluster(
        points=points,
        center=np.array([c_xy[0], c_xy[1], ground_z + height / 2]),
        size=np.array([target[li], target[wi], height]),
        yaw=yaw,
        ground_z=float(ground_z),
        visible=np.array([ext[li], ext[wi]]),
    )


def find_clusters(
    points: np.ndarray,
    plane: tuple[np.ndarray, float] | None = None,
    cfg: ClusterConfig | None = None,
) -> list[Cluster]:
    """Vehicle-like clusters of a sweep points [N, 3] (ego frame), nearest first. Clusters
    longer than ``cfg.max_length`` are flagged ``needs_motion`` (see :class:`ClusterConfig`).

    plane: the ground plane ``(n, d)``; fitted to the sweep when None.
    """
    cfg = cfg or ClusterConfig()
    p = np.asarray(points, dtype=np.float64)
    if plane is None:
        plane = ground_plane(p)
    h = ground_heights(p, plane)
    r = np.hypot(p[:, 0], p[:, 1])
    keep = (h > cfg.min_height) & (h < cfg.max_height) & (r > cfg.min_range) & (r < cfg.max_range)
    q, hq = p[keep], h[keep]
    labels = dbscan_labels(q, cfg.eps, cfg.min_points, cfg.eps_range_scale)
    n, d = plane
    out = []
    for lab in range(int(labels.max()) + 1 if len(labels) else 0):
        m = labels == lab
        if m.sum() < cfg.min_cluster_points:
            continue
        pts = q[m]
        top = float(hq[m].max())
        if not (cfg.min_top <= top <= cfg.max_top) or float(hq[m].min()) > cfg.max_bottom:
            continue
        if (
            np.mean(hq[m] > cfg.max_height - 0.2) > 0.02
        ):  # cut by the ceiling: taller than a vehicle
            continue
        c = pts.mean(axis=0)
        gz = float(-(d + n[0] * c[0] + n[1] * c[1]) / n[2])
        box = fit_box(pts, gz, cfg)
        if not (max(box.visible) >= cfg.min_length and box.size[0] <= cfg.max_articulated_length):
            continue
        if box.visible[1] > cfg.max_width:
            continue
        box.needs_motion = bool(box.size[0] > cfg.max_length)
        out.append(box)
    out.sort(key=lambda b: float(np.hypot(b.center[0], b.center[1])))
    return out
