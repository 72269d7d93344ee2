"""Toytown: p4dsim's synthetic, analytically ray-cast driving world and its adapter.

:class:`ToytownWorld` is the ground-truth oracle (exact RGB, depth, actor ids and LiDAR at any
pose and time); :class:`ToytownLog` wraps it as a :class:`~p4dsim.types.Log`.
"""

from p4dsim.toytown.adapter import ToytownAdapter, ToytownLog, ToytownOptions, toytown_camera
from p4dsim.toytown.world import GroundTruth, ToytownWorld, VehicleState

__all__ = [
    "GroundTruth",
    "ToytownAdapter",
    "ToytownLog",
    "ToytownOptions",
    "ToytownWorld",
    "VehicleState",
    "toytown_camera",
]
