"""Toytown replays exported to the KITTI object layout read back with the object reader:
boxes equal within 1 cm and 0.5°."""

import numpy as np
import pyarrow.parquet as pq

from p4dsim.geometry import wrap_angle, yaw_of
from p4dsim.io.export import export_dataset
from p4dsim.replay import replay
from p4dsim.scenario.load import parse_scenario
from p4dsim.source import SourceSpec


def test_toytown_replay_kitti_round_trip(tmp_path):
    sc = parse_scenario(
        {
            "source": {"adapter": "toytown", "width": 414, "height": 125},
            "duration_s": 0.3,
            "fps": 10,
            "ego": {
                "perturbations": [{"type": "lateral_offset", "offset_m": 1.0, "ramp_s": 0.3}],
                "limits": {"enforce": False},  # a raw, undrivable path is fine for labels
            },
        },
        "test",
    )
    replay(sc, tmp_path / "ds")
    export_dataset(tmp_path / "ds", "kitti", tmp_path / "kitti")
    frames = pq.read_table(tmp_path / "ds" / "frames").to_pylist()
    actors = pq.read_table(tmp_path / "ds" / "actors").to_pylist()
    log = SourceSpec.parse(f"kitti-object:{tmp_path / 'kitti'}").open()
    assert len(log) == len(frames) == 4
    compared = 0
    for i, fr in enumerate(frames):
        T_we = np.array(fr["T_world_ego"]).reshape(4, 4)
        T_ew = np.linalg.inv(T_we)
        rows = [
            a for a in actors if a["frame_index"] == fr["frame_index"] and a["box2d"] is not None
        ]
        boxes = log.frame(i).boxes
        assert len(boxes) == len(rows) > 0
        for a in rows:
            c = T_ew[:3, :3] @ np.array(a["center_world"]) + T_ew[:3, 3]
            yaw = a["yaw_world"] - yaw_of(T_we)
            b = min(boxes, key=lambda b: np.linalg.norm(b.center - c))
            assert np.linalg.norm(b.center - c) <= 0.01
            np.testing.assert_allclose(b.size, a["size"], atol=0.01)
            assert abs(float(wrap_angle(b.yaw - yaw))) <= np.deg2rad(0.5)
            compared += 1
    assert compared >= 8
