"""Lead vehicle brakes on toytown: the collision comes at the analytic time (±1 frame), and
none comes when the ego brakes too."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from p4dsim.geometry import inv_pose
from p4dsim.io.dataset import read_manifest, read_table
from p4dsim.replay import replay
from p4dsim.scenario.load import load_scenario
from p4dsim.scenario.model import Scenario
from p4dsim.scenario.timeline import make_timeline
from p4dsim.scene.builder import build_scene
from p4dsim.source import SourceSpec

REPO = Path(__file__).resolve().parents[1]
FPS = 10.0
EGO_L, EGO_W = 4.5, 1.9
SRC = {"adapter": "toytown", "width": 104, "height": 32, "frames": 50}


def scenario(base: str, duration: float = 4.5, **extra) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "lead_brake",
            "source": SRC,
            "duration_s": duration,
            "fps": FPS,
            "ego": {"base": base, "footprint": {"length_m": EGO_L, "width_m": EGO_W}},
            "actors": {"default": "log"},
            **extra,
        }
    )


@pytest.fixture(scope="module")
def toytown():
    log = SourceSpec.from_mapping(SRC).open()
    return log, build_scene(log.frame(0))


def gap(log, scene, t: float, lead_x=None) -> float:
    """Free gap (m) between the ego's front (constant velocity from its source state) and
    car0's rear at time t, from the world's own states."""
    T_scene_log = inv_pose(scene.T_log_scene)
    ego0 = T_scene_log @ log.world.ego_pose(0.0)
    v_ego = log.world.ego_velocity(0.0)[0]
    if lead_x is None:
        st = log.world.vehicles(t)[log.world.track_ids.index("car0")]
        lead_x = (T_scene_log @ st.T_world_box)[0, 3]
    size = log.world.vehicles(0.0)[0].size
    return (lead_x - size[0] / 2) - (ego0[0, 3] + v_ego * t + EGO_L / 2)


def first_contact(fn, t_max: float) -> float:
    ts = np.arange(0.0, t_max, 1e-3)
    k = next(i for i, t in enumerate(ts) if fn(t) <= 0)
    lo, hi = ts[k - 1], ts[k]
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if fn(mid) <= 0 else (mid, hi)
    return hi


def first_collision_frame(tl) -> int | None:
    return next((k for k, m in enumerate(tl.metrics) if m.collision), None)


def test_logged_lead_brake_collides_at_analytic_time(toytown, tmp_path):
    log, scene = toytown
    # car0 stays in the ego lane (y = 0, yaw 0), so the footprints meet when the gap closes.
    assert log.world.vehicles(0.0)[0].T_world_box[1, 3] == 0.0
    t_c = first_contact(lambda t: gap(log, scene, t), 10.0)
    expected = math.ceil(t_c * FPS - 1e-9)
    sc = scenario("constant_velocity")
    tl = make_timeline(sc, scene, log, "test")
    k = first_collision_frame(tl)
    assert k is not None and abs(k - expected) <= 1, (k, expected, t_c)
    # ... and the written dataset reports it (frames column, manifest summary).
    out = tmp_path / "ds"
    replay(sc, out, device="cpu")
    frames = read_table(out, "frames").to_pandas()
    first = frames.index[frames["collision"]][0]
    assert abs(first - expected) <= 1
    assert frames["min_distance_m"].iloc[first] == 0.0
    assert frames["ttc_s"].iloc[max(first - 3, 0)] > 0
    s = read_manifest(out)["summary"]
    assert s["first_collision_s"] == pytest.approx(frames["t_s"].iloc[first])
    assert s["min_distance_m"] == 0.0


def test_no_collision_when_the_ego_brakes_too(toytown):
    log, scene = toytown
    tl = make_timeline(scenario("log", duration=6.0), scene, log, "test")
    assert first_collision_frame(tl) is None
    assert min(m.min_distance_m for m in tl.metrics) > 0.5


def test_brake_behaviour_file_collides_at_analytic_time(toytown):
    """scenarios/lead_vehicle_brake.yaml: car0 brakes at 6 m/s² from 0.5 s (CTRA)."""
    log, scene = toytown
    sc = load_scenario(REPO / "scenarios" / "lead_vehicle_brake.yaml")
    sc = sc.model_copy(update={"fps": FPS, "duration_s": 4.0})
    st = log.world.vehicles(0.0)[0]
    x0 = (inv_pose(scene.T_log_scene) @ st.T_world_box)[0, 3]
    v0, d, t0 = st.velocity[0], 6.0, 0.5

    def lead_x(t):
        tau = np.clip(t - t0, 0.0, v0 / d)
        return x0 + v0 * min(t, t0) + v0 * tau - 0.5 * d * tau**2

    t_c = first_contact(lambda t: gap(log, scene, t, lead_x(t)), 10.0)
    tl = make_timeline(sc, scene, log, "test")
    k = first_collision_frame(tl)
    assert k is not None and abs(k - math.ceil(t_c * FPS - 1e-9)) <= 1, (k, t_c)


def test_rows_carry_each_steps_metrics_and_labels_in_chunks(toytown, monkeypatch):
    """The replay computes label geometry and safety metrics in chunks of time steps while
    rendering; every row still carries its own step's values (chunks of 4 over 46 steps)."""
    import p4dsim.replay as rp
    from p4dsim.labels import label_geometry
    from p4dsim.render import get_renderer

    log, scene = toytown
    monkeypatch.setattr(rp, "LABEL_CHUNK", 4)
    sc = scenario("constant_velocity")
    tl = make_timeline(sc, scene, log, "test")
    geom = label_geometry(scene, tl)
    n = 0
    for row, actors in rp.iter_rows(scene, log, sc, get_renderer("cpu"), "r"):
        k = row["frame_index"]
        m = tl.metrics[k]
        assert (row["collision"], row["min_distance_m"], row["ttc_s"]) == (
            m.collision,
            m.min_distance_m,
            m.ttc_s,
        )
        for a in actors:
            i = [x.track_id for x in scene.actors].index(a["track_id"])
            assert a["center_camera"] == geom.center_camera[k, i].tolist()
            assert a["speed"] == geom.speed[k, i]
        n += 1
    assert n == len(tl.times) == 46
    assert any(tl.metrics[k].collision for k in range(n))
