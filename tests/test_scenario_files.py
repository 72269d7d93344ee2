"""Every example in scenarios/ validates and replays on toytown into a readable dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from p4dsim.io.dataset import read_manifest
from p4dsim.replay import replay
from p4dsim.scenario.load import load_scenario
from p4dsim.scenario.variants import expand_variants

REPO = Path(__file__).resolve().parents[1]
ALL_FILES = sorted((REPO / "scenarios").glob("*.yaml"))
# Examples over real logs (KITTI, Waymo) need the user's data; tests/test_kitti_replay.py
# runs the KITTI one on the sample data. Every toytown example runs here.
FILES = [f for f in ALL_FILES if yaml.safe_load(f.read_text())["source"]["adapter"] == "toytown"]


def test_there_are_enough_examples():
    assert len(FILES) >= 9
    for f in ALL_FILES:
        assert f.read_text().startswith("# "), f"{f.name} needs a header comment"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_example_replays(path, tmp_path):
    scenario = load_scenario(path)
    if "width" not in (scenario.source.model_extra or {}):
        # demo.yaml renders at full KITTI resolution for `make demo`; test it small.
        src = {**scenario.source.model_dump(), "width": 207, "height": 63}
        scenario = scenario.model_copy(update={"source": type(scenario.source)(**src)})
        scenario = scenario.model_copy(update={"duration_s": 0.4})
    variants = expand_variants(scenario, str(path))
    out = tmp_path / "ds"
    result = replay(scenario, out, scenario_path=path, device="cpu")
    frames = pq.read_table(out / "frames").to_pandas()
    expect = sum(len(v.scenario.times()) for v in variants)
    assert result.frames == expect == len(frames)
    assert sorted(frames["variant_id"].unique()) == sorted(v.variant_id for v in variants)
    assert frames["min_distance_m"].notna().all()
    assert frames["collision"].notna().all()
    summary = read_manifest(out)["summary"]
    assert "first_collision_s" in summary and "min_distance_m" in summary
    assert summary["min_distance_m"] == pytest.approx(frames["min_distance_m"].min())
    actors = pq.read_table(out / "actors").to_pandas()
    vis = actors[actors["visible_pixels"] > 0]
    assert len(vis) > 0
    assert vis["visible_fraction"].between(0, 1).all()
    assert actors["truncation"].dropna().between(0, 1).all()
    # ego poses in the file are the scenario's
    T = np.array(frames["T_world_ego"].iloc[-1]).reshape(4, 4)
    assert np.isfinite(T).all() and np.allclose(T[3], [0, 0, 0, 1])
