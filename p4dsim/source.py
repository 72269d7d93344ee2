"""Sources: which adapter, which path, which options, which frame.

On the command line a source is one string, ``ADAPTER[:PATH][?key=value&...]`` — e.g.
``toytown``, ``toytown:?seed=3``, ``kitti-raw:data/kitti_raw?date=2011_09_26&drive=0052`` —
equivalent to a scenario file's mapping
``source: {adapter: kitti-raw, path: data/kitti_raw, date: 2011_09_26, drive: "0052", frame: 5}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from p4dsim.errors import ConfigError
from p4dsim.plugins import get_adapter, validate_options
from p4dsim.types import Log


@dataclass(frozen=True)
class SourceSpec:
    """adapter name, optional path, adapter options and the source frame index."""

    adapter: str
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    frame: int = 0

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        """Parse ``ADAPTER[:PATH][?key=value&...]``; ``frame`` may be given as an option."""
        if not text or not text.strip():
            raise ConfigError("empty source string; expected ADAPTER[:PATH][?key=value&...]")
        head, _, query = text.partition("?")
        adapter, _, path = head.partition(":")
        if not adapter:
            raise ConfigError(f"source '{text}': missing adapter name before ':'")
        options: dict[str, Any] = {}
        for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
            if key in options:
                raise ConfigError(f"source '{text}': option '{key}' given twice")
            options[key] = value
        frame = 0
        if "frame" in options:
            raw = options.pop("frame")
            try:
                frame = int(raw)
            except ValueError:
                raise ConfigError(
                    f"source '{text}': frame must be an integer, got '{raw}'"
                ) from None
        return cls(adapter=adapter, path=path or None, options=options, frame=frame)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> SourceSpec:
        data = dict(data)
        adapter = data.pop("adapter", None)
        if not adapter:
            raise ConfigError("source: missing 'adapter'")
        path = data.pop("path", None)
        frame = data.pop("frame", 0)
        return cls(
            adapter=str(adapter),
            path=None if path is None else str(path),
            options=data,
            frame=int(frame),
        )

    def at_resolution(self, width: int, height: int) -> SourceSpec:
        """This source opened at ``width``×``height`` when its adapter renders at any size
        (:attr:`~p4dsim.plugins.Adapter.native_resolution`) and the source names no size, so
        logged frames and oracle views are sampled alike; otherwise unchanged (the frames are
        resampled by the caller)."""
        if not get_adapter(self.adapter).native_resolution or {"width", "height"} & set(
            self.options
        ):
            return self
        opts = {**self.options, "width": int(width), "height": int(height)}
        return SourceSpec(self.adapter, self.path, opts, self.frame)

    def with_frame(self, frame: int) -> SourceSpec:
        return SourceSpec(self.adapter, self.path, dict(self.options), int(frame))

    def to_string(self) -> str:
        q = "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        s = self.adapter + (f":{self.path}" if self.path else "")
        return s + (f"?{q}" if q else "")

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {"adapter": self.adapter}
        if self.path is not None:
            out["path"] = self.path
        out.update(self.options)
        out["frame"] = self.frame
        return out

    def open(self, base_dir: Path | None = None, where: str = "source") -> Log:
        """Open the log through its adapter. Relative paths resolve against ``base_dir``."""
        adapter = get_adapter(self.adapter)
        options = validate_options(adapter, self.options, where)
        path = None
        if self.path is not None:
            path = Path(self.path).expanduser()
            if not path.is_absolute() and base_dir is not None and not path.exists():
                alt = base_dir / path
                if alt.exists():
                    path = alt
        elif adapter.needs_path:
            raise ConfigError(f"{where}: adapter '{self.adapter}' needs a path (ADAPTER:PATH)")
        return adapter.open(path, options)
