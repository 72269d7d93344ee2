"""Adapter and exporter plugins, found through entry points.

A dataset plugin registers classes under the entry-point groups ``p4dsim.adapters`` (readers,
subclasses of :class:`Adapter`) and ``p4dsim.exporters`` (writers of other dataset layouts,
subclasses of :class:`Exporter`); installing the plugin's distribution is all it takes.
Each loaded object is checked against its base class before use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from p4dsim.errors import AdapterNotFoundError, ConfigError
from p4dsim.types import Log

ADAPTER_GROUP = "p4dsim.adapters"
EXPORTER_GROUP = "p4dsim.exporters"


class NoOptions(BaseModel):
    """An adapter without options."""

    model_config = ConfigDict(extra="forbid")


class Adapter(ABC):
    """Opens logs of one dataset layout.

    Subclasses set ``name`` (what users write in a source), ``description`` (one line for
    ``p4dsim adapters``), ``options_model`` (a pydantic model with ``extra="forbid"`` whose
    fields are the source's ``key=value`` options) and implement :meth:`open`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options_model: ClassVar[type[BaseModel]] = NoOptions
    #: whether the adapter needs a path (``ADAPTER:PATH``)
    needs_path: ClassVar[bool] = True
    #: whether the adapter renders its images at any size asked for (options ``width`` and
    #: ``height``), so a command that needs another resolution opens it at that size rather
    #: than resampling (see :meth:`p4dsim.source.SourceSpec.at_resolution`)
    native_resolution: ClassVar[bool] = False

    @abstractmethod
    def open(self, path: Path | None, options: BaseModel) -> Log:
        """Open the log at ``path`` with validated ``options``; raise
        :class:`~p4dsim.errors.SourceError` naming the missing or bad file."""


@dataclass
class ExportSummary:
    """What an exporter wrote: output folder, number of frames and of label rows."""

    out_dir: Path
    frames: int
    objects: int


class Exporter(ABC):
    """Writes a native p4dsim dataset in another layout (KITTI, Waymo v2, ...)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def export(self, dataset_dir: Path, out_dir: Path) -> ExportSummary:
        """Convert the dataset at ``dataset_dir`` into ``out_dir`` (created; atomic per file)."""


@cache
def _load_group(group: str, base: type) -> tuple[dict[str, type], dict[str, str]]:
    """(loaded plugins by name, broken plugins by name -> why they could not be loaded)."""
    found: dict[str, type] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
        except Exception as exc:  # a plugin's import error must not take p4dsim down
            broken[ep.name] = f"{ep.value} failed to import: {type(exc).__name__}: {exc}"
            continue
        if not (isinstance(obj, type) and issubclass(obj, base)):
            broken[ep.name] = f"{ep.value} is not a subclass of p4dsim.plugins.{base.__name__}"
            continue
        found[ep.name] = obj
    return found, broken


def adapters() -> dict[str, type[Adapter]]:
    """Installed adapters by name."""
    return dict(sorted(_load_group(ADAPTER_GROUP, Adapter)[0].items()))


def exporters() -> dict[str, type[Exporter]]:
    """Installed exporters by name."""
    return dict(sorted(_load_group(EXPORTER_GROUP, Exporter)[0].items()))


def broken_plugins() -> dict[str, str]:
    """Installed plugins that could not be loaded, ``group:name`` -> reason."""
    out = {}
    for group, base in ((ADAPTER_GROUP, Adapter), (EXPORTER_GROUP, Exporter)):
        for name, why in _load_group(group, base)[1].items():
            out[f"{group}:{name}"] = why
    return out


def _broken_hint(group: str, base: type, name: str) -> str:
    why = _load_group(group, base)[1].get(name)
    return f"; the installed plugin '{name}' is broken: {why}" if why else ""


def get_adapter(name: str) -> Adapter:
    found = adapters()
    if name not in found:
        raise AdapterNotFoundError(
            f"unknown adapter '{name}'; installed adapters: {', '.join(found) or 'none'} "
            "(a dataset plugin registers adapters by being installed, e.g. pip install -e adapters/kitti)"
            + _broken_hint(ADAPTER_GROUP, Adapter, name)
        )
    return found[name]()


def get_exporter(name: str) -> Exporter:
    found = exporters()
    if name not in found:
        raise AdapterNotFoundError(
            f"unknown export format '{name}'; installed exporters: {', '.join(found) or 'none'}"
            + _broken_hint(EXPORTER_GROUP, Exporter, name)
        )
    return found[name]()


def validate_options(adapter: Adapter, options: dict[str, Any], where: str) -> BaseModel:
    """Validate ``options`` against the adapter's options model; errors name ``where`` and the key."""
    try:
        return adapter.options_model.model_validate(options)
    except ValidationError as exc:
        allowed = ", ".join(adapter.options_model.model_fields) or "none"
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(options)"
            lines.append(f"{where}: option '{key}': {err['msg']}")
        raise ConfigError(
            "\n".join(lines) + f"\n(adapter '{adapter.name}' accepts options: {allowed})"
        ) from None
