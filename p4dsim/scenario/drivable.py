"""Drivable ego paths: perturbations checked against ``ego.limits`` before anything is built.

The ego's heading follows its perturbed path, so a lateral offset is a manoeuvre: its yaw rate
and lateral acceleration depend on how fast it is driven. For an offset y(t) = d·f(x),
x = (t - start) / T, on a straight base driven at speed v, the path's heading relative to the
base is atan(ẏ / v) and its curvature κ = v·|ÿ| / (v² + ẏ²)^{3/2}; the yaw rate is κ·|v_path| =
v·|ÿ| / (v² + ẏ²) and the lateral acceleration κ·|v_path|² = v·|ÿ| / √(v² + ẏ²). smoothstep and
cosine ramps (and a sinusoid) are largest in |ÿ| exactly where ẏ = 0, at the ends of the ramp
(at the crests), so the largest yaw rate is |d|·c₂ / (T² v) and the largest lateral
acceleration |d|·c₂ / T², with c₂ = max |f''| (smoothstep 6, cosine π²/2, a swerve's sinusoid
(2π)²). The shortest ramp that keeps both within the limits is therefore

    T_min = √(|d|·c₂ / min(a_max, ω_max·v))        (:func:`min_ramp_s`)

and it grows without bound as v → 0: at standstill a lateral offset cannot be driven at all
(only jumped, ``ramp_s: 0``). A linear ramp turns instantly at both ends (c₂ = ∞) and is
refused for lateral motion. A ``yaw_offset`` turns the heading at c₁·|θ| / T at most (c₁ = max
|f'|: linear 1, smoothstep 1.5, cosine π/2).

The check itself is numerical, on the sampled path as it will be rendered (every 10 ms over
the run plus just inside the ends of every ramp, where the extremes lie; speed after
``speed_scale``, stacked perturbations together, on the real base path): yaw rate, lateral
acceleration, sideways motion while the base stands still, and the heading deviation from
the base path against the bound the limits imply. That bound: a path that starts parallel to
the base and never curves more than κ has moved at least (1 − cos θ)/κ sideways by the time
its heading deviates by θ, so with Y the lateral range of the offsets θ ≤ acos(1 − κ·Y),
κ the largest curvature the limits allow at the speeds driven during the manoeuvre plus the
base path's own. A logged base path may itself exceed the limits (a real driver's turn): its
own yaw rate and lateral acceleration are then the allowance at that time. The shortest
feasible ramp, duration or period in a refusal is found by bisection on the same numerical
check, in steps of 0.01 s (on a straight base at constant speed it is :func:`min_ramp_s`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.geometry import inv_pose
from p4dsim.scenario.ego import (
    KIN_DT_S,
    PoseFn,
    constant_velocity_base,
    ego_kinematics,
    lateral_offset,
    log_base,
    stationary_base,
    waypoints_base,
)
from p4dsim.scenario.model import (
    EgoModel,
    LaneChange,
    LateralOffset,
    LongitudinalOffset,
    Profile,
    Scenario,
    SpeedScale,
    Swerve,
    YawOffset,
)
from p4dsim.scenario.variants import Variant
from p4dsim.types import Frame, Log

#: max |f''| of each ramp profile on [0, 1] (linear: kinks, unbounded)
C2: dict[str, float] = {"linear": math.inf, "smoothstep": 6.0, "cosine": math.pi**2 / 2}
#: max |f'| of each ramp profile on [0, 1]
C1: dict[str, float] = {"linear": 1.0, "smoothstep": 1.5, "cosine": math.pi / 2}

_STEP_S = 0.01  # s, sampling step of the check (coarser for runs over 200 s)
_MAX_SAMPLES = 20_000
_STILL_MPS = 0.1  # m/s, below this the base path stands still: no lateral manoeuvre
_REL_TOL = 1e-4  # relative tolerance of the numerical check (rounding)
_MAX_SEARCH_S = 600.0  # s, longest ramp / duration / period a refusal suggests

Shaped = LateralOffset | LongitudinalOffset | YawOffset | Swerve | LaneChange


def min_ramp_s(
    offset_m: float,
    profile: Profile,
    speed_mps: float,
    lateral_accel_mps2: float,
    yaw_rate_dps: float,
) -> float:
    """Shortest ramp (s) of a lateral offset ``offset_m`` with ``profile`` on a straight base
    driven at a constant ``speed_mps`` that keeps yaw rate and lateral acceleration within the
    limits: √(|d|·c₂ / min(a_max, ω_max·v)); inf for a linear ramp or standstill."""
    cap = min(lateral_accel_mps2, math.radians(yaw_rate_dps) * speed_mps)
    if offset_m == 0:
        return 0.0
    if cap <= 0 or math.isinf(C2[profile]):
        return math.inf
    return math.sqrt(abs(offset_m) * C2[profile] / cap)


def min_yaw_ramp_s(offset_deg: float, profile: Profile, yaw_rate_dps: float) -> float:
    """Shortest ramp (s) of a ``yaw_offset`` alone within the yaw rate limit: c₁·|θ| / ω_max."""
    return C1[profile] * abs(offset_deg) / yaw_rate_dps


def min_swerve_period_s(
    amplitude_m: float, speed_mps: float, lateral_accel_mps2: float, yaw_rate_dps: float
) -> float:
    """Shortest period (s) of a swerve's sinusoid (without its ramps) at a constant speed:
    2π·√(|A| / min(a_max, ω_max·v))."""
    cap = min(lateral_accel_mps2, math.radians(yaw_rate_dps) * speed_mps)
    if amplitude_m == 0:
        return 0.0
    return math.inf if cap <= 0 else 2 * math.pi * math.sqrt(abs(amplitude_m) / cap)


def is_shaped(p: object) -> bool:
    """Whether a perturbation moves or turns the ego gradually (what the limits constrain)."""
    if isinstance(p, LateralOffset | LongitudinalOffset | YawOffset):
        return p.ramp_s > 0
    return isinstance(p, Swerve | LaneChange)


@dataclass(frozen=True)
class Violation:
    """The worst excess of one run: ``what`` (yaw rate, lateral acceleration, heading
    deviation, sideways), at time ``t`` s, ``value`` against ``limit`` (°/s, m/s², °, m/s),
    ``speed`` the base speed driven there (m/s)."""

    what: str
    t: float
    value: float
    limit: float
    speed: float

    def describe(self) -> str:
        if self.what == "sideways":
            return (
                f"moves sideways at {self.value:.2f} m/s at t={self.t:.2f} s while the base path "
                f"stands still ({self.speed:.2f} m/s): a lateral offset cannot be driven without "
                "speed"
            )
        unit = {"yaw rate": "°/s", "lateral acceleration": "m/s²", "heading deviation": "°"}
        u = unit[self.what]
        return (
            f"reaches a {self.what} of {self.value:.3g} {u} at t={self.t:.2f} s driving "
            f"{self.speed:.1f} m/s (limit {self.limit:.3g} {u})"
        )


def check_path(
    model: EgoModel, base: PoseFn, duration_s: float, base_allowance: bool = False
) -> Violation | None:
    """The worst excess of ``ego.limits`` on the path sampled over [0, duration_s], or None.

    ``base_allowance``: the base path's own yaw rate and lateral acceleration (after
    ``speed_scale``) are allowed where they exceed the limits (a logged path).
    """
    lim = model.limits
    n = int(min(_MAX_SAMPLES, max(2, math.ceil(duration_s / _STEP_S) + 1)))
    t = np.union1d(np.linspace(0.0, duration_s, n), _critical_times(model, duration_s))
    n = len(t)
    kin = ego_kinematics(model, base, t)
    speed_only = model.model_copy(
        update={"perturbations": [p for p in model.perturbations if isinstance(p, SpeedScale)]}
    )
    bk = ego_kinematics(speed_only, base, t)
    base_speed = bk.speed
    yaw_allow = np.full(n, math.radians(lim.yaw_rate_dps))
    lat_allow = np.full(n, lim.lateral_accel_mps2)
    if base_allowance:
        yaw_allow = np.maximum(yaw_allow, np.abs(bk.yaw_rate))
        lat_allow = np.maximum(lat_allow, np.abs(bk.lateral_accel))
    found: list[Violation] = []

    def worst(what: str, value: np.ndarray, allow: np.ndarray, scale: float) -> None:
        excess = value / np.maximum(allow, 1e-12)
        i = int(np.argmax(excess))
        if excess[i] > 1 + _REL_TOL:
            found.append(
                Violation(what, float(t[i]), value[i] * scale, allow[i] * scale, base_speed[i])
            )

    # Sideways motion while the base path stands still: no ramp makes it drivable.
    h = 1e-3
    lat_rate = np.abs(lateral_offset(model, t + h) - lateral_offset(model, t - h)) / (2 * h)
    still = (base_speed < _STILL_MPS) & (lat_rate > 1e-9)
    if np.any(still):
        i = int(np.argmax(np.where(still, lat_rate, 0.0)))
        found.append(Violation("sideways", float(t[i]), lat_rate[i], 0.0, base_speed[i]))
    worst("yaw rate", np.abs(kin.yaw_rate), yaw_allow, 180 / math.pi)
    worst("lateral acceleration", np.abs(kin.lateral_accel), lat_allow, 1.0)
    # Heading deviation from the base path: bounded by the curvature the limits allow while
    # the offsets change, plus the base path's own curvature, and their lateral range.
    y = lateral_offset(model, t)
    moving = (lat_rate > 1e-6) & (base_speed >= _STILL_MPS)
    if np.any(moving):
        v = base_speed[moving]
        kappa = np.minimum(lat_allow[moving] / v**2, yaw_allow[moving] / v)
        base_kappa = np.abs(bk.yaw_rate) / np.maximum(base_speed, _STILL_MPS)
        k_hi = float(np.max(kappa) + np.max(base_kappa))
        y_range = float(max(np.max(y), 0.0) - min(np.min(y), 0.0))
        bound = math.acos(max(-1.0, 1.0 - k_hi * y_range))
        worst(
            "heading deviation",
            np.abs(kin.heading_deviation),
            np.full(n, bound + math.radians(0.05)),
            180 / math.pi,
        )
    if not found:
        return None
    return found[0] if found[0].what == "sideways" else max(found, key=lambda f: f.value / f.limit)


def _critical_times(model: EgoModel, duration_s: float) -> np.ndarray:
    """Times just inside the ends of every ramp (and at a swerve's crests), where the largest
    |ÿ| of smoothstep and cosine ramps lies, within [0, duration_s]."""
    eps = 3 * KIN_DT_S  # the difference stencils stay inside the ramp
    out: list[float] = []
    for p in model.perturbations:
        if isinstance(p, LaneChange):
            out += [p.start_s + eps, p.start_s + p.duration_s - eps]
        elif isinstance(p, Swerve):
            end = p.start_s + (p.cycles if p.cycles is not None else 1e3) * p.period_s
            out += [p.start_s + eps, p.start_s + p.ramp_s - eps, end - p.ramp_s + eps, end - eps]
            k = np.arange(0, min(4 * (end - p.start_s) / p.period_s, 4000) + 1)
            out += list(p.start_s + (k + 0.5) * p.period_s / 4)  # crests: phase 1/4, 3/4, ...
        elif isinstance(p, LateralOffset | LongitudinalOffset | YawOffset | SpeedScale):
            if p.ramp_s > 0:
                out += [p.start_s + eps, p.start_s + p.ramp_s - eps]
    t = np.asarray(out, dtype=np.float64)
    return t[(t >= 0) & (t <= duration_s)]


# --- what a refusal suggests ----------------------------------------------------------------


def _param(p: Shaped) -> str:
    if isinstance(p, LaneChange):
        return "duration_s"
    if isinstance(p, Swerve):
        return "period_s"
    return "ramp_s"


def _describe(p: Shaped) -> str:
    if isinstance(p, LateralOffset | LongitudinalOffset):
        return f"{p.type} {p.offset_m:.3g} m over ramp_s {p.ramp_s:.3g} s ({p.profile})"
    if isinstance(p, YawOffset):
        return f"yaw_offset {p.offset_deg:.3g}° over ramp_s {p.ramp_s:.3g} s ({p.profile})"
    if isinstance(p, LaneChange):
        return f"lane_change {p.width_m:.3g} m over duration_s {p.duration_s:.3g} s ({p.profile})"
    return (
        f"swerve of amplitude {p.amplitude_m:.3g} m, period_s {p.period_s:.3g} s, "
        f"ramp_s {p.ramp_s:.3g} s ({p.profile})"
    )


def _with(p: Shaped, value: float, profile: Profile | None = None) -> Shaped:
    upd: dict[str, object] = {_param(p): value}
    if profile is not None:
        upd["profile"] = profile
    if isinstance(p, Swerve):
        # The swerve's ramps scale with its period (a quarter period when it had none).
        frac = p.ramp_s / p.period_s if p.ramp_s > 0 else 0.25
        upd["ramp_s"] = frac * value
    return p.model_copy(update=upd)


def _replace(model: EgoModel, i: int, p: Shaped) -> EgoModel:
    perts = list(model.perturbations)
    perts[i] = p
    return model.model_copy(update={"perturbations": perts})


class _NoRamp(Exception):
    pass


def shortest(
    model: EgoModel,
    i: int,
    base: PoseFn,
    duration_s: float,
    base_allowance: bool,
    profile: Profile | None = None,
) -> float | None:
    """Shortest value (0.01 s steps) of perturbation ``i``'s ramp, duration or period (with
    ``profile`` if given) for which the whole path meets the limits; None when no value up to
    10 minutes does (e.g. the base path stands still)."""
    p = model.perturbations[i]

    def ok(value: float) -> bool:
        m = _replace(model, i, _with(p, value, profile))
        v = check_path(m, base, duration_s, base_allowance)
        if v is not None and v.what == "sideways":
            raise _NoRamp  # standing still: no ramp can be driven
        return v is None

    lo, hi = 0.0, max(getattr(p, _param(p)), 0.05)
    try:
        while not ok(hi):
            lo, hi = hi, hi * 2
            if hi > _MAX_SEARCH_S:
                return None
    except _NoRamp:
        return None
    for _ in range(40):
        if hi - lo < 0.002:
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    out = math.ceil(hi * 100 - 1e-6) / 100
    while not ok(out):
        out += 0.01
    return out


# --- the check of a scenario ------------------------------------------------------------------


def _refusal(
    where: str,
    i: int,
    k: int,
    why: str,
    model: EgoModel,
    base: PoseFn,
    duration_s: float,
    allowance: bool,
    others: Sequence[int] = (),
) -> ConfigError:
    """The refusal of ``ego.perturbations.{i}``, which is ``model.perturbations[k]``."""
    p = model.perturbations[k]
    field = f"ego.perturbations.{i}"
    together = ""
    if others:
        together = " together with " + ", ".join(f"ego.perturbations.{j}" for j in others)
    name = _param(p)
    tips: list[str] = []
    if isinstance(p, LateralOffset | LongitudinalOffset | Swerve | LaneChange) and (
        p.profile == "linear"
    ):
        for prof in ("smoothstep", "cosine"):
            v = shortest(model, k, base, duration_s, allowance, prof)  # type: ignore[arg-type]
            if v is not None:
                tips.append(f"profile {prof} with {name} >= {v:.2f} s")
    else:
        v = shortest(model, k, base, duration_s, allowance)
        if v is not None:
            tip = f"{name} >= {v:.2f} s"
            if isinstance(p, Swerve):
                tip += f" (with ramp_s {_with(p, v).ramp_s:.2f} s)"
            tips.append(tip)
    if tips:
        fix = "the shortest that meets ego.limits at this speed: " + " or ".join(tips)
    else:
        fix = "no ramp, duration or period meets the limits at this speed"
    jump = (
        "; use ramp_s: 0 for a camera jump that keeps the heading"
        if isinstance(p, LateralOffset | LongitudinalOffset)
        else ""
    )
    return ConfigError(
        f"{where}: field '{field}' ({_describe(p)}){together} cannot be driven: it {why}; "
        f"{fix}{jump}; or set ego.limits.enforce: false to keep the raw path"
    )


def check_ego(model: EgoModel, base: PoseFn, duration_s: float, where: str, logged: bool) -> None:
    """Raise :class:`ConfigError` naming the first perturbation of ``model`` whose path cannot
    be driven within ``model.limits`` (with the shortest ramp, duration or period that can),
    when the limits are enforced. ``logged``: the base is a logged path (its own turns are
    allowed)."""
    if not model.limits.enforce:
        return
    speeds = [p for p in model.perturbations if isinstance(p, SpeedScale)]
    shaped = [i for i, p in enumerate(model.perturbations) if is_shaped(p)]
    if model.base == "waypoints":  # the user's own base path must be drivable too
        v = check_path(model.model_copy(update={"perturbations": speeds}), base, duration_s)
        if v is not None:
            raise ConfigError(
                f"{where}: field 'ego.waypoints' cannot be driven: the base path {v.describe()} "
                f"(ego.limits: {model.limits.yaw_rate_dps:g} °/s, "
                f"{model.limits.lateral_accel_mps2:g} m/s²); spread the waypoints over more "
                "time or set ego.limits.enforce: false"
            )
    for i in shaped:
        p = model.perturbations[i]
        kink = _kink(p, duration_s)
        if kink:
            alone = model.model_copy(update={"perturbations": [*speeds, p]})
            raise _refusal(where, i, len(speeds), kink, alone, base, duration_s, logged)
    v = check_path(model, base, duration_s, logged)
    if v is None or not shaped:
        return
    # Name the perturbation: the first that cannot be driven on its own, else the first
    # active at the worst time, together with the others.
    for i in shaped:
        alone = model.model_copy(update={"perturbations": [*speeds, model.perturbations[i]]})
        va = check_path(alone, base, duration_s, logged)
        if va is not None:
            raise _refusal(where, i, len(speeds), va.describe(), alone, base, duration_s, logged)
    active = [i for i in shaped if _active(model.perturbations[i], v.t)] or shaped
    i = active[0]
    others = [j for j in shaped if j != i]
    raise _refusal(where, i, i, v.describe(), model, base, duration_s, logged, others)


def _kink(p: Shaped, duration_s: float) -> str | None:
    """Why a lateral perturbation turns instantly (an unbounded yaw rate) inside the run, or
    None: a linear ramp at both of its ends, a swerve without a ramp where it starts."""
    if p.start_s >= duration_s or isinstance(p, LongitudinalOffset | YawOffset):
        return None
    if isinstance(p, Swerve) and p.ramp_s == 0:
        return (
            f"starts at its full slope at t={p.start_s:g} s, turning instantly there "
            "(an unbounded yaw rate)"
        )
    if p.profile == "linear":
        return "turns instantly at both ends of its linear ramp (an unbounded yaw rate)"
    return None


def _active(p: Shaped, t: float) -> bool:
    if isinstance(p, LaneChange):
        return p.start_s <= t <= p.start_s + p.duration_s
    if isinstance(p, Swerve):
        end = math.inf if p.cycles is None else p.start_s + p.cycles * p.period_s
        return p.start_s <= t <= end
    return p.start_s <= t <= p.start_s + p.ramp_s


def needs_check(scenario: Scenario) -> bool:
    """Whether the scenario's ego path has anything the limits constrain."""
    ego = scenario.ego
    return ego.limits.enforce and (
        ego.base == "waypoints" or any(is_shaped(p) for p in ego.perturbations)
    )


