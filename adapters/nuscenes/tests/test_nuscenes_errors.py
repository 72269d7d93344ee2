"""Corrupted nuScenes inputs give one clear error naming the file; a sweep file that exists is
merged into the frame's cloud."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from nus_helpers import SCENE, VERSION, linked_copy
from p4dsim_nuscenes.lidar import load_pcd_bin
from p4dsim_nuscenes.log import NuScenesLog, record_pose

from p4dsim.errors import SourceError
from p4dsim.geometry import transform_points


@pytest.fixture
def copy_root(nus_root, tmp_path):
    return linked_copy(nus_root, tmp_path / "nus")


def _replace_link(path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def test_truncated_pcd_bin(copy_root, nus_log):
    f = copy_root / nus_log.lidar_sd[4]["filename"]
    data = f.read_bytes()
    _replace_link(f, data[: len(data) - 7])
    log = NuScenesLog(copy_root, VERSION, SCENE)
    with pytest.raises(SourceError, match=rf"{re.escape(f.name)} has \d+ bytes.*truncated"):
        log.frame(4)
    log.frame(3)  # the other keyframes still read
    _replace_link(f, b"")
    with pytest.raises(SourceError, match=re.escape(f.name)):
        load_pcd_bin(f)


def test_missing_jpeg(copy_root, nus_log):
    f = copy_root / nus_log.cam_sd[7]["filename"]
    f.unlink()
    log = NuScenesLog(copy_root, VERSION, SCENE)
    with pytest.raises(
        SourceError, match=rf"image .*{re.escape(f.name)}.*keyframe 7.*does not exist"
    ):
        log.frame(7)
    _replace_link(f, b"not a jpeg") if f.is_symlink() else f.write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match=rf"{re.escape(f.name)} cannot be decoded"):
        log.frame(7)


def test_broken_token_in_a_table(copy_root, nus_log):
    path = copy_root / VERSION / "sample_data.json"
    recs = json.loads(path.read_text())
    bad = nus_log.cam_sd[2]["token"]
    for r in recs:
        if r["token"] == bad:
            r["calibrated_sensor_token"] = "0" * 32
    path.write_text(json.dumps(recs))
    with pytest.raises(
        SourceError,
        match=rf"sample_data.json: record \d+ \(token {bad}\) field 'calibrated_sensor_token' "
        r"refers to calibrated_sensor token '0{32}'",
    ):
        NuScenesLog(copy_root, VERSION, SCENE)


def test_broken_annotation_chain_found_on_use(copy_root, nus_log, nusc):
    """A dangling 'next' of an annotation passes the devkit's load and is caught when the
    track is read."""
    path = copy_root / VERSION / "sample_annotation.json"
    recs = json.loads(path.read_text())
    ann = nus_log.samples[10]["anns"][0]
    for r in recs:
        if r["token"] == ann:
            r["next"] = "f" * 32
    path.write_text(json.dumps(recs))
    log = NuScenesLog(copy_root, VERSION, SCENE)
    with pytest.raises(SourceError, match=r"sample_annotation.json.*f{32}"):
        log.frame(10)


def test_table_not_json_and_missing_table(copy_root):
    (copy_root / VERSION / "instance.json").write_text('[{"token": "a",')
    with pytest.raises(SourceError, match=r"instance.json is not valid JSON"):
        NuScenesLog(copy_root, VERSION, SCENE)
    (copy_root / VERSION / "instance.json").unlink()
    with pytest.raises(SourceError, match=r"instance.json does not exist"):
        NuScenesLog(copy_root, VERSION, SCENE)


def test_missing_map_file(copy_root):
    shutil.rmtree(copy_root / "maps")
    with pytest.raises(SourceError, match=r"map file .*93406b464a165eaba6d9de76ca09f5da.png"):
        NuScenesLog(copy_root, VERSION, SCENE)


def test_cli_error_is_one_line_exit_2(copy_root, nus_log):
    f = copy_root / nus_log.cam_sd[0]["filename"]
    f.unlink()
    src = f"nuscenes:{copy_root}?scene={SCENE}"
    r = subprocess.run(
        [sys.executable, "-m", "p4dsim.cli", "info", src, "--frame", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert f.name in r.stderr and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_sweep_present_is_merged_at_the_camera_time(copy_root, nus_log, nusc):
    """A sweep file that exists (here: a copy of another scan under the sweep's name) joins
    the cloud, moved with its own ego pose."""
    sd = nus_log.lidar_sd[6]
    prev = nusc.get("sample_data", sd["prev"])
    dst = copy_root / prev["filename"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(copy_root / sd["filename"], dst)
    log = NuScenesLog(copy_root, VERSION, SCENE, lidar_sweeps=2)
    f = log.frame(6)
    key = nus_log.frame(6).lidar
    assert f.extras["notes"] == [] and len(f.lidar) == 2 * len(key)
    np.testing.assert_allclose(f.lidar[: len(key)], key, atol=1e-5)
    raw = load_pcd_bin(dst)
    T_el = record_pose(nusc.get("calibrated_sensor", prev["calibrated_sensor_token"]))
    T_wl = record_pose(nusc.get("ego_pose", prev["ego_pose_token"]))
    world = transform_points(T_wl @ T_el, raw)
    np.testing.assert_allclose(
        transform_points(f.T_world_ego, f.lidar[len(key) :]), world, atol=2e-3
    )
