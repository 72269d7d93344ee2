"""Motion of LiDAR clusters from the log's previous scans.

Each cluster of the source sweep is looked for in the previous one to three sweeps (never
later ones), after the ego motion between the sweeps has been removed with the logged ego
poses. The displacement of a matched cluster comes from open3d's point-to-plane ICP of its
points onto the previous cluster's; a least-squares fit over the matched sweeps gives the
velocity, yaw rate and, with three previous sweeps, the acceleration. A cluster moves only
when the sweeps support its velocity (:func:`supported_velocity`: seen in at least three
sweeps, or a strong match of a well observed cluster in two; displacements consistent with
one constant velocity within the position noise, speed plausible, along its length axis);
otherwise it stays where it is. A cluster that matches no
previous sweep is kept as static, flagged and with a lower confidence. A cluster longer than
any rigid vehicle (``Cluster.needs_motion``: a tractor with its semi-trailer, or a facade cut
by the LiDAR's field of view) is kept only when the sweeps support a motion that its own
surfaces fixed in both horizontal directions (:func:`_icp` needed no fallback).

Everything is expressed in the source frame's ego frame (x forward, y left, z up; metres,
seconds). Velocities are ground velocities (the ego's own motion is removed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from p4dsim.geometry import inv_pose
from p4dsim.perception.cluster import Cluster, ClusterConfig, find_clusters, ground_plane
from p4dsim.types import Box3D, Log


@dataclass(frozen=True)
class TrackConfig:
    """Settings of :func:`detect` (metres, seconds)."""

    max_scans: int = 3  #: previous sweeps to look in (1..3)
    max_speed: float = 30.0  #: association gate: clusters may move this fast (m/s)
    gate_m: float = 1.0  #: plus this much slack in the gate (m)
    predicted_gate_m: float = 1.5  #: gate around the predicted position for older sweeps (m)
    icp_distances: tuple[float, ...] = (1.0, 0.4, 0.2)  #: ICP correspondence distances (m)
    min_fitness: float = 0.3  #: share of points with an ICP correspondence to accept a match
    static_speed: float = 0.3  #: speeds below this are set to zero (m/s)
    max_accel: float = 4.0  #: accelerations are clipped to this magnitude (m/s²)
    max_yaw_rate: float = 1.0  #: yaw rates are clipped to this magnitude (rad/s)
    unmatched_confidence: float = 0.5  #: confidence factor of clusters without a match
    #: a velocity needs the cluster in at least this many sweeps (the source one included)
    min_sweeps: int = 3
    #: displacement noise of a cluster's matched position: this much (m) ...
    noise_m: float = 0.1
    noise_per_m: float = 0.004  #: ... plus this much per metre of range
    #: moving sideways (across the box's length axis) faster than this share of the speed
    #: (plus the noise) is not how vehicles move: such a velocity is not trusted
    max_side_share: float = 0.35
    #: with fewer than min_sweeps sweeps, a match counts only for a cluster of at least this
    #: many returns that moved more than single_snr times the noise
    single_min_points: int = 100
    single_snr: float = 4.0


@dataclass
class DetectedActor:
    """A vehicle found in the source sweep, with its motion.

    cluster: the fitted cluster; yaw: heading (radians; along the velocity when moving);
    velocity, acceleration: [3] m/s and m/s² (acceleration None with fewer than three previous
    sweeps matched); yaw_rate: rad/s; matched: previous sweeps the cluster was found in;
    static: True when it matched none (then assumed static); confidence in [0, 1];
    offsets: per matched sweep, (dt s, displacement [3] of the box centre since then).
    """

    cluster: Cluster
    yaw: float
    velocity: np.ndarray
    acceleration: np.ndarray | None
    yaw_rate: float
    matched: int
    static: bool
    confidence: float
    offsets: list[tuple[float, np.ndarray]] = field(default_factory=list)

    @property
    def speed(self) -> float:
        return float(np.hypot(self.velocity[0], self.velocity[1]))

    def box(self, track_id: str) -> Box3D:
        """This actor as an ego-frame :class:`~p4dsim.types.Box3D` with ``source="auto"``."""
        c = self.cluster
        return Box3D(
            track_id=track_id,
            label="vehicle",
            center=c.center.copy(),
            size=c.size.copy(),
            yaw=float(self.yaw),
            velocity=self.velocity.copy(),
            acceleration=None if self.acceleration is None else self.acceleration.copy(),
            yaw_rate=float(self.yaw_rate),
            source="auto",
            confidence=float(self.confidence),
        )


def logged_pose(log: Log, index: int, timestamp_us: int, fallback: np.ndarray) -> np.ndarray:
    """T_world_ego [4, 4] at ``timestamp_us`` from the log's ego trajectory (nearest logged
    pose), or ``fallback`` when the log has no poses."""
    traj = log.ego_trajectory()
    if traj is None or len(traj[0]) == 0:
        return np.asarray(fallback, dtype=np.float64)
    ts, T = traj
    k = int(np.argmin(np.abs(np.asarray(ts, dtype=np.int64) - int(timestamp_us))))
    return np.asarray(T[k], dtype=np.float64)


def _icp(
    src: np.ndarray,
    dst: np.ndarray,
    init: np.ndarray,
    dists,
    fallback_xy: np.ndarray,
    weak: float = 0.08,
    iterations: int = 10,
    max_yaw: float = 0.1,
) -> tuple[np.ndarray, float, bool]:
    """Planar rigid transform [4, 4] (yaw and x, y only) mapping src [N, 3] onto dst [M, 3] by
    point-to-plane ICP on the target's open3d normals, with the share of src points that have a
    correspondence within the last of ``dists`` (m; one stage per distance) and whether the
    matched surfaces fixed the translation in both horizontal directions (no fallback).

    The motion is solved in the plane (3 unknowns): a vehicle seen from one side only makes the
    full 6-DoF point-to-plane system singular. Point-to-plane cannot see motion along a flat
    side either (a vehicle seen only from behind slides sideways freely): along a horizontal
    direction that fewer than ``weak`` of the matched normals face, the translation is taken
    from ``fallback_xy`` [2] (the displacement of the fitted boxes' centres) instead. The
    rotation is about the src centroid and at most ``max_yaw`` radians; ``init`` is a pure
    translation.
    """
    import open3d as o3d

    if len(src) > 400:
        src = src[np.linspace(0, len(src) - 1, 400).astype(int)]
    if len(dst) > 2000:
        dst = dst[np.linspace(0, len(dst) - 1, 2000).astype(int)]
    pd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(dst))
    pd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=0.8, max_nn=20))
    normals = np.asarray(pd.normals)
    m0 = src.mean(axis=0)
    m0[2] = 0.0
    src = src - m0
    dst = dst - m0
    yaw = 0.0
    t = np.array(init[:2, 3], dtype=np.float64)
    H = np.zeros((3, 3))
    fitness = 0.0
    for d in dists:
        for _ in range(iterations):
            c, s = np.cos(yaw), np.sin(yaw)
            x = src[:, 0] * c - src[:, 1] * s + t[0]
            y = src[:, 0] * s + src[:, 1] * c + t[1]
            P = np.stack([x, y, src[:, 2]], axis=1)
            d2 = np.sum((P[:, None, :] - dst[None, :, :]) ** 2, axis=2)
            j = np.argmin(d2, axis=1)
            ok = d2[np.arange(len(P)), j] <= d * d
            fitness = float(ok.mean())
            if ok.sum() < 3:
                break
            n = normals[j[ok]]
            r = np.sum(n * (P[ok] - dst[j[ok]]), axis=1)
            dx = -src[ok, 0] * s - src[ok, 1] * c
            dy = src[ok, 0] * c - src[ok, 1] * s
            J = np.stack([n[:, 0], n[:, 1], n[:, 0] * dx + n[:, 1] * dy], axis=1)
            H = J.T @ J
            step = -np.linalg.solve(H + 1e-6 * len(J) * np.eye(3), J.T @ r)
            t += step[:2]
            yaw = float(np.clip(yaw + step[2], -max_yaw, max_yaw))
            if np.abs(step).max() < 1e-4:
                break
    w, E = np.linalg.eigh(H[:2, :2] / max(len(src) * fitness, 1.0))
    for k in range(2):
        if w[k] < weak:
            e = E[:, k]
            t += e * float(e @ (np.asarray(fallback_xy) - t))
    out = np.eye(4)
    out[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    out[:2, 3] = m0[:2] + t - out[:2, :2] @ m0[:2]
    return out, fitness, bool(np.all(w >= weak))


def _fit_motion(
    offsets: list[tuple[float, np.ndarray]], yaws: list[float], cfg: TrackConfig
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Velocity [3], acceleration [3] or None, yaw rate from displacements since earlier sweeps:
    x(0) - x(-dt) = v dt - a dt² / 2 (least squares; acceleration with three sweeps, kept along
    the velocity and clipped to ``max_accel``)."""
    dt = np.array([o[0] for o in offsets])
    D = np.array([o[1][:2] for o in offsets])
    if len(dt) >= 3:
        A = np.stack([dt, -0.5 * dt**2], axis=1)
        sol, *_ = np.linalg.lstsq(A, D, rcond=None)
        v, a = sol[0], sol[1]
        # along the direction of travel only: sideways second differences are mostly noise
        sp = np.linalg.norm(v)
        a_long = float(np.clip(a @ v / sp, -cfg.max_accel, cfg.max_accel)) if sp > 1e-6 else 0.0
        acc = np.array([*(a_long * v / max(sp, 1e-6)), 0.0])
    else:
        v = (dt @ D) / (dt @ dt)
        acc = None
    yr = float(np.dot(dt, np.asarray(yaws)) / (dt @ dt))
    yr = float(np.clip(yr, -cfg.max_yaw_rate, cfg.max_yaw_rate))
    return np.array([v[0], v[1], 0.0]), acc, yr


def supported_velocity(
    offsets: list[tuple[float, np.ndarray]],
    yaw: float,
    range_m: float,
    cfg: TrackConfig,
    n_points: int = 0,
) -> np.ndarray | None:
    """The constant velocity [3] that the matched sweeps support, or None when they do not.

    ``offsets``: per matched earlier sweep, (dt s, displacement [3] since then). The velocity is
    the least-squares fit of displacement = v · dt. It is supported when the cluster was seen in
    at least ``min_sweeps`` sweeps, every displacement lies within the noise
    (``noise_m + noise_per_m · range``) of the fit, the motion over the window exceeds twice
    the noise, its speed is plausible (≤ ``max_speed``) and it runs along the box's length axis
    (sideways share ≤ ``max_side_share`` plus the noise). With fewer sweeps (nothing to check
    consistency against) only a strong single match counts: a well observed cluster (at least
    ``single_min_points`` returns, so ICP has a shape to lock onto) that moved more than
    ``single_snr`` times the noise. Otherwise the track has no trusted motion and stays where
    it is."""
    if not offsets:
        return None
    dt = np.array([o[0] for o in offsets])
    D = np.array([np.asarray(o[1], dtype=np.float64)[:2] for o in offsets])
    v = (dt @ D) / (dt @ dt)
    noise = cfg.noise_m + cfg.noise_per_m * range_m
    resid = np.linalg.norm(D - dt[:, None] * v[None, :], axis=1)
    if resid.max() > noise:
        return None
    speed = float(np.hypot(*v))
    span = float(dt.max())
    if len(offsets) + 1 < cfg.min_sweeps:
        if n_points < cfg.single_min_points or speed * span <= cfg.single_snr * noise:
            return None
    if speed * span <= 2 * noise or speed > cfg.max_speed:
        return None
    side = abs(-np.sin(yaw) * v[0] + np.cos(yaw) * v[1])
    if side > cfg.max_side_share * speed + noise / span:
        return None
    return np.array([v[0], v[1], 0.0])


def detect(
    log: Log,
    index: int,
    cluster_config: ClusterConfig | None = None,
    track_config: TrackConfig | None = None,
) -> list[DetectedActor]:
    """Vehicles of frame ``index``'s sweep with their motion from sweeps ``index-1`` ..
    ``index-max_scans`` (fewer at the start of the log; never later ones). Nearest first."""
    ccfg = cluster_config or ClusterConfig()
    tcfg = track_config or TrackConfig()
    index = log.check_index(index)
    fr = log.frame(index)
    if fr.lidar is None or len(fr.lidar) == 0:
        return []
    T_w_cur = logged_pose(log, index, fr.timestamp_us, fr.T_world_ego)
    clusters = find_clusters(fr.lidar, ground_plane(fr.lidar), ccfg)
    offsets: list[list[tuple[float, np.ndarray]]] = [[] for _ in clusters]
    yaws: list[list[float]] = [[] for _ in clusters]
    # per cluster: every accepted match fixed the translation by the surfaces themselves
    constrained = [True] * len(clusters)
    for k in range(1, tcfg.max_scans + 1):
        j = index - k
        if j < 0:
            break
        prev = log.frame(j)
        if prev.lidar is None or len(prev.lidar) == 0:
            break
        dt = (fr.timestamp_us - prev.timestamp_us) / 1e6
        if dt <= 0:
            continue
        T_cur_prev = inv_pose(T_w_cur) @ logged_pose(log, j, prev.timestamp_us, prev.T_world_ego)
        prev_clusters = find_clusters(prev.lidar, ground_plane(prev.lidar), ccfg)
        if not prev_clusters:
            continue
        # previous clusters in the current ego frame
        P_pts = [(T_cur_prev[:3, :3] @ c.points.T).T + T_cur_prev[:3, 3] for c in prev_clusters]
        P_ctr = np.array([T_cur_prev[:3, :3] @ c.center + T_cur_prev[:3, 3] for c in prev_clusters])
        for i, c in enumerate(clusters):
            if offsets[i]:  # predict from the motion found so far
                v, _, _ = _fit_motion(offsets[i], yaws[i], tcfg)
                pred = c.center - v * dt
                gate = tcfg.predicted_gate_m
            else:
                pred = c.center
                gate = tcfg.max_speed * dt + tcfg.gate_m
            dist = np.hypot(*(P_ctr[:, :2] - pred[:2]).T)
            order = [m for m in np.argsort(dist) if dist[m] <= gate][:2]
            best = None
            for m in order:
                init = np.eye(4)
                init[:2, 3] = P_ctr[m, :2] - c.center[:2]
                if offsets[i]:
                    init[:2, 3] = pred[:2] - c.center[:2]
                T, fit, fixed = _icp(
                    c.points,
                    P_pts[m],
                    init,
                    tcfg.icp_distances,
                    P_ctr[m, :2] - c.center[:2],
                    max_yaw=tcfg.max_yaw_rate * dt,
                )
                if fit >= tcfg.min_fitness and (best is None or fit > best[1]):
                    best = (T, fit, fixed)
            if best is None:
                continue
            T = best[0]
            constrained[i] &= best[2]
            c_prev = T[:3, :3] @ c.center + T[:3, 3]
            offsets[i].append((dt, c.center - c_prev))
            yaws[i].append(-float(np.arctan2(T[1, 0], T[0, 0])))
    out = []
    for i, c in enumerate(clusters):
        det_conf = float(np.clip(len(c.points) / 50.0, 0.2, 1.0))
        if offsets[i]:
            v, acc, yr = _fit_motion(offsets[i], yaws[i], tcfg)
            if np.hypot(v[0], v[1]) > tcfg.max_speed:  # an implausible match: treat as none
                offsets[i] = []
        if offsets[i]:
            rng = float(np.hypot(*c.center[:2]))
            sv = supported_velocity(offsets[i], c.yaw, rng, tcfg, n_points=len(c.points))
            if sv is None or np.hypot(sv[0], sv[1]) < tcfg.static_speed:
                # the sweeps do not support a motion: the track stays where it is
                v, acc, yr = np.zeros(3), (None if acc is None else np.zeros(3)), 0.0
            else:
                v = sv
            static = False
            conf = det_conf
        else:
            v, acc, yr = np.zeros(3), None, 0.0
            static = True
            conf = det_conf * tcfg.unmatched_confidence
        if c.needs_motion and (
            np.hypot(v[0], v[1]) < tcfg.static_speed or not constrained[i] or static
        ):
            # longer than any rigid vehicle: a wall, a facade or parked cars in a row unless
            # the sweeps show it moving, with its motion fixed by its own surfaces (a flat
            # side sliding along itself would otherwise take the boxes' centres' motion,
            # which for a structure cut by the sweep's range moves with the ego)
            continue
        yaw = c.yaw
        if np.hypot(v[0], v[1]) > 1.0 and np.cos(yaw - np.arctan2(v[1], v[0])) < 0:
            yaw = float(np.mod(yaw + 2 * np.pi, 2 * np.pi) - np.pi)
        out.append(
            DetectedActor(
                cluster=c,
                yaw=yaw,
                velocity=v,
                acceleration=acc,
                yaw_rate=yr,
                matched=len(offsets[i]),
                static=static,
                confidence=conf,
                offsets=offsets[i],
            )
        )
    return out


def detect_actors(log: Log, index: int) -> list[Box3D]:
    """Vehicle boxes of frame ``index`` found in its LiDAR sweep, in its ego frame, with
    motion from earlier sweeps: ``source="auto"``, track ids ``auto0``, ``auto1``, ... nearest
    first (see :func:`detect`)."""
    return [d.box(f"auto{i}") for i, d in enumerate(detect(log, index))]