def base_path(ego: EgoModel, log: Log | None, frame: Frame | None, where: str) -> PoseFn:
    """The ego's base path in the scene world (origin: the source frame's ego pose), from the
    log and its source frame, the same path replay drives."""
    if ego.base == "stationary":
        return stationary_base()
    if ego.base == "waypoints":
        return waypoints_base(list(ego.waypoints or []))
    if ego.base == "constant_velocity":
        v = None if frame is None else frame.ego_velocity
        return constant_velocity_base(np.zeros(3) if v is None else np.asarray(v, np.float64))
    traj = log.ego_trajectory() if log is not None else None
    if traj is None or frame is None:
        raise ConfigError(
            f"{where}: field 'ego.base': the source log has no ego poses, so base 'log' is "
            "unavailable; use base: constant_velocity"
        )
    ts_us, T_log = traj
    times = (np.asarray(ts_us, dtype=np.int64) - frame.timestamp_us) / 1e6
    T_scene = inv_pose(np.asarray(frame.T_world_ego, np.float64)) @ np.asarray(T_log, np.float64)
    return log_base(times, T_scene, smooth=ego.limits.enforce)


def require_drivable(
    runs: Sequence[tuple[str, Scenario]],
    source: Callable[[], tuple[Log | None, Frame | None]],
) -> None:
    """Refuse (:class:`ConfigError`) the first run whose ego path exceeds its enforced limits.

    ``runs``: (where, scenario) per expanded run, ``where`` naming the file (and the variant);
    ``source`` opens the log and its source frame, called only when a run needs the speed.
    """
    opened: list[tuple[Log | None, Frame | None]] = []
    for where, sc in runs:
        if not needs_check(sc):
            continue
        if not opened:
            opened.append(source())
        log, frame = opened[0]
        base = base_path(sc.ego, log, frame, where)
        check_ego(sc.ego, base, sc.duration_s, where, logged=sc.ego.base == "log")


def variant_runs(variants: Sequence[Variant], where: str) -> list[tuple[str, Scenario]]:
    """(where, scenario) per expanded run; ``where`` names the variant and its overrides."""
    out = []
    for v in variants:
        desc = ", ".join(f"{k}={x!r}" for k, x in v.overrides.items())
        out.append((f"{where}: variant {v.variant_id} ({desc})" if desc else where, v.scenario))
    return out
