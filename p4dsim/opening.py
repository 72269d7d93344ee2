"""One way to open a scene, for every command: a source -> its log, the source frame with
its actors chosen, and the scene built from it.

``replay``, ``augment``, ``eval`` and ``bench`` all call :func:`open_scene`; what differs
between them is only what they already hold (an open log a worker keeps between shards, a
frame resized for evaluation), passed in so nothing is opened or read twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p4dsim.perception.select import ActorSource, frame_with_actors
from p4dsim.scenario.model import Scenario
from p4dsim.scene.builder import BuildConfig, build_scene
from p4dsim.scene.scene4d import Scene4D
from p4dsim.source import SourceSpec
from p4dsim.types import Frame, Log


@dataclass
class OpenedScene:
    """A built scene and where it came from: the source (None when the caller passed an open
    log), the log, the source frame's index and the frame with the actors the scene holds."""

    spec: SourceSpec | None
    log: Log
    index: int
    frame: Frame
    scene: Scene4D


def build_config(scenario: Scenario) -> BuildConfig:
    """The scene builder settings a scenario's ``scene`` section asks for."""
    return BuildConfig(
        stride=scenario.scene.stride,
        depth_source=scenario.scene.depth.source,
        mono_model=scenario.scene.depth.model,
    )


def open_log(
    source: SourceSpec | str | Mapping[str, Any], base_dir: Path | None = None, where: str = ""
) -> tuple[SourceSpec, Log]:
    """The source spec and its open log. ``source``: a spec, its string
    (``ADAPTER[:PATH][?key=value&...]``) or a scenario's ``source`` mapping; relative paths
    resolve against ``base_dir``; ``where`` names the source in error messages."""
    if isinstance(source, str):
        spec = SourceSpec.parse(source)
    elif isinstance(source, Mapping):
        spec = SourceSpec.from_mapping(dict(source))
    else:
        spec = source
    return spec, spec.open(base_dir, where=where or f"source '{spec.to_string()}'")


def open_scene(
    source: SourceSpec | str | Mapping[str, Any] | Log,
    index: int | None = None,
    *,
    actors: ActorSource | None = None,
    config: BuildConfig | None = None,
    base_dir: Path | None = None,
    where: str = "source",
    source_where: str = "",
    frame: Frame | None = None,
) -> OpenedScene:
    """Open ``source`` (a spec as :func:`open_log` takes, or a log already open), read frame
    ``index`` (default: the spec's frame), choose its actors (``actors``, see
    :func:`~p4dsim.perception.select.frame_with_actors`) and build its scene with ``config``.

    frame: the source frame already read (e.g. resized for evaluation), used instead of
    reading it again. where: names the caller's settings in errors (e.g. a scenario file);
    source_where: names the source when it is opened (default ``where: field 'source'``).
    """
    spec: SourceSpec | None = None
    if isinstance(source, Log):
        log = source
    else:
        spec, log = open_log(source, base_dir, source_where or f"{where}: field 'source'")
    if index is None:
        index = spec.frame if spec is not None else 0
    index = log.check_index(index)
    if frame is None:
        frame = log.frame(index)
    frame = frame_with_actors(frame, log, index, actors, where)
    return OpenedScene(spec, log, index, frame, build_scene(frame, config or BuildConfig()))
