"""Options of the ``nuscenes`` adapter (``extra="forbid"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal[
    "CAM_FRONT",
    "CAM_FRONT_LEFT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
]


class NuScenesOptions(BaseModel):
    """``version`` (folder of the tables, e.g. ``v1.0-mini``), ``scene`` (scene name, e.g.
    ``scene-0916``; optional when the release holds one scene), ``camera`` (the frame's camera
    channel), ``lidar_sweeps`` (LIDAR_TOP sweeps merged into a frame's point cloud, the
    keyframe's included; sweeps whose files are absent are skipped with a note), ``width``
    (resample images to this width on ingest, intrinsics scaled: scenes of a 1600×900 frame
    build and render faster at a few hundred pixels)."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(default="v1.0-mini", description="release folder under ROOT")
    scene: str | None = Field(default=None, description="scene name, e.g. scene-0916")
    camera: Channel = Field(default="CAM_FRONT", description="camera channel of the frames")
    width: int | None = Field(
        default=None,
        ge=16,
        le=1600,
        description="resample the image to this width on ingest (height keeps the aspect)",
    )
    lidar_sweeps: int = Field(
        default=1, ge=1, le=20, description="LIDAR_TOP sweeps per frame (1 = keyframe only)"
    )
