"""The nuscenes exporter: a replay of scene-0916 keyframe 10 with a 1 m lateral shift,
exported in the nuScenes layout, loads in the devkit, whose box projection matches the
dataset's rendered 2D boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from nus_helpers import REPO_ROOT
from p4dsim_nuscenes.export import (
    VERSION as OUT_VERSION,
)
from p4dsim_nuscenes.export import (
    matrix_to_quat,
    visibility_token,
)
from p4dsim_nuscenes.log import quat_to_matrix

from p4dsim.geometry import box_corners, inv_pose, make_pose, project, rot_z, transform_points
from p4dsim.io.dataset import read_table
from p4dsim.io.export import export_dataset
from p4dsim.labels import box_iou
from p4dsim.replay import replay
from p4dsim.scenario.load import parse_scenario


@pytest.fixture(scope="module")
def shifted(nus_root, tmp_path_factory):
    """(dataset folder, nuScenes export folder) of scenarios/nuscenes_0916_shift.yaml (1 m
    left of keyframe 10) on the sample data, at 400 px wide for 0.5 s."""
    path = REPO_ROOT / "scenarios" / "nuscenes_0916_shift.yaml"
    data = yaml.safe_load(path.read_text())
    data["source"].update(path=str(nus_root), width=400)
    data["duration_s"] = 0.5
    data["render"] = {"device": "cpu"}
    out = tmp_path_factory.mktemp("nus") / "shift"
    replay(parse_scenario(data, str(path)), out)
    return out, out / "exports" / "nuscenes"


def _devkit_box2d(corners_cam: np.ndarray, K: np.ndarray, w: int, h: int):
    """[x0, y0, x1, y1] of the devkit box's projected corners (p4dsim pixels), clipped to
    the image; None when a corner is behind the camera."""
    from nuscenes.utils.geometry_utils import view_points

    if np.any(corners_cam[2] <= 0.1):
        return None
    uv = view_points(corners_cam, K, normalize=True)[:2] + 0.5
    x0, y0 = np.clip(uv.min(axis=1), 0, [w, h])
    x1, y1 = np.clip(uv.max(axis=1), 0, [w, h])
    return [float(x0), float(y0), float(x1), float(y1)]


def test_export_loads_in_devkit_and_boxes_match(shifted):
    """The devkit loads the export; its projection of every annotation is the dataset's box
    projected with the dataset's camera (to 0.01 px); the rendered 2D box of every actor more
    than half visible lies inside the devkit's box (≥ 90 % of its area). The IoU of the two is
    printed: the rendered box bounds the visible pixels, the devkit's the whole cuboid."""
    import cv2
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.geometry_utils import BoxVisibility, view_points

    ds, out = shifted
    frames = sorted(read_table(ds, "frames").to_pylist(), key=lambda r: r["frame_index"])
    actors = read_table(ds, "actors").to_pylist()
    nusc = NuScenes(version=OUT_VERSION, dataroot=str(out), verbose=False)
    assert len(nusc.scene) == 1 and len(nusc.sample) == len(frames) >= 2
    assert len(nusc.sample_annotation) == len(actors)
    assert nusc.log[0]["date_captured"] == "2018-10-08"  # the source log's day
    sample = nusc.get("sample", nusc.scene[0]["first_sample_token"])
    ious, n_checked = [], 0
    for fr in frames:
        fi = fr["frame_index"]
        sd = nusc.get("sample_data", sample["data"]["CAM_FRONT"])
        assert sd["width"] == fr["width"] == 400 and sd["height"] == fr["height"] == 225
        path, boxes, K = nusc.get_sample_data(sd["token"], box_vis_level=BoxVisibility.NONE)
        assert cv2.imread(path).shape == (225, 400, 3)
        ep = nusc.get("ego_pose", sd["ego_pose_token"])
        T_we = make_pose(quat_to_matrix(ep["rotation"]), ep["translation"])
        np.testing.assert_allclose(T_we.ravel(), fr["T_world_ego"], atol=1e-9)
        K_ds = np.reshape(fr["K"], (3, 3))
        np.testing.assert_allclose(K + [[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]], K_ds, atol=1e-9)
        T_cw = inv_pose(np.reshape(fr["T_world_camera"], (4, 4)))
        rows = [a for a in actors if a["frame_index"] == fi]
        assert len(boxes) == len(rows)
        for b in boxes:
            ann = nusc.get("sample_annotation", b.token)
            a = next(r for r in rows if np.allclose(r["center_world"], ann["translation"]))
            assert ann["visibility_token"] == visibility_token(a["visible_fraction"])
            corners_w = box_corners(np.asarray(a["center_world"]), a["size"], a["yaw_world"])
            pc = transform_points(T_cw, corners_w)
            if np.all(pc[:, 2] > 0.1):
                uv, _ = project(K_ds, pc)
                ref_uv = view_points(b.corners(), K, normalize=True)[:2].T + 0.5
                d = np.linalg.norm(uv[:, None] - ref_uv[None], axis=2).min(axis=1)
                assert d.max() < 0.01
            if a["box2d"] is None or (a["visible_fraction"] or 0) <= 0.5:
                continue
            ref = _devkit_box2d(b.corners(), K, sd["width"], sd["height"])
            # Splats reach past the geometric silhouette by about their footprint: the devkit's
            # box grown by 2 px (a 400 px wide render) still holds the rendered visible pixels.
            ref = [ref[0] - 2.0, ref[1] - 2.0, ref[2] + 2.0, ref[3] + 2.0]
            q = a["box2d"]
            iw = max(0.0, min(ref[2], q[2]) - max(ref[0], q[0]))
            ih = max(0.0, min(ref[3], q[3]) - max(ref[1], q[1]))
            assert iw * ih >= 0.9 * (q[2] - q[0]) * (q[3] - q[1]), (fi, a["track_id"], ref, q)
            ious.append(box_iou(ref, q))
            n_checked += 1
        sample = nusc.get("sample", sample["next"]) if sample["next"] else sample
    print(
        f"{n_checked} boxes more than half visible; IoU rendered vs devkit box: "
        f"median {np.median(ious):.2f}, min {np.min(ious):.2f}, max {np.max(ious):.2f}"
    )
    assert n_checked >= 5, n_checked


