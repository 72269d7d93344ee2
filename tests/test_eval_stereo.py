"""The stereo protocol on KITTI raw drive 0048 (image_03 is the real right view) and the
lateral-jump consistency command; skipped without the real sample data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from p4dsim.errors import ConfigError, P4DSimError
from p4dsim.eval.selection import parse_jumps
from p4dsim.eval.stereo import stereo_baseline_m
from p4dsim.source import SourceSpec

pytestmark = pytest.mark.realdata


def _drive(real_data, drive: str) -> str:
    return f"kitti-raw:{real_data / 'kitti_raw'}?date=2011_09_26&drive={drive}"


def test_stereo_loader_reads_right_image_and_baseline(real_data):
    log = SourceSpec.parse(_drive(real_data, "0048")).open()
    left, right = log.frame(0), log.stereo_frame(0)
    assert right.image.shape == left.image.shape == (375, 1242, 3)
    assert not np.array_equal(right.image, left.image)
    np.testing.assert_allclose(right.camera.K, left.camera.K)
    np.testing.assert_array_equal(right.lidar, left.lidar)
    np.testing.assert_array_equal(right.T_world_ego, left.T_world_ego)
    assert stereo_baseline_m(log, 0) == pytest.approx(0.53, abs=0.01)
    # the right camera sits to the right of the left one (camera +x), same orientation
    T = np.linalg.inv(left.camera.T_ego_camera) @ right.camera.T_ego_camera
    np.testing.assert_allclose(T[:3, :3], np.eye(3), atol=1e-9)
    assert T[0, 3] == pytest.approx(0.53, abs=0.01) and abs(T[1, 3]) < 0.01
    # a drive without image_03 says so
    no_right = SourceSpec.parse(_drive(real_data, "0052")).open()
    with pytest.raises(P4DSimError, match="image_03"):
        no_right.stereo_frame(0)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "p4dsim.cli", "eval", *args, "-q", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_eval_stereo_cli(real_data, tmp_path):
    out = tmp_path / "st"
    r = _cli(
        "stereo",
        "--source",
        _drive(real_data, "0048"),
        "--frames",
        "0",
        "--resolution",
        "160x48",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "| stereo | 0 | p4dsim |" in r.stdout and "per region" in r.stdout
    data = json.loads((out / "eval.json").read_text())
    assert {s["method"] for s in data["samples"]} == {"p4dsim", "copy", "lidar_warp"}
    assert data["meta"]["baseline_m"] == pytest.approx(0.53, abs=0.01)
    s = data["samples"][0]
    assert set(s["regions"]) == {"lidar", "no_depth", "vehicle", "synthesised", "sky"}
    assert sum(x["share"] for x in s["regions"].values()) == pytest.approx(1.0)
    assert (out / "eval.png").read_bytes()[:4] == b"\x89PNG"
    bad = _cli(
        "stereo",
        "--source",
        _drive(real_data, "0052"),
        "--frames",
        "0",
        "--out",
        str(tmp_path / "b"),
    )
    assert bad.returncode == 2 and "image_03" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "b").exists()


def test_eval_consistency_cli(real_data, tmp_path):
    with pytest.raises(ConfigError, match="not a number"):
        parse_jumps("1,x")
    assert parse_jumps("1,2,-1,1") == [1.0, 2.0, -1.0]
    out = tmp_path / "cj"
    r = _cli(
        "consistency",
        "--source",
        _drive(real_data, "0052"),
        "--frames",
        "0",
        "--jumps",
        "0,2",
        "--resolution",
        "160x48",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "eval.json").read_text())
    by = {s["horizon"]: s for s in data["samples"]}
    assert set(by) == {0.0, 2.0}
    # the view the scene was built from agrees with its own static LiDAR within a few percent
    # (at 160x48 a pixel spans a wide depth range near the horizon)
    assert 0 <= by[0.0]["consistency"] < 0.1
    assert by[2.0]["consistency"] >= 0 and isinstance(by[2.0]["camera_in_vehicle"], bool)
    assert sum(r["share"] for r in by[2.0]["regions"].values()) == pytest.approx(1.0)
