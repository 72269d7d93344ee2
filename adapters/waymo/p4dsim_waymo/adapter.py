"""The ``waymo`` adapter: a v1 ``*.tfrecord`` file or a v2 Parquet root folder.

``source: {adapter: waymo, path: segment.tfrecord, frame: 0}`` or
``source: {adapter: waymo, path: waymo_v2/, segment: <name>, frame: 0}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from p4dsim.errors import SourceError
from p4dsim.plugins import Adapter
from p4dsim.types import Log


class WaymoOptions(BaseModel):
    """Options of the ``waymo`` adapter."""

    model_config = ConfigDict(extra="forbid")

    segment: str | None = Field(
        default=None,
        description="v2 only: the segment (file stem under camera_image/) if the root has several",
    )
    camera: Literal["FRONT", "FRONT_LEFT", "FRONT_RIGHT", "SIDE_LEFT", "SIDE_RIGHT"] = Field(
        default="FRONT", description="which camera is the frame's camera"
    )


class WaymoAdapter(Adapter):
    """Waymo Open Dataset: v1 Frame TFRecords and v2 Parquet components."""

    name: ClassVar[str] = "waymo"
    description: ClassVar[str] = (
        "Waymo Open Dataset: a v1 *.tfrecord file or a v2 Parquet root (option segment=...)"
    )
    options_model: ClassVar[type[BaseModel]] = WaymoOptions

    def open(self, path: Path | None, options: BaseModel) -> Log:
        if not isinstance(options, WaymoOptions):
            options = WaymoOptions.model_validate(options.model_dump())
        if path is None:
            raise SourceError("the waymo adapter needs a path: a v1 *.tfrecord file or a v2 root")
        path = Path(path)
        if path.is_file():
            if options.segment is not None:
                raise SourceError(
                    f"{path}: option segment= applies to v2 Parquet roots only; a v1 TFRecord "
                    "file is one segment"
                )
            from p4dsim_waymo.v1 import WaymoV1Log

            return WaymoV1Log(path, camera=options.camera)
        if path.is_dir():
            from p4dsim_waymo.v2 import WaymoV2Log

            if not (path / "camera_image").is_dir() and any(path.glob("*.tfrecord")):
                names = ", ".join(sorted(p.name for p in path.glob("*.tfrecord"))[:3])
                raise SourceError(
                    f"{path} holds v1 TFRecord files ({names}); give one file as the path"
                )
            return WaymoV2Log(path, segment=options.segment, camera=options.camera)
        raise SourceError(
            f"Waymo source {path} does not exist; give a v1 *.tfrecord file or a v2 root folder "
            "(with camera_image/, camera_calibration/, ...)"
        )
