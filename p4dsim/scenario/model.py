"""Scenario files: pydantic models of the YAML a user writes.

Every model forbids unknown keys and NaN/inf; validation errors name the file and the field
(see :func:`p4dsim.scenario.load.load_scenario`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from p4dsim.types import DepthSource, Device, Label

Profile = Literal["linear", "smoothstep", "cosine"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SourceModel(BaseModel):
    """Which log and frame the scene is built from; other keys are the adapter's options."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    adapter: str
    """Adapter name, e.g. toytown, kitti-raw, waymo (see `p4dsim adapters`)."""
    path: str | None = None
    """Dataset path (relative paths resolve against the scenario file's folder)."""
    frame: int = Field(0, ge=0)
    """Index of the source frame within the log."""


class _Ramped(Strict):
    start_s: float = Field(0.0, ge=0)
    """When the perturbation starts ramping in (s, relative to the source frame)."""
    ramp_s: float = Field(1.0, ge=0)
    """How long the ramp from 0 to full strength takes (s); 0 = a step."""
    profile: Profile = "smoothstep"
    """Shape of the ramp: linear, smoothstep or cosine."""


class LateralOffset(_Ramped):
    """Shift the ego sideways along the path's normal (metres, positive = left)."""

    type: Literal["lateral_offset"]
    offset_m: float


class LongitudinalOffset(_Ramped):
    """Shift the ego along the path's direction of travel (metres, positive = ahead)."""

    type: Literal["longitudinal_offset"]
    offset_m: float


class YawOffset(_Ramped):
    """Turn the ego's heading away from its direction of travel (degrees, positive = left)."""

    type: Literal["yaw_offset"]
    offset_deg: float = Field(ge=-180, le=180)


class HeightOffset(_Ramped):
    """Raise the ego (and its camera) above its path (metres, positive = up)."""

    type: Literal["height_offset"]
    offset_m: float


class SpeedScale(_Ramped):
    """Time-warp the base path: the ego moves along it ``scale`` times as fast."""

    type: Literal["speed_scale"]
    scale: float = Field(gt=0)


class Swerve(_Ramped):
    """Sinusoidal lateral motion ``amplitude · ramp(t) · sin(2π (t - start) / period)`` along
    the path's normal (positive = left first); ``cycles`` periods long (None: until the end)."""

    type: Literal["swerve"]
    amplitude_m: float
    period_s: float = Field(gt=0)
    cycles: float | None = Field(None, gt=0)
    ramp_s: float = Field(0.0, ge=0)


class LaneChange(Strict):
    """Move ``width_m`` sideways (positive = left) over ``duration_s`` from ``start_s``."""

    type: Literal["lane_change"]
    width_m: float = 3.5
    start_s: float = Field(0.0, ge=0)
    duration_s: float = Field(3.0, gt=0)
    profile: Profile = "cosine"


Perturbation = Annotated[
    LateralOffset
    | LongitudinalOffset
    | YawOffset
    | HeightOffset
    | SpeedScale
    | Swerve
    | LaneChange,
    Field(discriminator="type"),
]

#: one waypoint: [t (s), x (m), y (m), yaw (degrees)] in the scene world frame
Waypoint = tuple[float, float, float, float]


def _check_waypoints(points: list[Waypoint] | None, field: str) -> None:
    if points is None:
        return
    if len(points) < 2:
        raise ValueError(f"{field} needs at least 2 points [t, x, y, yaw_deg]")
    ts = [p[0] for p in points]
    if any(b <= a for a, b in zip(ts, ts[1:], strict=False)):
        raise ValueError(f"{field}: times must increase strictly (got {ts})")


class EgoFootprint(Strict):
    """The ego's footprint rectangle for the safety metrics (metres, ego frame)."""

    length_m: float = Field(4.5, gt=0)
    width_m: float = Field(1.9, gt=0)
    center_x_m: float = 0.0
    """x of the footprint's centre in the ego frame (the ego origin is often the rear axle)."""


class KinematicLimits(Strict):
    """Limits of the ego motion at the speed actually driven (see
    :mod:`p4dsim.scenario.drivable`). With ``enforce`` (the default) a perturbation whose path
    would exceed one is refused before anything is built or rendered, naming the shortest
    ramp, duration or period that meets them; ``enforce: false`` keeps raw paths and only
    reports an exceeded limit per frame (``kinematic_warning``)."""

    lateral_accel_mps2: float = Field(4.0, gt=0)
    """Largest lateral (centripetal) acceleration of the ego's path (m/s²)."""
    yaw_rate_dps: float = Field(30.0, gt=0)
    """Largest yaw rate of the ego's heading (°/s)."""
    enforce: bool = True
    """Refuse perturbations that exceed the limits (false: render raw paths, report only)."""


