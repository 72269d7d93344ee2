"""Every check a run can make before it builds or renders anything, in one place.

``p4dsim validate`` and ``p4dsim replay`` both call :func:`preflight`, so a scenario that
validates is one that replay accepts up to rendering: the variants expand, the timing of
every perturbation and behaviour falls inside the run, no offset leaves the scene, the
exporters exist, the source opens (adapter, path, options), the source frame exists, named
track ids exist, the output folder can be written, and the run fits the pixel budget.

The budget bounds what a run renders, in pixels: frames × width × height over all variants
(``P4DSIM_MAX_PIXELS``, default 2·10¹¹, about 430,000 KITTI-sized frames) and width × height
of one frame (``P4DSIM_MAX_FRAME_PIXELS``, default 6.4·10⁷: 8K × 8K). Raise them in the
environment for larger runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p4dsim.errors import ConfigError

DEFAULT_MAX_PIXELS = 2e11
DEFAULT_MAX_FRAME_PIXELS = 64e6
#: output formats that name the native dataset itself (always written)
NATIVE_FORMATS = frozenset({"parquet", "native", "p4dsim"})
#: perturbation / behaviour fields that move the camera or an actor sideways, up or along
_DISTANCE_FIELDS = ("offset_m", "amplitude_m", "width_m", "distance_m")


@dataclass
class PreflightResult:
    variants: list[Any]
    spec: Any
    log: Any
    frame_index: int
    width: int
    height: int
    frames: int
    #: the source frame, when a check needed it (read once; replay reuses it)
    frame: Any = None

    @property
    def pixels(self) -> int:
        return self.frames * self.width * self.height


def _budget(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        v = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}='{raw}' is not a number") from None
    if not v > 0:
        raise ConfigError(f"environment variable {name}={raw} must be positive")
    return v


def exporter_formats(formats: list[str]) -> list[str]:
    """The exporters of ``output.formats`` (the native dataset's own names dropped)."""
    return [f for f in formats if f.lower() not in NATIVE_FORMATS]


def check_timing(scenario: Any, where: str) -> None:
    """Perturbations and behaviours must start inside the run; nothing may move the camera
    or an actor further than the scene reaches."""
    from p4dsim.scene.builder import BuildConfig

    reach = BuildConfig().max_depth
    dur = scenario.duration_s
    items = [(f"ego.perturbations[{i}]", p) for i, p in enumerate(scenario.ego.perturbations)]
    items += [
        (f"actors.rules[{i}].behaviour", r.behaviour) for i, r in enumerate(scenario.actors.rules)
    ]
    for loc, item in items:
        start = getattr(item, "start_s", None)
        if start is not None and start >= dur:
            raise ConfigError(
                f"{where}: field '{loc}.start_s': starts at {start:g} s but the run ends at "
                f"duration_s = {dur:g} s, so it would never happen; start it earlier or "
                "lengthen duration_s"
            )
        for name in _DISTANCE_FIELDS:
            v = getattr(item, name, None)
            if isinstance(v, int | float) and abs(v) > reach:
                raise ConfigError(
                    f"{where}: field '{loc}.{name}': {v:g} m leaves the scene, which holds what "
                    f"the source camera saw up to {reach:g} m away; use at most ±{reach:g} m"
                )


def render_size(scenario: Any, log: Any, index: int) -> tuple[int, int]:
    """(width, height) the run renders at: the scenario's camera or the source camera's."""
    from p4dsim.resample import requested_size

    w, h = scenario.camera.width, scenario.camera.height
    if w is not None and h is not None:
        return int(w), int(h)
    cam = log.frame(index).camera
    return requested_size(scenario.camera, cam.width, cam.height)


def check_budget(frames: int, width: int, height: int, where: str) -> None:
    per_frame = _budget("P4DSIM_MAX_FRAME_PIXELS", DEFAULT_MAX_FRAME_PIXELS)
    total = _budget("P4DSIM_MAX_PIXELS", DEFAULT_MAX_PIXELS)
    if width * height > per_frame:
        raise ConfigError(
            f"{where}: field 'camera': {width}×{height} = {width * height:,} pixels a frame is "
            f"over the limit of {per_frame:,.0f} (P4DSIM_MAX_FRAME_PIXELS); lower camera.width "
            "and camera.height"
        )
    if frames * width * height > total:
        raise ConfigError(
            f"{where}: {frames:,} frames × {width}×{height} pixels = "
            f"{frames * width * height:,} pixels is over the budget of {total:,.0f} "
            "(P4DSIM_MAX_PIXELS); shorten duration_s, lower fps or the camera size, or raise "
            "the budget"
        )


def preflight(
    scenario: Any,
    scenario_path: Path | None = None,
    out_dir: Path | None = None,
    out_from_file: bool = False,
) -> PreflightResult:
    """Run every check that needs no rendering; raise the first failure as a
    :class:`~p4dsim.errors.P4DSimError` naming the file and field. ``out_from_file``: the
    output folder is the scenario's ``output.dir`` (named so in errors), not ``--out``."""
    from p4dsim.io.outdir import check_out_path
    from p4dsim.plugins import get_exporter
    from p4dsim.scenario.actors import check_track_ids
    from p4dsim.scenario.drivable import require_drivable, variant_runs
    from p4dsim.scenario.variants import expand_variants
    from p4dsim.source import SourceSpec

    where = str(scenario_path) if scenario_path else "scenario"
    what = f"{where}: field 'output.dir'" if out_from_file else "--out"
    base_dir = Path(scenario_path).parent if scenario_path else None
    variants = expand_variants(scenario, where)
    for v in variants:
        check_timing(v.scenario, where)
    for i, fmt in enumerate(scenario.output.formats):
        if fmt.lower() in NATIVE_FORMATS:
            continue
        try:
            get_exporter(fmt)
        except ConfigError as exc:
            raise ConfigError(f"{where}: field 'output.formats[{i}]': {exc}") from None
    from p4dsim.errors import AdapterNotFoundError

    try:
        spec = SourceSpec.from_mapping(scenario.source.model_dump(exclude_none=True))
        log = spec.open(base_dir, where=f"{where}: field 'source'")
    except AdapterNotFoundError as exc:
        raise AdapterNotFoundError(f"{where}: field 'source.adapter': {exc}") from None
    try:
        index = log.check_index(spec.frame)
    except ConfigError as exc:
        raise ConfigError(f"{where}: field 'source.frame': {exc}") from None
    width, height = render_size(scenario, log, index)
    frames = sum(len(v.scenario.times()) for v in variants)
    check_budget(frames, width, height, where)
    check_track_ids([v.scenario for v in variants], log, where)
    read: list[Any] = []

    def source() -> tuple[Any, Any]:
        if not read:
            read.append(log.frame(index))
        return log, read[0]

    require_drivable(variant_runs(variants, where), source)
    if out_dir is not None:
        check_out_path(out_dir, what)
    return PreflightResult(
        variants, spec, log, index, width, height, frames, read[0] if read else None
    )


MAX_STRIDE = 8  #: as the scenario's scene.stride


def check_stride(stride: int, width: int, height: int, what: str = "--stride") -> None:
    """One Gaussian per stride×stride pixels: 1..8, and small enough that the backing discs'
    2·stride blocks tile the image at least twice each way."""
    if not 1 <= stride <= MAX_STRIDE:
        raise ConfigError(f"{what} must be between 1 and {MAX_STRIDE}, got {stride}")
    if 4 * stride > min(width, height):
        raise ConfigError(
            f"{what} {stride} is too coarse for a {width}×{height} image (at most "
            f"{min(width, height) // 4}); use a smaller stride"
        )
