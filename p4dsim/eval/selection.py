"""Command-line lists for evaluation: frame selections, horizons, resolutions, perturbations.

Frame selections: ``0:10`` (frames 0..9, a Python slice), ``0:200:5`` (every fifth), ``1,3,7``
(a list), or several of these joined by commas (``0:5,9``).
"""

from __future__ import annotations

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.scenario.model import LateralOffset, SpeedScale


def _int(text: str, what: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{where}: {what} '{text}' is not an integer") from None


def parse_eval_frames(text: str, n_frames: int, where: str = "--frames") -> list[int]:
    """Frame indices (sorted, unique) of a selection in a log of ``n_frames`` frames.

    Ranges are clipped to the log like Python slices; a single index outside the log is an
    error. Raises :class:`ConfigError` naming the bad part.
    """
    if not text or not text.strip():
        raise ConfigError(f"{where}: empty frame selection; write e.g. 0:10, 0:200:5 or 1,3,7")
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ConfigError(f"{where}: empty item in '{text}'")
        if ":" in part:
            bits = part.split(":")
            if len(bits) > 3:
                raise ConfigError(f"{where}: '{part}' has more than two ':' (use START:STOP:STEP)")
            start = _int(bits[0], "start", where) if bits[0] else 0
            stop = _int(bits[1], "stop", where) if bits[1] else n_frames
            step = _int(bits[2], "step", where) if len(bits) == 3 and bits[2] else 1
            if step <= 0:
                raise ConfigError(f"{where}: step of '{part}' must be positive")
            if start < 0 or stop < 0:
                raise ConfigError(f"{where}: negative index in '{part}'")
            out.update(range(start, min(stop, n_frames), step))
        else:
            i = _int(part, "frame", where)
            if not 0 <= i < n_frames:
                raise ConfigError(
                    f"{where}: frame {i} is outside the log, which has {n_frames} frames "
                    f"(valid: 0..{n_frames - 1})"
                )
            out.add(i)
    if not out:
        raise ConfigError(f"{where}: '{text}' selects no frame of a {n_frames}-frame log")
    return sorted(out)


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
