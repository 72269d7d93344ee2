"""Scenario files: pydantic models of the YAML a user writes.

Every model forbids unknown keys and NaN/inf; validation errors name the file and the field
(see :func:`p4dsim.scenario.load.load_scenario`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class SpeedScale(_Ramped):
    """Time-warp the base path: the ego moves along it ``scale`` times as fast."""

    type: Literal["speed_scale"]
    scale: float = Field(gt=0)


Perturbation = Annotated[LateralOffset | SpeedScale, Field(discriminator="type")]


class EgoModel(Strict):
    base: Literal["log", "constant_velocity"] = "log"
    """Base trajectory: the logged ego poses, or the source frame's ego velocity held constant."""
    perturbations: list[Perturbation] = []
    """Perturbations applied in order on top of the base."""


class ActorSelect(Strict):
    """Which actors a rule applies to; all given criteria must hold."""

    track_id: str | None = None
    track_ids: list[str] | None = None
    label: str | None = None
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


Behaviour = Annotated[LogBehaviour | ConstantVelocityBehaviour, Field(discriminator="type")]


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


class RenderModel(Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Rendering backend: cuda (gsplat) when available under auto."""


class DepthModel(Strict):
    source: Literal["auto", "lidar", "prior", "mono"] = "auto"
    """Depth of the source frame: LiDAR (auto when present), the geometric prior, or mono."""
    model: str | None = None
    """Local folder of a transformers depth-estimation model (for source: mono)."""


class SceneModel(Strict):
    stride: int = Field(1, ge=1, le=8)
    """One Gaussian per stride×stride pixels."""
    depth: DepthModel = DepthModel()
    """How the source frame's depth is obtained."""


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

    def times(self) -> list[float]:
        """Render times (s, relative to the source frame): 0, 1/fps, ... up to duration."""
        n = int(self.duration_s * self.fps + 1e-9) + 1
        return [k / self.fps for k in range(n)]
