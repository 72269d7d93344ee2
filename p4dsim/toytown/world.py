"""Toytown: a procedural, seeded driving world that ray-casts analytically.

It is p4dsim's ground-truth oracle: every novel view that p4dsim renders from a Gaussian scene
can be compared against :meth:`ToytownWorld.render` at the same pose and time.

Layout (world frame: x forward along the road, y left, z up, metres):

* a straight road along +x between ``ROAD_RIGHT`` (y = -7.75) and ``ROAD_LEFT`` (y = 5.25):
  the ego lane centred at y = 0, a same-direction lane at y = -3.5, an oncoming lane at
  y = +3.5 and a parking strip at y = -6.5; dashed white lines at y = ±1.75, solid edge lines
  at y = -5.25 and along the left kerb;
* raised kerbs (``KERB_HEIGHT`` = 0.15 m) with 3 m tiled sidewalks, lawns beyond;
* building rows set back on both sides with gaps (brick or plaster facades, window grids), a
  side-street gap on the left at x ∈ [34, 58], far rows behind and walls closing both ends of
  the road, so every ray below the skyline has a finite depth;
* street-light poles on both sidewalks and bollards along the parking strip;
* a sky (gradient and clouds, depth ``inf``).

Agents move in closed form (:mod:`p4dsim.toytown.motion`): the ego drives along the ego lane at
8 m/s and, reacting to the lead vehicle that brakes from t = 0.5 s, brakes gently from
t = 1.2 s; other vehicles drive at constant velocity (same direction and oncoming), one is
parked and one turns with a constant yaw rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p4dsim.geometry import (
    BOX_CORNER_SIGNS,
    R_FLU_FROM_RDF,
    box_corners,
    make_pose,
    pose_from_xyz_yaw,
)
from p4dsim.toytown import textures as tx
from p4dsim.toytown.motion import PlanarMotion, braking_distance, braking_speed
from p4dsim.toytown.raycast import ray_box, ray_ground, ray_vertical_cylinder

LANE_WIDTH = 3.5
ROAD_LEFT = 5.25
ROAD_RIGHT = -7.75
KERB_HEIGHT = 0.15
SIDEWALK_WIDTH = 3.0
#: x extent of the road; walls close it at both ends
X_MIN, X_MAX = -220.0, 380.0
#: lane lines: (centre y, width, dashed)
LANE_LINES: list[tuple[float, float, bool]] = [
    (1.75, 0.15, True),
    (-1.75, 0.15, True),
    (-5.25 + 0.1, 0.2, False),
    (ROAD_LEFT - 0.25, 0.2, False),
]
DASH_PERIOD, DASH_LENGTH = 9.0, 3.0

#: ego speed (m/s), start (s) and deceleration (m/s²) of its braking
EGO_SPEED, EGO_BRAKE_START, EGO_DECEL = 8.0, 1.2, 2.5
#: camera pose in the ego frame: 1.65 m above the ground, looking along +x (OpenCV axes)
T_EGO_CAMERA = make_pose(R_FLU_FROM_RDF, np.array([0.5, 0.0, 1.65]))
#: LiDAR (64 beams, spinning) centre in the ego frame; axes as the ego frame
LIDAR_POSITION = np.array([0.0, 0.0, 1.73])
LIDAR_ELEVATIONS_DEG = np.linspace(-24.8, 2.0, 64)
LIDAR_AZIMUTH_STEP_DEG = 360.0 / 1028
LIDAR_MAX_RANGE = 100.0

_SUN = np.array([0.35, 0.45, 0.82]) / np.linalg.norm([0.35, 0.45, 0.82])
#: semantic classes of :attr:`GroundTruth.semantic`
SEMANTIC_CLASSES = ("sky", "road", "sidewalk", "building", "pole", "vehicle")
_SKY, _ROAD, _SIDEWALK, _BUILDING, _POLE, _VEHICLE = range(6)
_BOX_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
_MAX_RAYS_PER_CHUNK = 160_000


@dataclass
class VehicleState:
    """One vehicle at one time, in the world frame.

    T_world_box: [4, 4] pose of the box centre (not its bottom), yaw about z; size: [3] length,
    width, height (m); velocity, acceleration: [3] world frame (m/s, m/s²); yaw_rate: rad/s.
    """

    track_id: str
    label: str
    T_world_box: np.ndarray
    size: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    yaw_rate: float


@dataclass
class GroundTruth:
    """An exact rendering of toytown.

    rgb: uint8 [H, W, 3]; depth: float32 [H, W] camera z (m), ``inf`` for sky;
    actor_id: int32 [H, W] index into :attr:`ToytownWorld.track_ids` of the vehicle seen at
    the pixel, -1 otherwise; normal: float32 [H, W, 3] unit surface normal in the world frame
    (0 for sky); semantic: uint8 [H, W] index into :data:`SEMANTIC_CLASSES`.
    Depth, actor_id, normal and semantic come from the ray through the pixel centre.
    """

    rgb: np.ndarray
    depth: np.ndarray
    actor_id: np.ndarray
    normal: np.ndarray
    semantic: np.ndarray


@dataclass(frozen=True)
class _Vehicle:
    track_id: str
    kind: str
    size: np.ndarray
    color: np.ndarray
    motion: PlanarMotion


@dataclass
class _Scene:
    """Primitives at one time. Boxes: centre [B, 3], R [B, 3, 3] (box axes in world),
    half [B, 3]; the first ``n_buildings`` are buildings, the rest vehicles. Cylinders:
    xy [C, 2], radius [C], z0 [C], z1 [C]. Global primitive ids: 0 ground, 1..B boxes,
    B+1..B+C cylinders."""

    box_c: np.ndarray
    box_R: np.ndarray
    box_h: np.ndarray
    n_buildings: int
    cyl_xy: np.ndarray
    cyl_r: np.ndarray
    cyl_z0: np.ndarray
    cyl_z1: np.ndarray

    @property
    def n_boxes(self) -> int:
        return len(self.box_c)

    def corners(self) -> np.ndarray:
        """Bounding corners [B + C, 8, 3] of every box and cylinder."""
        local = BOX_CORNER_SIGNS
        bc = (
            np.einsum("bij,bkj->bki", self.box_R, local[None] * self.box_h[:, None, :])
            + self.box_c[:, None]
        )
        cc = np.stack(
            [self.cyl_xy[:, 0], self.cyl_xy[:, 1], (self.cyl_z0 + self.cyl_z1) / 2], axis=1
        )
        ch = np.stack([self.cyl_r, self.cyl_r, (self.cyl_z1 - self.cyl_z0) / 2], axis=1)
        cyc = local[None] * ch[:, None, :] + cc[:, None]
        return np.concatenate([bc, cyc], axis=0)


class ToytownWorld:
    """The seeded toytown world: static layout, agents' closed-form motion, ray casting.

    ``seed`` changes textures, colours, building layout and vehicle placements a little; the
    structure (a lead vehicle ahead in the ego lane that brakes) is the same for every seed.
    """

    fps: float = 10.0

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self._build_static(rng)
        self._vehicles = self._make_vehicles(rng)
        self.track_ids: list[str] = [v.track_id for v in self._vehicles]

    # ------------------------------------------------------------------ layout

    def _build_static(self, rng: np.random.Generator) -> None:
        centers, halves, colors, styles = [], [], [], []

        def add(x0, x1, y0, y1, h, style=None):
            centers.append([(x0 + x1) / 2, (y0 + y1) / 2, h / 2])
            halves.append([(x1 - x0) / 2, (y1 - y0) / 2, h / 2])
            st = int(rng.random() < 0.5) if style is None else style
            if st == 1:
                base = np.array([0.55, 0.30, 0.22]) * rng.uniform(0.8, 1.2, 3)
            else:
                base = np.array(
                    rng.choice(
                        [
                            [0.85, 0.80, 0.70],
                            [0.75, 0.78, 0.80],
                            [0.88, 0.74, 0.58],
                            [0.70, 0.76, 0.66],
                            [0.82, 0.66, 0.62],
                        ]
                    )
                ) * rng.uniform(0.85, 1.05)
            colors.append(np.clip(base, 0.05, 0.95))
            styles.append(st)

        for side in (1.0, -1.0):
            x = X_MIN
            while x < X_MAX:
                width = rng.uniform(8.0, 22.0)
                x1 = min(x + width, X_MAX)
                if side > 0 and x1 > 34.0 and x < 58.0:  # side street on the left
                    x = 58.0
                    continue
                setback = (10.5 if side > 0 else 13.0) + rng.uniform(0.0, 3.0)
                depth = rng.uniform(8.0, 15.0)
                y0, y1 = sorted((side * setback, side * (setback + depth)))
                add(x, x1, y0, y1, rng.uniform(6.0, 22.0))
                x = x1 + (rng.uniform(2.0, 7.0) if rng.random() < 0.6 else 0.0)
            # far row
            x = X_MIN - 12.0
            while x < X_MAX + 12.0:
                x1 = min(x + rng.uniform(30.0, 60.0), X_MAX + 12.0)
                y0, y1 = sorted((side * 42.0, side * 54.0))
                add(x, x1, y0, y1, rng.uniform(10.0, 18.0))
                x = x1
        add(X_MAX, X_MAX + 12.0, -60.0, 60.0, 20.0)
        add(X_MIN - 12.0, X_MIN, -60.0, 60.0, 20.0)
        self._b_center = np.array(centers)
        self._b_half = np.array(halves)
        self._b_color = np.array(colors, dtype=np.float32)
        self._b_style = np.array(styles, dtype=np.int8)
        self._b_offset = rng.uniform(0.0, 100.0, len(centers))

        # poles: street lights on both sidewalks, bollards along the parking strip
        xs, ys, rs, z1s = [], [], [], []
        for _side, y, off in (
            (1.0, ROAD_LEFT + 2.2, rng.uniform(0, 25)),
            (-1.0, ROAD_RIGHT - 2.2, rng.uniform(0, 25)),
        ):
            for x in np.arange(X_MIN + off, X_MAX, 25.0):
                xs.append(x)
                ys.append(y)
                rs.append(0.12)
                z1s.append(6.5)
        for x in np.arange(X_MIN + rng.uniform(0, 12), X_MAX, 12.0):
            xs.append(x)
            ys.append(ROAD_RIGHT - 0.45)
            rs.append(0.08)
            z1s.append(1.0)
        self._p_xy = np.stack([xs, ys], axis=1)
        self._p_r = np.array(rs)
        self._p_z0 = np.full(len(xs), KERB_HEIGHT)
        self._p_z1 = np.array(z1s)

    def _make_vehicles(self, rng: np.random.Generator) -> list[_Vehicle]:
        def jit(a):
            return float(rng.uniform(-a, a))

        palette = np.array(
            [
                [0.75, 0.10, 0.08],
                [0.10, 0.22, 0.55],
                [0.85, 0.85, 0.85],
                [0.20, 0.20, 0.22],
                [0.55, 0.57, 0.60],
                [0.15, 0.45, 0.25],
                [0.85, 0.65, 0.10],
                [0.35, 0.20, 0.45],
            ]
        )
        order = iter(rng.permutation(len(palette)))

        def color():
            return np.clip(palette[next(order)] * rng.uniform(0.85, 1.1), 0.03, 0.95).astype(
                np.float32
            )

        car = np.array([4.5, 1.85, 1.5])
        specs = [
            # lead vehicle in the ego lane: 8 m/s, brakes at 3 m/s² from t = 0.5 s until it stops
            (
                "car0",
                "car",
                car * [1 + jit(0.05), 1, 1 + jit(0.05)],
                PlanarMotion(18.0 + jit(1.0), 0.0, 0.0, 8.0 + jit(0.3), brake_start=0.5, decel=3.0),
            ),
            # same direction, right lane, faster
            (
                "car1",
                "car",
                car * [1.05, 1.02, 0.95],
                PlanarMotion(7.0 + jit(1.5), -3.5, 0.0, 10.0 + jit(0.5)),
            ),
            # oncoming
            (
                "car2",
                "car",
                car * [0.95, 1.0, 1.0],
                PlanarMotion(40.0 + jit(3.0), 3.5, np.pi, 9.0 + jit(0.5)),
            ),
            # oncoming truck
            (
                "truck3",
                "truck",
                np.array([8.0 + jit(0.5), 2.5, 3.2]),
                PlanarMotion(80.0 + jit(4.0), 3.5, np.pi, 7.0 + jit(0.5)),
            ),
            # parked van in the parking strip
            (
                "van4",
                "van",
                np.array([5.4, 2.05, 2.3]),
                PlanarMotion(28.0 + jit(2.0), -6.5, 0.0, 0.0),
            ),
            # oncoming car turning (for the oncoming driver: right) into the side street
            (
                "car5",
                "car",
                car * [0.92, 0.97, 1.02],
                PlanarMotion(60.0 + jit(1.0), 3.5, np.pi, 5.0, yaw_rate=-0.2),
            ),
            # following in the right lane, behind the ego
            ("car6", "car", car, PlanarMotion(-20.0 + jit(2.0), -3.5, 0.0, 9.0 + jit(0.5))),
        ]
        return [
            _Vehicle(tid, kind, np.asarray(size, dtype=np.float64), color(), m)
            for tid, kind, size, m in specs
        ]

    # ------------------------------------------------------------------ agents

    def ego_pose(self, t) -> np.ndarray:
        """T_world_ego [..., 4, 4] at absolute log time(s) t [...] (s). The ego frame origin is
        on the ground under the vehicle; it drives along the ego lane (y = 0, yaw 0)."""
        t = np.asarray(t, dtype=np.float64)
        s = braking_distance(t, EGO_SPEED, EGO_BRAKE_START, EGO_DECEL)
        xyz = np.stack([s, np.zeros_like(s), np.zeros_like(s)], axis=-1)
        return pose_from_xyz_yaw(xyz, np.zeros_like(s))

    def ego_velocity(self, t) -> np.ndarray:
        """Ego velocity [..., 3] at time(s) t [...], in the ego frame (m/s)."""
        t = np.asarray(t, dtype=np.float64)
        v = braking_speed(t, EGO_SPEED, EGO_BRAKE_START, EGO_DECEL)
        return np.stack([v, np.zeros_like(v), np.zeros_like(v)], axis=-1)

    def vehicles(self, t: float) -> list[VehicleState]:
        """Every vehicle's state at time t (s), in :attr:`track_ids` order."""
        out = []
        for v in self._vehicles:
            xy, yaw, vel, acc = v.motion.state(np.float64(t))
            center = np.array([xy[0], xy[1], v.size[2] / 2])
            out.append(
                VehicleState(
                    track_id=v.track_id,
                    label="vehicle",
                    T_world_box=pose_from_xyz_yaw(center, float(yaw)),
                    size=v.size.copy(),
                    velocity=np.array([vel[0], vel[1], 0.0]),
                    acceleration=np.array([acc[0], acc[1], 0.0]),
                    yaw_rate=float(v.motion.yaw_rate),
                )
            )
        return out

    def ground_height(self, xy) -> np.ndarray:
        """World z [...] of the ground surface at points xy [..., 2]: 0 on the road, the kerb
        height on sidewalks and beyond."""
        y = np.asarray(xy, dtype=np.float64)[..., 1]
        return np.where((y >= ROAD_RIGHT) & (y <= ROAD_LEFT), 0.0, KERB_HEIGHT)

    # ------------------------------------------------------------------ ray casting

    def _scene(self, t: float) -> _Scene:
        states = self.vehicles(t)
        nb = len(self._b_center)
        box_c = np.concatenate([self._b_center, np.array([s.T_world_box[:3, 3] for s in states])])
        box_R = np.concatenate(
            [
                np.broadcast_to(np.eye(3), (nb, 3, 3)),
                np.array([s.T_world_box[:3, :3] for s in states]),
            ]
        )
        box_h = np.concatenate([self._b_half, np.array([s.size / 2 for s in states])])
        return _Scene(box_c, box_R, box_h, nb, self._p_xy, self._p_r, self._p_z0, self._p_z1)

    def _trace(
        self, scene: _Scene, o: np.ndarray, D: np.ndarray, select
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest hits of rays (origin o [3], directions D [M, 3]): t [M], primitive id [M]
        (-1 miss), face code [M]. ``select(k)`` gives the ray indices worth testing against
        primitive k (boxes then cylinders): None for all, or an index array."""
        t_best, face_best = ray_ground(o, D, ROAD_RIGHT, ROAD_LEFT, KERB_HEIGHT)
        prim_best = np.where(np.isfinite(t_best), 0, -1).astype(np.int32)
        nbx = scene.n_boxes
        for k in range(nbx + len(scene.cyl_r)):
            idx = select(k)
            if idx is not None and len(idx) == 0:
                continue
            Dk = D if idx is None else D[idx]
            if k < nbx:
                R = scene.box_R[k]
                t, face = ray_box(R.T @ (o - scene.box_c[k]), Dk @ R, scene.box_h[k])
            else:
                c = k - nbx
                t, face = ray_vertical_cylinder(
                    o, Dk, scene.cyl_xy[c], scene.cyl_r[c], scene.cyl_z0[c], scene.cyl_z1[c]
                )
            if idx is None:
                better = t < t_best
                t_best = np.where(better, t, t_best)
                face_best = np.where(better, face, face_best)
                prim_best = np.where(better, k + 1, prim_best)
            else:
                better = t < t_best[idx]
                sel = idx[better]
                t_best[sel] = t[better]
                face_best[sel] = face[better]
                prim_best[sel] = k + 1
        return t_best, prim_best, face_best

    def _normals(
        self, scene: _Scene, P: np.ndarray, prim: np.ndarray, face: np.ndarray
    ) -> np.ndarray:
        """Unit world normals [M, 3] at hit points P [M, 3] (zeros for misses)."""
        n = np.zeros(P.shape)
        g = prim == 0
        n[g & (face <= 1), 2] = 1.0
        n[g & (face == 2), 1] = -1.0
        n[g & (face == 3), 1] = 1.0
        nbx = scene.n_boxes
        b = (prim >= 1) & (prim <= nbx)
        if np.any(b):
            k = prim[b] - 1
            f = face[b].astype(np.int64)
            local = np.zeros((len(k), 3))
            local[np.arange(len(k)), f // 2] = np.where(f % 2 == 0, 1.0, -1.0)
            n[b] = np.einsum("kij,kj->ki", scene.box_R[k], local)
        c = prim > nbx
        if np.any(c):
            k = prim[c] - 1 - nbx
            rel = P[c, :2] - scene.cyl_xy[k]
            side = np.concatenate(
                [
                    rel / np.maximum(np.linalg.norm(rel, axis=1, keepdims=True), 1e-9),
                    np.zeros((len(k), 1)),
                ],
                axis=1,
            )
            n[c] = np.where((face[c] == 1)[:, None], np.array([0.0, 0.0, 1.0]), side)
        return n

    # ------------------------------------------------------------------ shading

    def _shade(self, scene, o, D, t, prim, face, pix_angle) -> np.ndarray:
        """Colours [M, 3] float32 of traced rays; ``pix_angle`` is the angle (rad) one output
        pixel subtends, which sets every texture's footprint."""
        M = len(t)
        col = np.zeros((M, 3), dtype=np.float32)
        dn = np.linalg.norm(D, axis=1)
        hit = prim >= 0
        P = o + np.where(hit, t, 0.0)[:, None] * D
        N = self._normals(scene, P, prim, face)
        dist = np.where(hit, t, 0.0) * dn
        cosang = np.abs(np.einsum("ij,ij->i", N, D)) / dn
        fw = dist * pix_angle / np.maximum(cosang, 0.2)
        seed = self.seed * 7919

        # sky
        s = ~hit
        if np.any(s):
            col[s] = tx.sky(D[s] / dn[s, None], np.full(int(s.sum()), pix_angle), seed)

        # ground
        g = prim == 0
        if np.any(g):
            gi = np.flatnonzero(g)
            x, y, z = P[gi, 0], P[gi, 1], P[gi, 2]
            f = face[gi]
            fwg = fw[gi]
            out = np.zeros((len(gi), 3), dtype=np.float32)
            road = f == 0
            if np.any(road):
                # anisotropic footprint on the road: elongated along the ray's ground direction
                d = D[gi[road]]
                h = d[:, :2] / np.maximum(np.linalg.norm(d[:, :2], axis=1, keepdims=True), 1e-9)
                across = dist[gi[road]] * pix_angle
                along = fwg[road]
                fwx = np.hypot(h[:, 0] * along, h[:, 1] * across)
                fwy = np.hypot(h[:, 1] * along, h[:, 0] * across)
                xr, yr = x[road], y[road]
                c = tx.asphalt(xr, yr, np.sqrt(fwx * fwy), seed)
                park = (
                    tx.soft_step(-5.25 - yr, fwy)
                    * tx.periodic_band(xr, 6.0, -0.06, 0.06, fwx)
                    * tx.soft_step(yr - (ROAD_RIGHT + 0.3), fwy)
                )
                paint = np.maximum(
                    tx.road_markings(xr, yr, fwx, fwy, LANE_LINES, DASH_PERIOD, DASH_LENGTH), park
                )
                paint = paint * (0.8 + 0.4 * tx.fbm(xr, yr, seed + 3, 0.8, 3, np.minimum(fwx, fwy)))
                out[road] = tx.mix(
                    c, np.array([0.88, 0.88, 0.84], np.float32), np.clip(paint, 0, 1)
                )
            top = f == 1
            if np.any(top):
                xt, yt, fwt = x[top], y[top], fwg[top]
                dk = np.where(
                    yt > 0, yt - ROAD_LEFT, ROAD_RIGHT - yt
                )  # distance from the kerb edge
                walk = tx.sidewalk_tiles(xt, yt, fwt, seed)
                grass = tx.lawn(xt, yt, fwt, seed)
                c = tx.mix(walk, grass, tx.soft_step(dk - SIDEWALK_WIDTH, fwt))
                stone = tx.kerb_stone(xt, yt, fwt, seed)
                out[top] = tx.mix(c, stone, tx.soft_step(0.25 - dk, fwt))
            kf = f >= 2
            if np.any(kf):
                out[kf] = tx.kerb_stone(x[kf], z[kf], fwg[kf], seed)
            col[gi] = out

        nbx = scene.n_boxes
        nb = scene.n_buildings
        # buildings
        bmask = (prim >= 1) & (prim <= nb)
        if np.any(bmask):
            bi = np.flatnonzero(bmask)
            k = prim[bi] - 1
            f = face[bi]
            Pl = P[bi] - scene.box_c[k] + scene.box_h[k]  # from the min corner
            u = np.where(f // 2 == 0, Pl[:, 1], Pl[:, 0])
            col[bi] = tx.facade(
                u,
                P[bi, 2],
                fw[bi],
                self._b_color[k],
                self._b_style[k],
                2 * scene.box_h[k, 2],
                self._b_offset[k],
                seed,
            )
        # vehicles
        vmask = (prim > nb) & (prim <= nbx)
        if np.any(vmask):
            vi = np.flatnonzero(vmask)
            k = prim[vi] - 1
            Pl = np.einsum("kji,kj->ki", scene.box_R[k], P[vi] - scene.box_c[k])
            colors = np.array([v.color for v in self._vehicles])[k - nb]
            col[vi] = tx.vehicle_paint(
                face[vi].astype(np.int64), Pl, 2 * scene.box_h[k], colors, fw[vi], seed
            )
        # poles
        cmask = prim > nbx
        if np.any(cmask):
            ci = np.flatnonzero(cmask)
            col[ci] = tx.metal_pole(P[ci, 2], fw[ci], seed)

        # sun and sky light
        lam = 0.62 + 0.38 * np.clip(N @ _SUN, 0.0, 1.0)
        col = np.where(hit[:, None], col * lam[:, None].astype(np.float32), col)
        return col

    def _semantic(self, scene: _Scene, prim: np.ndarray, face: np.ndarray) -> np.ndarray:
        sem = np.full(prim.shape, _SKY, dtype=np.uint8)
        sem[(prim == 0) & (face == 0)] = _ROAD
        sem[(prim == 0) & (face >= 1)] = _SIDEWALK
        sem[(prim >= 1) & (prim <= scene.n_buildings)] = _BUILDING
        sem[(prim > scene.n_buildings) & (prim <= scene.n_boxes)] = _VEHICLE
        sem[prim > scene.n_boxes] = _POLE
        return sem

    # ------------------------------------------------------------------ camera

    def _camera_rects(self, scene, K, T_world_camera, s, Hs, Ws) -> list:
        """Per primitive (boxes, then cylinders) the conservative sub-sample rectangle
        (r0, r1, c0, c1) it can cover, or None (whole image) / () (not visible)."""
        corners = scene.corners()  # [P, 8, 3]
        R = T_world_camera[:3, :3]
        pc = (corners - T_world_camera[:3, 3]) @ R  # camera frame
        near = 1e-3
        rects: list = []
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        for k in range(len(pc)):
            p = pc[k]
            z = p[:, 2]
            if np.all(z < near):
                rects.append(())
                continue
            pts = [p[z >= near]]
            a, b = p[_BOX_EDGES[:, 0]], p[_BOX_EDGES[:, 1]]
            za, zb = a[:, 2] - near, b[:, 2] - near
            cross = za * zb < 0
            if np.any(cross):
                w = za[cross] / (za[cross] - zb[cross])
                pts.append(a[cross] + w[:, None] * (b[cross] - a[cross]))
            q = np.concatenate(pts)
            u = fx * q[:, 0] / q[:, 2] + cx
            v = fy * q[:, 1] / q[:, 2] + cy
            c0 = max(int(np.floor(u.min() * s - 0.5)) - 1, 0)
            c1 = min(int(np.ceil(u.max() * s - 0.5)) + 2, Ws)
            r0 = max(int(np.floor(v.min() * s - 0.5)) - 1, 0)
            r1 = min(int(np.ceil(v.max() * s - 0.5)) + 2, Hs)
            rects.append((r0, r1, c0, c1) if (c1 > c0 and r1 > r0) else ())
        return rects

    def _cast_camera(
        self,
        scene,
        K,
        T_world_camera,
        us: np.ndarray,
        vs: np.ndarray,
        s: int,
        shade: bool,
        pix_angle: float,
    ):
        """Trace (and shade) the rays through image points us [Ws] x vs [Hs] in row chunks."""
        Hs, Ws = len(vs), len(us)
        rects = self._camera_rects(scene, K, T_world_camera, s, Hs, Ws)
        o = T_world_camera[:3, 3].astype(np.float64)
        R = T_world_camera[:3, :3]
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        xs = (us - cx) / fx
        t_all = np.empty(Hs * Ws)
        prim_all = np.empty(Hs * Ws, dtype=np.int32)
        face_all = np.empty(Hs * Ws, dtype=np.int8)
        col_all = np.empty((Hs * Ws, 3), dtype=np.float32) if shade else None
        rows_per = max(1, _MAX_RAYS_PER_CHUNK // Ws)
        for r0 in range(0, Hs, rows_per):
            r1 = min(r0 + rows_per, Hs)
            ys = (vs[r0:r1] - cy) / fy
            dc = np.stack(
                np.broadcast_arrays(xs[None, :], ys[:, None], np.ones((1, 1))), axis=-1
            ).reshape(-1, 3)
            D = dc @ R.T

            def select(k, r0=r0, r1=r1):
                rect = rects[k]
                if rect is None:
                    return None
                if rect == ():
                    return np.empty(0, dtype=np.int64)
                a0, a1 = max(rect[0], r0), min(rect[1], r1)
                if a1 <= a0:
                    return np.empty(0, dtype=np.int64)
                rr = np.arange(a0 - r0, a1 - r0)
                cc = np.arange(rect[2], rect[3])
                return (rr[:, None] * Ws + cc[None, :]).ravel()

            t, prim, face = self._trace(scene, o, D, select)
            sl = slice(r0 * Ws, r1 * Ws)
            t_all[sl], prim_all[sl], face_all[sl] = t, prim, face
            if shade:
                col_all[sl] = self._shade(scene, o, D, t, prim, face, pix_angle)
        return t_all, prim_all, face_all, col_all

    def render(self, K, width, height, T_world_camera, t, supersample: int = 1) -> GroundTruth:
        """Ray-cast the world at time t (s) from a pinhole camera.

        K: [3, 3] intrinsics (pixels); width, height: image size; T_world_camera: [4, 4]
        camera pose (OpenCV axes). Pixel (i, j) is the ray through (u, v) = (j + 0.5, i + 0.5);
        with ``supersample`` s, colours average s×s sub-samples at ((j + (a + 0.5)/s),
        (i + (b + 0.5)/s)); depth, actor id, normal and semantic come from the centre ray.
        """
        K = np.asarray(K, dtype=np.float64)
        T = np.asarray(T_world_camera, dtype=np.float64)
        W, H, s = int(width), int(height), int(supersample)
        if s < 1:
            raise ValueError(f"supersample must be ≥ 1, got {supersample}")
        scene = self._scene(float(t))
        pix_angle = 1.0 / float(np.sqrt(K[0, 0] * K[1, 1]))
        us = (np.arange(W * s) + 0.5) / s
        vs = (np.arange(H * s) + 0.5) / s
        ts, prim, face, col = self._cast_camera(scene, K, T, us, vs, s, True, pix_angle)
        rgb = col.reshape(H, s, W, s, 3).mean(axis=(1, 3))
        if s % 2 == 1:
            c = s // 2
            tc = ts.reshape(H, s, W, s)[:, c, :, c].ravel()
            pc = prim.reshape(H, s, W, s)[:, c, :, c].ravel()
            fc = face.reshape(H, s, W, s)[:, c, :, c].ravel()
        else:
            tc, pc, fc, _ = self._cast_camera(
                scene, K, T, np.arange(W) + 0.5, np.arange(H) + 0.5, 1, False, pix_angle
            )
        # centre-ray geometry
        jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        dc = np.stack(
            [(jj - K[0, 2]) / K[0, 0], (ii - K[1, 2]) / K[1, 1], np.ones_like(jj)], axis=-1
        ).reshape(-1, 3)
        Dw = dc @ T[:3, :3].T
        P = T[:3, 3] + np.where(pc >= 0, tc, 0.0)[:, None] * Dw
        normal = self._normals(scene, P, pc, fc)
        nb, nbx = scene.n_buildings, scene.n_boxes
        actor = np.where((pc > nb) & (pc <= nbx), pc - 1 - nb, -1).astype(np.int32)
        return GroundTruth(
            rgb=np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8),
            depth=np.where(pc >= 0, tc, np.inf).astype(np.float32).reshape(H, W),
            actor_id=actor.reshape(H, W),
            normal=normal.astype(np.float32).reshape(H, W, 3),
            semantic=self._semantic(scene, pc, fc).reshape(H, W),
        )

    # ------------------------------------------------------------------ lidar

    def lidar_directions(self) -> np.ndarray:
        """Unit beam directions [64 * A, 3] in the ego frame (rows: elevations low to high,
        columns: azimuths from -π in steps of :data:`LIDAR_AZIMUTH_STEP_DEG`)."""
        el = np.deg2rad(LIDAR_ELEVATIONS_DEG)
        n_az = int(round(360.0 / LIDAR_AZIMUTH_STEP_DEG))
        az = -np.pi + np.arange(n_az) * np.deg2rad(LIDAR_AZIMUTH_STEP_DEG)
        e, a = np.meshgrid(el, az, indexing="ij")
        return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1).reshape(
            -1, 3
        )

    def lidar(self, T_world_ego, t) -> np.ndarray:
        """A 64-beam spinning LiDAR sweep at time t (s) from ego pose T_world_ego [4, 4]:
        float32 [N, 3] points in the ego frame, one per beam that hits a surface within
        :data:`LIDAR_MAX_RANGE` m (no motion distortion, no noise)."""
        T = np.asarray(T_world_ego, dtype=np.float64)
        scene = self._scene(float(t))
        d_ego = self.lidar_directions()
        n_el = len(LIDAR_ELEVATIONS_DEG)
        n_az = len(d_ego) // n_el
        step = np.deg2rad(LIDAR_AZIMUTH_STEP_DEG)
        o = T[:3, :3] @ LIDAR_POSITION + T[:3, 3]
        D = d_ego @ T[:3, :3].T
        # azimuth culling of every primitive, in the sensor's axes
        corners = scene.corners()
        rel = (corners - o) @ T[:3, :3]
        rects: list = []
        for k in range(len(rel)):
            p = rel[k]
            lo, hi = p[:, :2].min(0), p[:, :2].max(0)
            dmin = np.linalg.norm(np.maximum(np.maximum(lo, -hi), 0.0))
            if dmin > LIDAR_MAX_RANGE:
                rects.append(np.empty(0, dtype=np.int64))
                continue
            if lo[0] <= 0.0 <= hi[0] and lo[1] <= 0.0 <= hi[1]:
                rects.append(None)
                continue
            az = np.arctan2(p[:, 1], p[:, 0])
            ac = np.arctan2(p[:, 1].mean(), p[:, 0].mean())
            rel_az = np.mod(az - ac + np.pi, 2 * np.pi) - np.pi
            a0 = ac + rel_az.min()
            a1 = ac + rel_az.max()
            c0 = int(np.floor((a0 + np.pi) / step)) - 1
            c1 = int(np.ceil((a1 + np.pi) / step)) + 2
            cols = np.mod(np.arange(c0, c1), n_az)
            rects.append((np.arange(n_el)[:, None] * n_az + cols[None, :]).ravel())
        t_hit, prim, _ = self._trace(scene, o, D, lambda k: rects[k])
        keep = (prim >= 0) & (t_hit <= LIDAR_MAX_RANGE)
        pts = LIDAR_POSITION + t_hit[keep, None] * d_ego[keep]
        return pts.astype(np.float32)


def vehicle_corners(state: VehicleState) -> np.ndarray:
    """The 8 world corners [8, 3] of a vehicle state's box."""
    T = state.T_world_box
    return box_corners(T[:3, 3], state.size, float(np.arctan2(T[1, 0], T[0, 0])))