class EgoModel(Strict):
    base: Literal["log", "constant_velocity", "stationary", "waypoints"] = "log"
    """Base trajectory: the logged ego poses, the source frame's ego velocity held constant,
    standing still at the source pose, or ``waypoints`` (smooth interpolation)."""
    waypoints: list[Waypoint] | None = None
    """[[t, x, y, yaw_deg], ...] in the scene world frame (base ``waypoints`` only)."""
    perturbations: list[Perturbation] = []
    """Perturbations applied in order on top of the base."""
    footprint: EgoFootprint = EgoFootprint()
    limits: KinematicLimits = KinematicLimits()

    @model_validator(mode="after")
    def _waypoints(self) -> EgoModel:
        if self.base == "waypoints" and self.waypoints is None:
            raise ValueError("base 'waypoints' needs a 'waypoints' list of [t, x, y, yaw_deg]")
        if self.base != "waypoints" and self.waypoints is not None:
            raise ValueError("'waypoints' is only used with base: waypoints")
        _check_waypoints(self.waypoints, "waypoints")
        return self


class ActorSelect(Strict):
    """Which actors a rule applies to; all given criteria must hold."""

    track_id: str | None = None
    track_ids: list[str] | None = None
    label: Label | None = None
    """vehicle, pedestrian, cyclist, sign or other."""
    distance_m: tuple[float, float] | None = None
    """[min, max] distance from the ego at the source frame (m)."""

    @model_validator(mode="after")
    def _range(self) -> ActorSelect:
        if self.distance_m is not None and self.distance_m[0] > self.distance_m[1]:
            raise ValueError("distance_m must be [min, max] with min <= max")
        return self


class LogBehaviour(Strict):
    """Follow the actor's logged track (falls back to its box velocity where the log has none)."""

    type: Literal["log"]


class ConstantVelocityBehaviour(Strict):
    """Keep the actor's velocity (from its box) constant from the source frame on."""

    type: Literal["constant_velocity"]


class ConstantAccelerationBehaviour(Strict):
    """Accelerate along the direction of travel from the source frame on (CTRA motion); a
    negative acceleration stops the actor, it does not reverse."""

    type: Literal["constant_acceleration"]
    acceleration_mps2: float
    yaw_rate_dps: float = 0.0


class BrakeBehaviour(Strict):
    """Constant velocity until ``start_s``, then brake at ``deceleration_mps2`` to a stop."""

    type: Literal["brake"]
    deceleration_mps2: float = Field(gt=0)
    start_s: float = Field(0.0, ge=0)


class StopBehaviour(Strict):
    """Constant velocity until ``start_s``, then stand still there (0: parked at its pose)."""

    type: Literal["stop"]
    start_s: float = Field(0.0, ge=0)


class CutInBehaviour(Strict):
    """Constant velocity along the actor's heading while it moves sideways (along its normal)
    into the lane ``lane_offset_m`` left of the ego's source position (0: the ego's lane);
    the move starts at ``start_s`` and takes ``duration_s``; heading follows the path."""

    type: Literal["cut_in"]
    lane_offset_m: float = 0.0
    start_s: float = Field(0.0, ge=0)
    duration_s: float = Field(2.0, gt=0)
    profile: Profile = "cosine"


class WaypointsBehaviour(Strict):
    """Follow [[t, x, y, yaw_deg], ...] in the scene world frame (smooth interpolation;
    constant velocity beyond the ends); the box keeps its height above the ground."""

    type: Literal["waypoints"]
    points: list[Waypoint]

    @model_validator(mode="after")
    def _pts(self) -> WaypointsBehaviour:
        _check_waypoints(self.points, "points")
        return self


class RemoveBehaviour(Strict):
    """The actor vanishes: it is not rendered, labelled or counted in the safety metrics."""

    type: Literal["remove"]


class ShiftBehaviour(Strict):
    """The ``base`` motion moved by a static offset [dx, dy, dz] (m, scene world frame)."""

    type: Literal["shift"]
    offset_m: tuple[float, float, float]
    base: Literal["log", "constant_velocity"] = "log"


