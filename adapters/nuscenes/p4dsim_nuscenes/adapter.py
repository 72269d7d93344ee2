"""The ``nuscenes`` adapter: ``nuscenes:ROOT?version=v1.0-mini&scene=scene-0916``.

In a scenario file: ``source: {adapter: nuscenes, path: ROOT, version: v1.0-mini,
scene: scene-0916, frame: 10}``; ``frame`` is the keyframe index within the scene.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from p4dsim.errors import SourceError
from p4dsim.plugins import Adapter
from p4dsim.types import Log
from p4dsim_nuscenes.options import NuScenesOptions
from p4dsim_nuscenes.tables import LAYOUT


class NuScenesAdapter(Adapter):
    """nuScenes: one scene's keyframes, one camera + LIDAR_TOP, through the devkit."""

    name: ClassVar[str] = "nuscenes"
    description: ClassVar[str] = (
        "nuScenes scene keyframes (ROOT?version=v1.0-mini&scene=scene-0916&camera=CAM_FRONT)"
    )
    options_model: ClassVar[type[BaseModel]] = NuScenesOptions

    def open(self, path: Path | None, options: BaseModel) -> Log:
        if not isinstance(options, NuScenesOptions):
            options = NuScenesOptions.model_validate(options.model_dump())
        if path is None:
            raise SourceError(f"the nuscenes adapter needs a path to {LAYOUT}")
        path = Path(path)
        if not path.is_dir():
            raise SourceError(f"nuScenes root {path} does not exist (expected {LAYOUT})")
        from p4dsim_nuscenes.log import NuScenesLog

        return NuScenesLog(
            path,
            version=options.version,
            scene=options.scene,
            camera=options.camera,
            lidar_sweeps=options.lidar_sweeps,
            width=options.width,
        )