def test_export_keeps_source_categories_and_tracks(shifted, nusc):
    ds, out = shifted
    tables = {
        t: json.loads((out / OUT_VERSION / f"{t}.json").read_text())
        for t in ("instance", "category", "sample_annotation", "scene")
    }
    cats = {c["token"]: c["name"] for c in tables["category"]}
    assert len(cats) == 23
    actors = read_table(ds, "actors").to_pylist()
    track_ids = {a["track_id"] for a in actors}
    assert len(tables["instance"]) == len(track_ids)
    # the actors' source categories (their track ids are the source instance tokens)
    src = {i["token"]: nusc.get("category", i["category_token"])["name"] for i in nusc.instance}
    exported = sorted(cats[i["category_token"]] for i in tables["instance"])
    assert exported == sorted(src[t] for t in track_ids)
    assert any(c.startswith("vehicle.bus") for c in exported)
    # each instance's annotations form a chain over consecutive samples
    anns = {a["token"]: a for a in tables["sample_annotation"]}
    for inst in tables["instance"]:
        n, tok = 0, inst["first_annotation_token"]
        while tok:
            n, tok = n + 1, anns[tok]["next"]
        assert n == inst["nbr_annotations"]


def test_quaternions_and_visibility_bins():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        R = quat_to_matrix(q)
        np.testing.assert_allclose(quat_to_matrix(matrix_to_quat(R)), R, atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(matrix_to_quat(rot_z(2.5))), rot_z(2.5), atol=1e-12)
    assert [visibility_token(f) for f in (None, 0.1, 0.4, 0.59, 0.6, 0.8, 1.0)] == list("1122344")


def test_export_cli_and_rerun_is_identical(shifted, tmp_path):
    import subprocess
    import sys

    ds, first = shifted
    out = tmp_path / "again"
    r = subprocess.run(
        [sys.executable, "-m", "p4dsim.cli", "export", str(ds), str(out), "--format", "nuscenes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    for t in ("sample", "sample_annotation", "ego_pose"):
        a = (first / OUT_VERSION / f"{t}.json").read_text()
        assert (out / OUT_VERSION / f"{t}.json").read_text() == a
    export_dataset(ds, "nuscenes", out)  # an earlier export is replaced


def test_toytown_export_loads_with_generic_categories(tmp_path):
    """Without a nuScenes source (toytown, two variants), each variant is a scene and the
    categories follow the labels."""
    pytest.importorskip("nuscenes.nuscenes", reason="nuscenes-devkit not installed")
    from nuscenes.nuscenes import NuScenes

    scenario = {
        "source": {"adapter": "toytown", "width": 96, "height": 32},
        "duration_s": 0.2,
        "fps": 10,
        "ego": {"perturbations": [{"type": "lateral_offset", "offset_m": 0.5, "ramp_s": 0.0}]},
        "variants": {"grid": {"ego.perturbations.0.offset_m": [0.0, 1.0]}},
        "render": {"device": "cpu"},
    }
    ds = tmp_path / "ds"
    replay(parse_scenario(scenario, "test"), ds)
    summary = export_dataset(ds, "nuscenes", tmp_path / "out")
    nusc = NuScenes(version=OUT_VERSION, dataroot=str(tmp_path / "out"), verbose=False)
    frames = read_table(ds, "frames").to_pylist()
    actors = read_table(ds, "actors").to_pylist()
    assert len(nusc.scene) == 2 and len(nusc.sample) == len(frames) == summary.frames
    assert len(nusc.sample_annotation) == len(actors) == summary.objects > 0
    label_cat = {"vehicle": "vehicle.car", "pedestrian": "human.pedestrian.adult"}
    for ann in nusc.sample_annotation:
        a = next(r for r in actors if np.allclose(r["center_world"], ann["translation"]))
        if a["label"] in label_cat:
            assert ann["category_name"] == label_cat[a["label"]]
    for scene in nusc.scene:
        assert scene["nbr_samples"] == len(frames) // 2