Behaviour = Annotated[
    LogBehaviour
    | ConstantVelocityBehaviour
    | ConstantAccelerationBehaviour
    | BrakeBehaviour
    | StopBehaviour
    | CutInBehaviour
    | WaypointsBehaviour
    | RemoveBehaviour
    | ShiftBehaviour,
    Field(discriminator="type"),
]


def _behaviour_shorthand(v: Any) -> Any:
    return {"type": v} if isinstance(v, str) else v


class ActorRule(Strict):
    select: ActorSelect
    behaviour: Behaviour

    @field_validator("behaviour", mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return _behaviour_shorthand(v)


class ActorsModel(Strict):
    default: Behaviour = LogBehaviour(type="log")
    """Behaviour of every actor no rule selects (a name or a mapping with `type`)."""
    rules: list[ActorRule] = []
    """Rules applied in order; the last matching rule wins."""
    source: Literal["auto", "labels", "none"] | None = None
    """Where actors come from: the log's boxes (labels), vehicles found in the LiDAR (auto) or
    none; default: labels when the frame has boxes, auto when it has none but has LiDAR."""

    @field_validator("default", mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return _behaviour_shorthand(v)


class CameraModel(Strict):
    width: int | None = Field(None, gt=0)
    """Rendered width in pixels (default: the source camera's); intrinsics scale with it."""
    height: int | None = Field(None, gt=0)
    """Rendered height in pixels (default: the source camera's)."""


class OutputModel(Strict):
    dir: str | None = None
    """Dataset folder (relative to the current directory); default out/<scenario name>."""
    rgb: Literal["png", "jpeg"] = "png"
    depth: Literal["float16", "png16"] = "float16"
    jpeg_quality: int = Field(95, ge=1, le=100)
    rows_per_shard: int = Field(64, gt=0)
    formats: list[str] = []
    """Exporters run after the dataset is written, each into DATASET/exports/<format>
    (e.g. kitti, waymo-v2; see `p4dsim adapters`)."""


class RenderModel(Strict):
    device: Device = "auto"
    """Rendering backend: cuda (gsplat) when available under auto."""


class DepthModel(Strict):
    source: DepthSource = "auto"
    """Depth of the source frame: LiDAR (auto when present), the geometric prior, or mono."""
    model: str | None = None
    """Local folder of a transformers depth-estimation model (for source: mono)."""


class SceneModel(Strict):
    stride: int = Field(1, ge=1, le=8)
    """One Gaussian per stride×stride pixels."""
    depth: DepthModel = DepthModel()
    """How the source frame's depth is obtained."""


class RandomVariants(Strict):
    """``n`` runs with each field drawn uniformly from its [low, high] range."""

    n: int = Field(gt=0, le=100_000)
    seed: int = 0
    ranges: dict[str, tuple[float, float]]

    @field_validator("ranges")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for path, (lo, hi) in v.items():
            if lo > hi:
                raise ValueError(f"range of '{path}' must be [low, high] with low <= high")
        return v


class VariantsModel(Strict):
    """Runs one file expands to: the product of every ``grid`` value list, times ``random``
    draws. Keys are dotted field paths, e.g. ``ego.perturbations.0.offset_m``."""

    grid: dict[str, list[Any]] = {}
    random: RandomVariants | None = None

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in v.items():
            if not values:
                raise ValueError(f"grid '{path}' needs at least one value")
            for x in values:
                if isinstance(x, float) and not math.isfinite(x):
                    raise ValueError(f"grid '{path}' has a non-finite value {x!r}")
        return v


class Scenario(Strict):
    name: str | None = None
    """Run name (default: the file's stem)."""
    description: str = ""
    source: SourceModel
    duration_s: float = Field(gt=0, le=3600)
    fps: float = Field(10.0, gt=0, le=1000)
    seed: int = 0
    ego: EgoModel = EgoModel()
    actors: ActorsModel = ActorsModel()
    camera: CameraModel = CameraModel()
    scene: SceneModel = SceneModel()
    render: RenderModel = RenderModel()
    output: OutputModel = OutputModel()
    variants: VariantsModel | None = None
    """Sweeps expanding this file into several runs (see :mod:`p4dsim.scenario.variants`)."""

    def times(self) -> list[float]:
        """Render times (s, relative to the source frame): 0, 1/fps, ... up to duration."""
        n = int(self.duration_s * self.fps + 1e-9) + 1
        return [k / self.fps for k in range(n)]
