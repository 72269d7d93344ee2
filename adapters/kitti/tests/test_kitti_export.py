"""kitti exporter: a native dataset written here -> KITTI layout -> kitti-object reader."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from p4dsim_kitti.export import KittiExporter
from p4dsim_kitti.objects import KittiObjectAdapter

from p4dsim.errors import SourceError
from p4dsim.geometry import inv_pose, make_pose, pose_from_xyz_yaw, rot_z
from p4dsim.io.codecs import encode_depth, encode_rgb
from p4dsim.io.dataset import DatasetWriter
from p4dsim.plugins import validate_options

W, H = 160, 96
R_EGO_CV = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
#: camera shifted 1 m left of the ego and yawed 3 degrees
T_EGO_CAM = make_pose(rot_z(np.radians(3.0)) @ R_EGO_CV, [1.5, 1.0, 1.6])


def _flat(a) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def _write_dataset(path, n_frames=3):
    """Frames of an ego driving forward with a camera shifted 1 m left and yawed 3 degrees;
    two actors with known world boxes."""
    K = np.array([[120.0, 0, W / 2], [0, 120.0, H / 2], [0, 0, 1]])
    actors = [
        ("7", "vehicle", np.array([14.0, 2.0, 0.75]), np.array([4.2, 1.8, 1.5]), 0.4),
        ("9", "pedestrian", np.array([10.0, -1.5, 0.9]), np.array([0.6, 0.6, 1.8]), -2.0),
    ]
    rng = np.random.default_rng(0)
    writer = DatasetWriter(path)
    truth = []
    for k in range(n_frames):
        T_we = pose_from_xyz_yaw(np.array([1.0 * k, 0.1 * k, 0.0]), 0.05 * k)
        T_wc = T_we @ T_EGO_CAM
        depth = rng.uniform(1, 80, (H, W)).astype(np.float32)
        depth[:10] = np.inf
        depth[-5:] = 0.0
        frame = {
            "run_id": "r",
            "variant_id": "base",
            "frame_index": k,
            "timestamp_us": k * 100_000,
            "t_s": 0.1 * k,
            "width": W,
            "height": H,
            "K": _flat(K),
            "T_world_camera": _flat(T_wc),
            "T_world_ego": _flat(T_we),
            "rgb": encode_rgb(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)),
            "rgb_format": "png",
            "depth": encode_depth(depth, "float16"),
            "depth_format": "float16",
            "coverage": 1.0,
        }
        rows = []
        for tid, label, c, size, yaw in actors:
            rows.append(
                {
                    "run_id": "r",
                    "variant_id": "base",
                    "frame_index": k,
                    "track_id": tid,
                    "label": label,
                    "center_world": _flat(c),
                    "yaw_world": yaw,
                    "size": _flat(size),
                    "box2d": [20.0, 30.0, 60.5, 70.0],
                    "visible_pixels": 900,
                    "visible_fraction": 0.5,
                    "truncation": 0.0,
                }
            )
        writer.add(frame, rows)
        truth.append((T_we, depth, actors))
    writer.commit({"runs": [{"run_id": "r", "variant_id": "base", "frames": n_frames}]})
    return truth


def test_export_then_read_back(tmp_path):
    truth = _write_dataset(tmp_path / "ds")
    summary = KittiExporter().export(tmp_path / "ds", tmp_path / "kitti")
    assert (summary.frames, summary.objects) == (3, 6)
    out = tmp_path / "kitti"
    for sub in ("image_2", "label_2", "calib", "depth"):
        assert len(list((out / sub).iterdir())) == 3
    a = KittiObjectAdapter()
    log = a.open(out, validate_options(a, {}, "t"))
    assert len(log) == 3
    for k, (T_we, depth, actors) in enumerate(truth):
        f = log.frame(k)
        assert f.image.shape == (H, W, 3)
        types = [lb.type for lb in f.extras["kitti_labels"].values()]
        assert types == ["Car", "Pedestrian"]
        for box, (_, label, c, size, yaw) in zip(f.boxes, actors, strict=True):
            # boxes come back in the dataset's ego frame
            T_eb = inv_pose(T_we) @ pose_from_xyz_yaw(c, yaw)
            assert box.label == label
            np.testing.assert_allclose(box.center, T_eb[:3, 3], atol=0.01)
            np.testing.assert_allclose(box.size, size, atol=0.01)
            dyaw = np.angle(np.exp(1j * (box.yaw - np.arctan2(T_eb[1, 0], T_eb[0, 0]))))
            assert abs(np.degrees(dyaw)) < 0.5
        np.testing.assert_allclose(
            list(f.extras["box2d"].values())[0], [20.0, 30.0, 60.5, 70.0], atol=1e-6
        )
        assert all(lb.occluded == 1 for lb in f.extras["kitti_labels"].values())
        d16 = cv2.imread(str(out / "depth" / f"{k:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert d16.dtype == np.uint16 and d16.shape == (H, W)
        assert np.all(d16[:10] == 0) and np.all(d16[-5:] == 0)
        ref = depth[10:-5].astype(np.float16).astype(np.float64)
        np.testing.assert_allclose(d16[10:-5] / 256.0, ref, atol=1 / 512 + 1e-9)
    # the camera read back is the rendered one (K in p4dsim's convention)
    cam = log.frame(1).camera
    np.testing.assert_allclose(cam.K, [[120, 0, W / 2], [0, 120, H / 2], [0, 0, 1]], atol=1e-9)
    np.testing.assert_allclose(cam.T_ego_camera, T_EGO_CAM, atol=1e-9)
    assert (out / "mapping.csv").read_text().splitlines()[1] == "000000,r,base,0"


def test_export_refuses_non_dataset(tmp_path):
    with pytest.raises(SourceError, match="manifest.json"):
        KittiExporter().export(tmp_path, tmp_path / "out")
