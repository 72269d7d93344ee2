"""Command-line lists for evaluation: horizons, resolutions, perturbations. Frame selections
use the parser of every command, :func:`p4dsim.selection.parse_selection`."""

from __future__ import annotations

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.scenario.model import LateralOffset, SpeedScale


def _int(text: str, what: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{where}: {what} '{text}' is not an integer") from None


def parse_horizons(text: str, where: str = "--horizons") -> list[int]:
    """Positive frame offsets, e.g. ``1,5,10`` -> [1, 5, 10] (sorted, unique)."""
    vals = [_int(p.strip(), "horizon", where) for p in text.split(",") if p.strip()]
    if not vals:
        raise ConfigError(f"{where}: no horizon given; write e.g. 1,5,10")
    bad = [v for v in vals if v <= 0]
    if bad:
        raise ConfigError(f"{where}: horizons must be positive frame offsets, got {bad[0]}")
    return sorted(set(vals))


def parse_resolution(text: str, where: str = "--resolution") -> tuple[int, int]:
    """``WxH`` -> (width, height)."""
    w, sep, h = text.lower().partition("x")
    if not sep:
        raise ConfigError(f"{where}: '{text}' is not WIDTHxHEIGHT (e.g. 621x188)")
    width, height = _int(w, "width", where), _int(h, "height", where)
    if width < 16 or height < 16:
        raise ConfigError(f"{where}: {width}x{height} is too small (at least 16x16)")
    return width, height


def parse_perturbation(text: str, where: str = "--perturb") -> LateralOffset | SpeedScale:
    """``lateral_offset=METRES`` or ``speed_scale=FACTOR``, applied as a step from the source
    frame on (every horizon sees the full perturbation)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(
            f"{where}: '{text}' is not NAME=VALUE (lateral_offset=1.0, speed_scale=0.5)"
        )
    try:
        x = float(value)
    except ValueError:
        raise ConfigError(f"{where}: value of '{text}' is not a number") from None
    if key == "lateral_offset":
        return LateralOffset(type="lateral_offset", offset_m=x, ramp_s=0.0)
    if key == "speed_scale":
        if x <= 0:
            raise ConfigError(f"{where}: speed_scale must be positive, got {x}")
        return SpeedScale(type="speed_scale", scale=x, ramp_s=0.0)
    raise ConfigError(f"{where}: unknown perturbation '{key}' (use lateral_offset or speed_scale)")


def parse_jumps(text: str, where: str = "--jumps") -> list[float]:
    """Lateral camera jumps in metres, e.g. ``1,2,3,-1`` (order kept, duplicates dropped);
    zero is allowed (the source view itself)."""
    vals: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            x = float(part)
        except ValueError:
            raise ConfigError(f"{where}: '{part}' is not a number of metres") from None
        if not np.isfinite(x) or abs(x) > 50:
            raise ConfigError(f"{where}: jump {part} m is out of range (at most 50 m either way)")
        if x not in vals:
            vals.append(x)
    if not vals:
        raise ConfigError(f"{where}: no jump given; write e.g. 1,2,3")
    return vals
