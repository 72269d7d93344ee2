"""Which boxes a scene is built with: the log's labels, boxes found in its LiDAR, or none."""

from __future__ import annotations

import dataclasses
from typing import Literal

from p4dsim.errors import ConfigError
from p4dsim.types import Frame, Log

ActorSource = Literal["auto", "labels", "none"]


def parse_actor_sources(text: str, where: str = "--actors") -> list[ActorSource | None]:
    """A comma-separated list of actor sources: ``default`` (None: see
    :func:`resolve_source`), ``auto``, ``labels`` or ``none``."""
    out: list[ActorSource | None] = []
    for a in (x.strip() for x in text.split(",")):
        if a not in ("default", "auto", "labels", "none"):
            raise ConfigError(
                f"{where}: unknown actor source '{a}' (use default, auto, labels or none)"
            )
        out.append(None if a == "default" else a)  # type: ignore[arg-type]
    return out


def resolve_source(frame: Frame, source: ActorSource | None) -> ActorSource:
    """The effective actor source of a frame: ``source`` when given; otherwise ``labels`` when
    the frame has boxes, ``auto`` when it has none but has LiDAR, else ``labels`` (no actors)."""
    if source is not None:
        return source
    if frame.boxes:
        return "labels"
    if frame.lidar is not None and len(frame.lidar):
        return "auto"
    return "labels"


def frame_with_actors(
    frame: Frame,
    log: Log,
    index: int,
    source: ActorSource | None = None,
    where: str = "scenario",
) -> Frame:
    """``frame`` with its boxes chosen by ``source`` (see :func:`resolve_source`): ``labels``
    keeps the log's boxes, ``none`` drops them, ``auto`` replaces them with the vehicles found
    in the LiDAR sweeps up to frame ``index`` of ``log`` (:func:`~p4dsim.perception.track.
    detect_actors`). The frame is not modified; a copy is returned."""
    eff = resolve_source(frame, source)
    if eff == "labels":
        return frame
    if eff == "none":
        return dataclasses.replace(frame, boxes=[])
    if frame.lidar is None or len(frame.lidar) == 0:
        raise ConfigError(
            f"{where}: field 'actors.source': 'auto' finds actors in the LiDAR, but frame "
            f"{index} of {log.dataset} log '{log.log_id}' has no LiDAR points; use "
            "source: labels or source: none"
        )
    from p4dsim.perception.track import detect_actors

    return dataclasses.replace(frame, boxes=detect_actors(log, index))
