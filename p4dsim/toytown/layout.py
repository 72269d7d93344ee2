"""Toytown's static layout: the road, lanes, kerbs and sidewalks, building rows, poles, and
the vehicles placed on it (world frame: x forward along the road, y left, z up, metres)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p4dsim.geometry import R_FLU_FROM_RDF, make_pose
from p4dsim.toytown.motion import PlanarMotion

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


@dataclass(frozen=True)
class _Vehicle:
    track_id: str
    kind: str
    size: np.ndarray
    color: np.ndarray
    motion: PlanarMotion


class Layout:
    """The seeded static world and the vehicle roster (mixed into
    :class:`~p4dsim.toytown.world.ToytownWorld`)."""

    seed: int

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

    def ground_height(self, xy) -> np.ndarray:
        """World z [...] of the ground surface at points xy [..., 2]: 0 on the road, the kerb
        height on sidewalks and beyond."""
        y = np.asarray(xy, dtype=np.float64)[..., 1]
        return np.where((y >= ROAD_RIGHT) & (y <= ROAD_LEFT), 0.0, KERB_HEIGHT)
