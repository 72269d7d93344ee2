"""Auto actors as ordinary actors: the actors.source option, scenes, label rows and the CLI;
and the L-shape box fit on synthetic points."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from typer.testing import CliRunner

from p4dsim.cli import app
from p4dsim.errors import ConfigError
from p4dsim.io.rows import actor_rows
from p4dsim.perception.cluster import ClusterConfig, fit_box
from p4dsim.perception.select import frame_with_actors, resolve_source
from p4dsim.render import get_renderer
from p4dsim.render.frames import render_frame
from p4dsim.scenario.model import Scenario
from p4dsim.scenario.timeline import make_timeline
from p4dsim.scene.builder import build_scene
from p4dsim.source import SourceSpec

W, H = 64, 20
SRC = f"toytown:?frames=5&width={W}&height={H}"


def _l_points(center, length, width, yaw, step=0.05):
    """Points on the two sides of a box facing a sensor at the origin (an L, 0.4-1.4 m up)."""
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s], [s, c]])
    corners = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [length / 2, width / 2]
    world = corners @ R.T + center
    k = int(np.argmin(np.linalg.norm(world, axis=1)))  # the corner nearest the sensor
    pts = []
    for nb in ((k - 1) % 4, (k + 1) % 4):
        a, b = world[k], world[nb]
        n = int(np.linalg.norm(b - a) / step)
        for f in np.linspace(0, 1, n):
            for z in (0.4, 0.9, 1.4):
                pts.append([*(a + f * (b - a)), z])
    return np.array(pts)


def test_l_shape_box_recovers_a_box_from_two_sides():
    for yaw in (0.3, -0.7, 1.2):
        center = np.array([15.0, 6.0])
        pts = _l_points(center, 4.6, 1.9, yaw)
        box = fit_box(pts, 0.0, ClusterConfig())
        assert np.allclose(box.center[:2], center, atol=0.05)
        assert np.allclose(box.size[:2], [4.6, 1.9], atol=0.06)
        assert abs(np.sin(box.yaw - yaw)) < np.sin(np.deg2rad(1.5))
        assert box.size[2] == pytest.approx(1.4)


def test_hidden_sides_grow_away_from_the_sensor():
    # only the rear face of a car 20 m ahead is visible: the box extends forward
    y = np.linspace(-0.9, 0.9, 40)
    pts = np.array([[18.0, yi, z] for yi in y for z in (0.5, 1.0, 1.5)])
    box = fit_box(pts, 0.0, ClusterConfig())
    assert box.size[0] == pytest.approx(ClusterConfig().prior_length)
    assert box.center[0] == pytest.approx(18.0 + ClusterConfig().prior_length / 2, abs=0.01)
    assert abs(np.sin(box.yaw)) < 0.05


@pytest.fixture(scope="module")
def log():
    return SourceSpec.parse(SRC).open()


def test_source_selection(log):
    fr = log.frame(4)
    assert resolve_source(fr, None) == "labels"
    bare = dataclasses.replace(fr, boxes=[])
    assert resolve_source(bare, None) == "auto"
    assert resolve_source(dataclasses.replace(bare, lidar=None), None) == "labels"
    assert frame_with_actors(fr, log, 4, "none").boxes == []
    assert frame_with_actors(fr, log, 4, "labels") is fr
    with pytest.raises(ConfigError, match="actors.source"):
        frame_with_actors(dataclasses.replace(fr, lidar=None), log, 4, "auto")
    with pytest.raises(Exception, match="source"):
        Scenario.model_validate(
            {"source": {"adapter": "toytown"}, "duration_s": 1, "actors": {"source": "lidar"}}
        )


def test_auto_actors_are_ordinary_actors(log):
    fr = frame_with_actors(log.frame(4), log, 4, "auto")
    assert fr.boxes and all(b.source == "auto" for b in fr.boxes)
    scene = build_scene(fr)
    assert [a.track_id for a in scene.actors] == [b.track_id for b in fr.boxes]
    lead = min(fr.boxes, key=lambda b: abs(b.center[1]) + abs(b.center[0] - 18.0))
    sc = Scenario.model_validate(
        {
            "source": {"adapter": "toytown", "frame": 4},
            "duration_s": 0.5,
            "fps": 2,
            "actors": {
                "source": "auto",
                "rules": [
                    {"select": {"track_id": lead.track_id}, "behaviour": "constant_velocity"}
                ],
            },
        }
    )
    tl = make_timeline(sc, scene, log, "test")
    # the auto actor moves with its estimated velocity (the lead car drives ~8 m/s)
    moved = tl.actor_poses[lead.track_id][-1, :3, 3] - tl.actor_poses[lead.track_id][0, :3, 3]
    assert 3.0 < moved[0] < 5.0
    fr0 = render_frame(scene, tl, 0, get_renderer("cpu"))
    rows = actor_rows(scene, tl, fr0, {"run_id": "r", "variant_id": "base", "frame_index": 0})
    assert rows and all(r["source"] == "auto" for r in rows)
    assert all(0 < r["confidence"] <= 1 for r in rows)


def test_cli_info_actors(tmp_path):
    png = tmp_path / "bev.png"
    res = CliRunner().invoke(app, ["info", SRC, "--frame", "4", "--actors", "--bev", str(png)])
    assert res.exit_code == 0, res.output
    assert "auto0" in res.output and "m/s" in res.output
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] == img.shape[1] > 100
    assert (img[..., 1] > 200).any()  # green boxes of moving actors were drawn
