"""Drivable ego paths: enforced limits, refusals with the shortest feasible ramp, opt-out."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from p4dsim.errors import ConfigError, SourceError
from p4dsim.geometry import pose_from_xyz_yaw, yaw_of
from p4dsim.scenario.drivable import (
    base_path,
    check_ego,
    check_path,
    lateral_offset,
    min_ramp_s,
    min_swerve_period_s,
    min_yaw_ramp_s,
    shortest,
    variant_runs,
)
from p4dsim.scenario.ego import constant_velocity_base, ego_poses, log_base, waypoints_base
from p4dsim.scenario.load import load_scenario
from p4dsim.scenario.model import EgoModel
from p4dsim.scenario.variants import expand_variants

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "scenarios").glob("*.yaml"))
ENV = {**os.environ, "COLUMNS": "2000"}


def ego(perts, **kw) -> EgoModel:
    return EgoModel.model_validate({"base": "constant_velocity", "perturbations": perts, **kw})


def straight(v: float):
    return constant_velocity_base(np.array([v, 0.0, 0.0]))


def measured(model: EgoModel, base, t: np.ndarray, h: float = 0.01):
    """Yaw rate (rad/s), lateral acceleration (m/s²) and heading deviation from the base
    (rad) measured on the rendered poses alone (finite differences), independently of
    :func:`ego_kinematics`."""
    P = ego_poses(model, base, t)
    Pm, Pp = ego_poses(model, base, t - h), ego_poses(model, base, t + h)
    yaw_rate = np.angle(np.exp(1j * (yaw_of(Pp) - yaw_of(Pm)))) / (2 * h)
    x0, xm, xp = P[:, :2, 3], Pm[:, :2, 3], Pp[:, :2, 3]
    v = (xp - xm) / (2 * h)
    a = (xp - 2 * x0 + xm) / h**2
    speed = np.hypot(v[:, 0], v[:, 1])
    lat = (v[:, 0] * a[:, 1] - v[:, 1] * a[:, 0]) / np.maximum(speed, 1e-9)
    no_yaw = model.model_copy(
        update={"perturbations": [p for p in model.perturbations if p.type != "yaw_offset"]}
    )
    dev = np.angle(np.exp(1j * (yaw_of(ego_poses(no_yaw, base, t)) - yaw_of(base(t)))))
    return yaw_rate, lat, dev


@pytest.mark.parametrize("profile", ["smoothstep", "cosine"])
@pytest.mark.parametrize("speed", [1.0, 2.0, 5.0, 12.0, 30.0])
def test_shortest_ramp_matches_closed_form(profile, speed):
    """T_min = √(|d| c₂ / min(a, ω v)) on a straight base; the bisection on the sampled path
    finds the same (to its 0.01 s steps), and the path at T_min meets the limits."""
    model = ego([{"type": "lateral_offset", "offset_m": 1.0, "ramp_s": 0.5, "profile": profile}])
    expect = min_ramp_s(1.0, profile, speed, 4.0, 30.0)
    got = shortest(model, 0, straight(speed), 2 * expect + 1, False)
    assert expect - 0.01 <= got <= expect + 0.011
    feasible = ego([{"type": "lateral_offset", "offset_m": 1.0, "ramp_s": got, "profile": profile}])
    t = np.linspace(0, got + 0.5, 2000)
    yr, lat, _ = measured(feasible, straight(speed), t)
    assert np.max(np.abs(np.rad2deg(yr))) <= 30.0 * 1.01
    assert np.max(np.abs(lat)) <= 4.0 * 1.01
    # and 10 % shorter does not
    short = ego(
        [{"type": "lateral_offset", "offset_m": 1.0, "ramp_s": 0.9 * expect, "profile": profile}]
    )
    assert check_path(short, straight(speed), 2 * expect + 1) is not None


def test_swerve_period_closed_form():
    """A swerve without end (cycles None): the sinusoid sets the shortest period,
    2π √(|A| / min(a, ω v)) (measured past its abrupt start)."""
    for v in (3.0, 15.0):
        expect = min_swerve_period_s(0.5, v, 4.0, 30.0)
        sw = {"type": "swerve", "amplitude_m": 0.5, "period_s": 0.9 * expect, "ramp_s": 0.0}
        m = ego([{**sw, "start_s": 0.0}])
        t = np.linspace(0.1 * expect, 2 * expect, 1000)
        yr, lat, _ = measured(m, straight(v), t)
        # the sinusoid's crest at 0.9 T_min exceeds the limit by 1/0.81
        ratio = max(np.max(np.abs(np.rad2deg(yr))) / 30.0, np.max(np.abs(lat)) / 4.0)
        assert ratio == pytest.approx(1 / 0.81, rel=0.02)


@pytest.mark.parametrize("profile", ["linear", "smoothstep", "cosine"])
def test_shortest_yaw_offset_ramp_matches_closed_form(profile):
    """A yaw_offset turns the heading at c₁·|θ|/T at most: T_min = c₁·|θ| / ω_max."""
    model = ego([{"type": "yaw_offset", "offset_deg": 20.0, "ramp_s": 0.2, "profile": profile}])
    expect = min_yaw_ramp_s(20.0, profile, 30.0)
    got = shortest(model, 0, straight(10.0), 5.0, False)
    assert expect - 0.01 <= got <= expect + 0.011


def test_brief_example_refused_by_validate_and_replay(tmp_path):
    """1 m in 0.5 s at 2 m/s: exit 2, one line naming the file, the perturbation and the
    shortest ramp; replay writes nothing."""
    sc = tmp_path / "walk.yaml"
    sc.write_text(
        "source: {adapter: toytown, width: 64, height: 20}\n"
        "duration_s: 1.0\nfps: 5\n"
        "ego:\n"
        "  base: waypoints\n"
        "  waypoints: [[0, 0, 0, 0], [5, 10, 0, 0]]\n"
        "  perturbations:\n"
        "    - {type: lateral_offset, offset_m: 1.0, ramp_s: 0.5}\n"
    )
    expect = min_ramp_s(1.0, "smoothstep", 2.0, 4.0, 30.0)  # 2.39 s
    out = tmp_path / "ds"
    for cmd in (["validate", str(sc)], ["replay", str(sc), "--out", str(out), "-q"]):
        r = subprocess.run(
            [sys.executable, "-m", "p4dsim", *cmd],
            capture_output=True,
            text=True,
            timeout=120,
            env=ENV,
            cwd=tmp_path,
        )
        assert r.returncode == 2, r.stderr
        msg = r.stderr.strip()
        assert "Traceback" not in msg and len(msg.splitlines()) == 1
        assert str(sc) in msg and "ego.perturbations.0" in msg
        got = float(re.search(r"ramp_s >= ([0-9.]+) s", msg).group(1))
        assert expect - 0.01 <= got <= expect + 0.011
        assert "yaw rate" in msg and "2.0 m/s" in msg
        assert "enforce: false" in msg and "ramp_s: 0" in msg
    assert not out.exists()
    assert not (tmp_path / "out").exists()


def test_variants_are_checked_per_run(tmp_path):
    sc = tmp_path / "sweep.yaml"
    sc.write_text(
        "source: {adapter: toytown, width: 64, height: 20}\n"
        "duration_s: 0.5\nfps: 5\n"
        "ego:\n"
        "  base: constant_velocity\n"
        "  perturbations: [{type: lateral_offset, offset_m: 0.0, ramp_s: 1.0}]\n"
        "variants: {grid: {ego.perturbations.0.offset_m: [0.3, 0.6, 2.0]}}\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "p4dsim", "validate", str(sc)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert r.returncode == 2
    assert "variant v002 (ego.perturbations.0.offset_m=2.0)" in r.stderr
    assert "variant v001" not in r.stderr
    got = float(re.search(r"ramp_s >= ([0-9.]+) s", r.stderr).group(1))
    expect = min_ramp_s(2.0, "smoothstep", 8.0, 4.0, 30.0)
    assert expect - 0.01 <= got <= expect + 0.011


def test_speed_actually_driven_and_stacked_perturbations():
    """The limits apply at the speed after speed_scale, and to stacked perturbations
    together: each of two offsets is drivable alone, both at once are not."""
    lat = {"type": "lateral_offset", "offset_m": 1.0, "ramp_s": 2.5, "start_s": 1.0}
    check_ego(ego([lat]), straight(2.0), 5.0, "s.yaml", logged=False)  # needs 2.39 s at 2 m/s
    slow = ego([{"type": "speed_scale", "scale": 0.5, "ramp_s": 0.5}, lat])
    with pytest.raises(ConfigError) as e:
        check_ego(slow, straight(2.0), 5.0, "s.yaml", logged=False)
    got = float(re.search(r"ramp_s >= ([0-9.]+) s", str(e.value)).group(1))
    expect = min_ramp_s(1.0, "smoothstep", 1.0, 4.0, 30.0)  # at the 1 m/s driven: 3.39 s
    assert "ego.perturbations.1" in str(e.value) and "1.0 m/s" in str(e.value)
    assert expect - 0.01 <= got <= expect + 0.011
    half = {"type": "lateral_offset", "offset_m": 0.6, "ramp_s": 1.0, "start_s": 0.5}
    check_ego(ego([half]), straight(10.0), 3.0, "s.yaml", logged=False)
    with pytest.raises(ConfigError) as e:
        check_ego(ego([half, half]), straight(10.0), 3.0, "s.yaml", logged=False)
    assert "'ego.perturbations.0'" in str(e.value)
    assert "together with ego.perturbations.1" in str(e.value)
    # the suggested ramp for the first, with the second unchanged, is drivable
    got = float(re.search(r"ramp_s >= ([0-9.]+) s", str(e.value)).group(1))
    fixed = ego([{**half, "ramp_s": got}, half])
    check_ego(fixed, straight(10.0), 3.0, "s.yaml", logged=False)


def test_standstill_cannot_drive_a_lateral_offset():
    still = EgoModel.model_validate(
        {"base": "stationary", "perturbations": [{"type": "lateral_offset", "offset_m": 1.0}]}
    )
    base = constant_velocity_base(np.zeros(3))
    with pytest.raises(ConfigError) as e:
        check_ego(still, base, 2.0, "s.yaml", logged=False)
    msg = str(e.value)
    assert "stands still" in msg and "no ramp" in msg and "ramp_s: 0" in msg
    # a camera jump is fine at standstill, as is the opt-out
    jump = still.model_copy(
        update={"perturbations": [still.perturbations[0].model_copy(update={"ramp_s": 0.0})]}
    )
    check_ego(jump, base, 2.0, "s.yaml", logged=False)
    raw = EgoModel.model_validate({**still.model_dump(), "limits": {"enforce": False}})
    check_ego(raw, base, 2.0, "s.yaml", logged=False)


def test_linear_ramps_and_abrupt_swerves_are_refused_with_smooth_alternatives():
    lin = ego([{"type": "lateral_offset", "offset_m": 0.05, "ramp_s": 3.0, "profile": "linear"}])
    with pytest.raises(ConfigError) as e:
        check_ego(lin, straight(10.0), 4.0, "s.yaml", logged=False)
    assert "linear ramp" in str(e.value)
    assert "profile smoothstep with ramp_s >= " in str(e.value)
    assert "profile cosine with ramp_s >= " in str(e.value)
    sw = ego([{"type": "swerve", "amplitude_m": 0.1, "period_s": 4.0, "cycles": 1}])
    with pytest.raises(ConfigError) as e:
        check_ego(sw, straight(10.0), 5.0, "s.yaml", logged=False)
    assert "full slope" in str(e.value) and "period_s >= " in str(e.value)
    # A linear yaw offset has a bounded yaw rate: allowed.
    yaw = ego([{"type": "yaw_offset", "offset_deg": 5, "ramp_s": 1.0, "profile": "linear"}])
    check_ego(yaw, straight(10.0), 2.0, "s.yaml", logged=False)


def test_enforce_false_reproduces_the_raw_path():
    """With the opt-out, the path is today's: a swerve cut at its end without a taper, a
    linear ramp with its kinks, logged positions linear between samples."""
    t = np.linspace(0.0, 4.0, 81)
    v, A, per = 10.0, 0.8, 2.0
    sw = {"type": "swerve", "amplitude_m": A, "period_s": per, "start_s": 1.0, "cycles": 1}
    raw = ego([{**sw, "ramp_s": 0.5}], limits={"enforce": False})
    P = ego_poses(raw, straight(v), t)
    ph = (t - 1.0) / per
    on = (ph >= 0) & (ph <= 1)
    env = np.clip((t - 1.0) / 0.5, 0, 1)
    env = env * env * (3 - 2 * env)
    np.testing.assert_allclose(P[:, 1, 3], np.where(on, A * env * np.sin(2 * np.pi * ph), 0))
    lin = ego(
        [{"type": "lateral_offset", "offset_m": 1.0, "ramp_s": 1.0, "profile": "linear"}],
        limits={"enforce": False},
    )
    P = ego_poses(lin, straight(v), t)
    inner = (t > 0.02) & (t < 0.98)
    np.testing.assert_allclose(P[:, 1, 3], np.clip(t, 0, 1))
    np.testing.assert_allclose(yaw_of(P)[inner], np.arctan2(1.0, v), atol=1e-9)
    check_ego(lin, straight(v), 4.0, "s.yaml", logged=False)  # not refused
    # Logged poses: linear between the samples without enforcement, C¹ with it; both pass
    # through every logged pose.
    ts = np.arange(0.0, 3.01, 0.1)
    x = 8 * ts - 0.7 * ts**2
    poses = np.stack([pose_from_xyz_yaw([xi, 0, 0], 0.0) for xi in x])
    mid = ts[:-1] + 0.05
    rawlog = log_base(ts, poses)(mid)[:, 0, 3]
    np.testing.assert_allclose(rawlog, 0.5 * (x[:-1] + x[1:]), atol=1e-12)
    smooth = log_base(ts, poses, smooth=True)
    np.testing.assert_allclose(smooth(ts)[:, 0, 3], x, atol=1e-9)
    np.testing.assert_allclose(
        smooth(mid[1:-1])[:, 0, 3], 8 * mid[1:-1] - 0.7 * mid[1:-1] ** 2, atol=1e-3
    )


def test_camera_jumps_keep_the_heading():
    t = np.linspace(0.0, 3.0, 61)
    for base in (straight(10.0), constant_velocity_base(np.zeros(3))):
        m = ego(
            [
                {"type": "lateral_offset", "offset_m": 2.0, "start_s": 1.0, "ramp_s": 0.0},
                {"type": "longitudinal_offset", "offset_m": -1.0, "start_s": 1.5, "ramp_s": 0.0},
            ]
        )
        check_ego(m, base, 3.0, "s.yaml", logged=False)
        P = ego_poses(m, base, t)
        np.testing.assert_allclose(yaw_of(P), 0.0, atol=1e-12)
        np.testing.assert_allclose(P[:, 1, 3], np.where(t >= 1.0, 2.0, 0.0))


def _random_request(rng: np.random.Generator) -> tuple[EgoModel, object, float]:
    """A random stack of manoeuvres on a random straight or curved base."""
    v = float(rng.uniform(0.5, 30.0))
    if rng.random() < 0.5:
        base = straight(v)
    else:
        # a base turning within the limits (curvature at most half of what they allow)
        r_min = 2 * max(v**2 / 4.0, v / math.radians(30))
        r = float(rng.uniform(r_min, 4 * r_min)) * rng.choice([-1, 1])
        ts = np.linspace(-1, 12, 131)
        w = v / r
        pts = [[t, r * np.sin(w * t), r * (1 - np.cos(w * t)), np.rad2deg(w * t)] for t in ts]
        base = waypoints_base(pts)
    perts: list[dict] = []
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["lateral_offset", "lane_change", "swerve", "yaw_offset", "speed"])
        start = float(rng.uniform(0, 3))
        prof = str(rng.choice(["smoothstep", "cosine"]))
        if kind == "lateral_offset":
            perts.append(
                {
                    "type": kind,
                    "offset_m": float(rng.uniform(-2, 2)),
                    "start_s": start,
                    "ramp_s": float(rng.uniform(0.2, 4)),
                    "profile": prof,
                }
            )
        elif kind == "lane_change":
            perts.append(
                {
                    "type": kind,
                    "width_m": float(rng.uniform(-3.5, 3.5)),
                    "start_s": start,
                    "duration_s": float(rng.uniform(0.5, 6)),
                    "profile": prof,
                }
            )
        elif kind == "swerve":
            per = float(rng.uniform(1, 8))
            perts.append(
                {
                    "type": kind,
                    "amplitude_m": float(rng.uniform(-0.8, 0.8)),
                    "period_s": per,
                    "start_s": start,
                    "cycles": float(rng.choice([1, 1.5, 2])),
                    "ramp_s": per * float(rng.uniform(0.2, 0.5)),
                    "profile": prof,
                }
            )
        elif kind == "yaw_offset":
            perts.append(
                {
                    "type": kind,
                    "offset_deg": float(rng.uniform(-10, 10)),
                    "start_s": start,
                    "ramp_s": float(rng.uniform(0.2, 3)),
                    "profile": prof,
                }
            )
        else:
            perts.append(
                {
                    "type": "speed_scale",
                    "scale": float(rng.uniform(0.5, 1.5)),
                    "start_s": start,
                    "ramp_s": float(rng.uniform(0.5, 3)),
                    "profile": prof,
                }
            )
    return ego(perts), base, 8.0


def test_enforced_limits_hold_on_random_feasible_requests():
    """Property test (fixed seed): every request the check accepts stays within the limits
    on a dense sample (yaw rate, lateral acceleration, heading deviation bound), measured on
    the rendered poses; a refused one names a fix that is accepted."""
    rng = np.random.default_rng(15)
    accepted = refused = 0
    t = np.linspace(0.0, 8.0, 1601)
    for _ in range(40):
        model, base, dur = _random_request(rng)
        try:
            check_ego(model, base, dur, "r.yaml", logged=False)
        except ConfigError as exc:
            refused += 1
            assert "ego.perturbations." in str(exc)
            continue
        accepted += 1
        yr, lat, dev = measured(model, base, t)
        assert np.max(np.abs(np.rad2deg(yr))) <= 30.0 * 1.02 + 0.05
        assert np.max(np.abs(lat)) <= 4.0 * 1.02 + 0.02
        # heading deviation bound: acos(1 - κ Y) with κ the largest curvature the limits allow
        # at the slowest speed driven, plus the base's own curvature
        y = lateral_offset(model, t)
        if np.ptp(y) > 0:
            speed_only = model.model_copy(
                update={
                    "perturbations": [p for p in model.perturbations if p.type == "speed_scale"]
                }
            )
            Pb = ego_poses(speed_only, base, t)
            vb = np.hypot(*np.gradient(Pb[:, :2, 3], t, axis=0).T)
            kb = np.abs(np.gradient(np.unwrap(yaw_of(Pb)), t)) / np.maximum(vb, 1e-9)
            kappa = min(4.0 / vb.min() ** 2, math.radians(30) / vb.min()) + kb.max()
            y_range = max(y.max(), 0) - min(y.min(), 0)
            assert np.max(np.abs(dev)) <= math.acos(max(-1, 1 - kappa * y_range)) + 1e-3
    assert accepted >= 8 and refused >= 8, (accepted, refused)


def _example_runs():
    for f in EXAMPLES:
        sc = load_scenario(f)
        for where, run in variant_runs(expand_variants(sc, str(f)), str(f)):
            yield pytest.param(f, where, run, id=f"{f.stem}:{where.split('variant ')[-1][:4]}")


@pytest.fixture(scope="module")
def sources():
    cache: dict = {}

    def get(f: Path, sc):
        from p4dsim.source import SourceSpec

        key = (f, sc.source.model_dump_json())
        if key not in cache:
            spec = SourceSpec.from_mapping(sc.source.model_dump(exclude_none=True))
            try:
                log = spec.open(f.parent, where=str(f))
            except (ConfigError, SourceError) as exc:  # real data absent here
                pytest.skip(f"source of {f.name} unavailable: {exc}")
            cache[key] = (log, log.frame(spec.frame))
        return cache[key]

    return get


@pytest.mark.parametrize(("path", "where", "sc"), list(_example_runs()))
def test_examples_stay_within_their_limits(path, where, sc, sources):
    """Every example run validates, and where limits are enforced its rendered poses keep
    yaw rate and lateral acceleration within them (a logged base's own turns allowed)."""
    if "kitti" in path.name and not (
        os.environ.get("P4DSIM_REAL_DATA") or (ROOT.parent / "shared" / "data").exists()
    ):
        pytest.skip("KITTI sample data not found (set P4DSIM_REAL_DATA)")
    log, frame = sources(path, sc)
    base = base_path(sc.ego, log, frame, where)
    check_ego(sc.ego, base, sc.duration_s, where, logged=sc.ego.base == "log")
    if not sc.ego.limits.enforce:
        return
    t = np.linspace(0.0, sc.duration_s, int(sc.duration_s * 200) + 1)
    steps = [p.start_s for p in sc.ego.perturbations if getattr(p, "ramp_s", 1) == 0]
    keep = np.all([np.abs(t - s) > 0.03 for s in steps], axis=0) if steps else t >= 0
    yr, lat, dev = measured(sc.ego, base, t)
    speed_only = sc.ego.model_copy(
        update={"perturbations": [p for p in sc.ego.perturbations if p.type == "speed_scale"]}
    )
    byr, blat, _ = measured(speed_only, base, t)
    lim = sc.ego.limits
    yaw_allow = np.maximum(lim.yaw_rate_dps, np.abs(np.rad2deg(byr)))
    lat_allow = np.maximum(lim.lateral_accel_mps2, np.abs(blat))
    assert np.all(np.abs(np.rad2deg(yr))[keep] <= yaw_allow[keep] * 1.02 + 0.1)
    assert np.all(np.abs(lat)[keep] <= lat_allow[keep] * 1.02 + 0.05)
    assert np.all(np.abs(np.rad2deg(dev)) < 30.0)


def test_waypoint_base_must_be_drivable():
    """A user's own base path is held to the limits too (a log's own turns are not)."""
    sharp = EgoModel.model_validate(
        {"base": "waypoints", "waypoints": [[0, 0, 0, 0], [1, 8, 0, 0], [2, 12, 4, 90]]}
    )
    base = waypoints_base(list(sharp.waypoints))
    with pytest.raises(ConfigError) as e:
        check_ego(sharp, base, 2.0, "s.yaml", logged=False)
    assert "field 'ego.waypoints'" in str(e.value) and "yaw rate" in str(e.value)
    raw = EgoModel.model_validate({**sharp.model_dump(), "limits": {"enforce": False}})
    check_ego(raw, base, 2.0, "s.yaml", logged=False)
