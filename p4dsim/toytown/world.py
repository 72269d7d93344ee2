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

import numpy as np

from p4dsim.toytown.agents import Agents, VehicleState, vehicle_corners
from p4dsim.toytown.camera import Camera, GroundTruth
from p4dsim.toytown.layout import Layout
from p4dsim.toytown.lidar import Lidar
from p4dsim.toytown.shading import Shading
from p4dsim.toytown.tracing import Tracing

__all__ = ["GroundTruth", "ToytownWorld", "VehicleState", "vehicle_corners"]


class ToytownWorld(Layout, Agents, Tracing, Shading, Camera, Lidar):
    """The seeded toytown world, one concept per module: static layout
    (:mod:`~p4dsim.toytown.layout`), agents' closed-form motion (:mod:`~p4dsim.toytown.agents`),
    ray casting (:mod:`~p4dsim.toytown.tracing`), shading (:mod:`~p4dsim.toytown.shading`),
    the camera (:mod:`~p4dsim.toytown.camera`) and the LiDAR (:mod:`~p4dsim.toytown.lidar`).

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
