"""Exports carry the motion model's values: the Waymo v2 ``lidar_box`` speed and acceleration
of a braking actor equal the scenario's (not finite differences), and the KITTI export types
vehicles by their size."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from p4dsim.io.dataset import read_table
from p4dsim.io.export import export_dataset
from p4dsim.replay import replay
from p4dsim.scenario.load import parse_scenario

DECEL = 4.0
START = 0.3


@pytest.fixture(scope="module")
def braking(tmp_path_factory):
    sc = parse_scenario(
        {
            "name": "brake",
            "source": {"adapter": "toytown", "width": 48, "height": 24, "frames": 10},
            "duration_s": 1.0,
            "fps": 10,
            "ego": {"base": "stationary"},
            "actors": {
                "default": "constant_velocity",
                "rules": [
                    {
                        "select": {"label": "vehicle"},
                        "behaviour": {
                            "type": "brake",
                            "deceleration_mps2": DECEL,
                            "start_s": START,
                        },
                    }
                ],
            },
        },
        "test",
    )
    return replay(sc, tmp_path_factory.mktemp("brake") / "ds").out_dir


def test_actors_table_has_exact_acceleration(braking):
    a = read_table(braking, "actors").to_pylist()
    moving = [r for r in a if r["speed"] > 0.5]
    assert moving
    braking = 0
    for r in a:
        acc = np.linalg.norm(r["acceleration_world"][:2])
        t = r["frame_index"] / 10
        stop = START + max(r["speed"], 0) / DECEL
        if t < START - 0.06:
            assert acc == pytest.approx(0.0, abs=1e-6), r
        elif START + 0.06 < t and r["speed"] > DECEL * 0.06:
            assert acc == pytest.approx(DECEL, rel=1e-6), (t, stop, r)
            braking += 1
    assert braking > 5


def test_waymo_v2_export_uses_motion_model(braking, tmp_path):
    out = export_dataset(braking, "waymo-v2", tmp_path / "v2").out_dir
    lb = pq.read_table(next((out / "lidar_box").glob("*.parquet"))).to_pylist()
    actors = {
        (r["track_id"], r["frame_index"]): r for r in read_table(braking, "actors").to_pylist()
    }
    frames = read_table(braking, "frames").to_pylist()
    ts_to_k = {f["timestamp_us"]: f["frame_index"] for f in frames}
    checked = 0
    for r in lb:
        a = actors[(r["key.laser_object_id"], ts_to_k[r["key.frame_timestamp_micros"]])]
        T = np.asarray(frames[a["frame_index"]]["T_world_ego"]).reshape(4, 4)
        acc = [r[f"[LiDARBoxComponent].acceleration.{x}"] for x in "xyz"]
        np.testing.assert_allclose(acc, T[:3, :3].T @ a["acceleration_world"], atol=1e-9)
        spd = [r[f"[LiDARBoxComponent].speed.{x}"] for x in "xyz"]
        np.testing.assert_allclose(spd, T[:3, :3].T @ a["velocity_world"], atol=1e-9)
        checked += 1
    assert checked == len(actors)


def test_kitti_types_from_label_and_size():
    from p4dsim_kitti.labels import kitti_type

    assert kitti_type("vehicle", [8.4, 2.5, 3.2]) == "Truck"
    assert kitti_type("vehicle", [4.5, 1.8, 1.5]) == "Car"
    assert kitti_type("vehicle", [5.2, 2.0, 2.3]) == "Van"
    assert kitti_type("vehicle", [12.0, 2.6, 3.6]) == "Truck"
    assert kitti_type("tram", [25.0, 2.6, 3.5]) == "Tram"
    assert kitti_type("pedestrian", [0.6, 0.6, 1.8]) == "Pedestrian"
    assert kitti_type("cyclist", [1.8, 0.6, 1.7]) == "Cyclist"
    assert kitti_type("sign", [0.1, 0.8, 0.8]) == "Misc"
    assert kitti_type("other", [1.0, 1.0, 1.0]) == "Misc"
