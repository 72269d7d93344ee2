"""kitti-object on the three sample frames."""

from __future__ import annotations

import numpy as np
import pytest
from p4dsim_kitti.objects import KittiObjectAdapter

from p4dsim.errors import SourceError
from p4dsim.geometry import inv_pose, project, transform_points
from p4dsim.plugins import validate_options


def _open(path):
    a = KittiObjectAdapter()
    return a.open(path, validate_options(a, {}, "t"))


def test_three_frames_load_with_boxes(kitti_object_dir):
    log = _open(kitti_object_dir)
    assert len(log) == 3 and log.ego_trajectory() is None
    counts = []
    for i in range(3):
        f = log.frame(i)
        assert f.image.shape == (f.camera.height, f.camera.width, 3)
        assert 1200 < f.camera.width < 1250 and 360 < f.camera.height < 380
        assert f.lidar is not None and f.lidar.shape[1] == 3
        np.testing.assert_array_equal(f.T_world_ego, np.eye(4))
        counts.append(len(f.boxes))
        assert all(b.velocity is None and b.acceleration is None for b in f.boxes)
        assert set(f.extras["box2d"]) == {b.track_id for b in f.boxes}
    # 000000: 1 pedestrian; 000001: truck, car, cyclist (4 DontCare skipped); 000002: misc, car
    assert counts == [1, 3, 2]
    labels = [b.label for b in log.frame(1).boxes]
    assert labels == ["vehicle", "vehicle", "cyclist"]


def test_projected_corners_enclose_2d_boxes(kitti_object_dir):
    """Projected 3D box corners enclose the label's 2D box within 5 px (clipped to the image)."""
    log = _open(kitti_object_dir)
    n = 0
    for i in range(len(log)):
        f = log.frame(i)
        cam = f.camera
        T_cam_ego = inv_pose(cam.T_ego_camera)
        for b in f.boxes:
            uv, z = project(cam.K, transform_points(T_cam_ego, b.corners()))
            assert np.all(z > 0)
            lo = np.clip(uv.min(axis=0), 0, [cam.width, cam.height])
            hi = np.clip(uv.max(axis=0), 0, [cam.width, cam.height])
            x0, y0, x1, y1 = f.extras["box2d"][b.track_id]
            assert lo[0] <= x0 + 5 and lo[1] <= y0 + 5, (b, lo, (x0, y0))
            assert hi[0] >= x1 - 5 and hi[1] >= y1 - 5, (b, hi, (x1, y1))
            # and it is the same object: the 2D boxes overlap well
            ix = max(0.0, min(hi[0], x1) - max(lo[0], x0))
            iy = max(0.0, min(hi[1], y1) - max(lo[1], y0))
            union = (hi - lo).prod() + (x1 - x0) * (y1 - y0) - ix * iy
            assert ix * iy / union > 0.5
            n += 1
    assert n == 6


def test_missing_parts(kitti_object_dir, tmp_path):
    import shutil

    root = tmp_path / "obj"
    shutil.copytree(kitti_object_dir, root)
    (root / "training" / "velodyne" / "000001.bin").unlink()
    (root / "training" / "label_2" / "000001.txt").unlink()
    (root / "training" / "calib" / "000002.txt").unlink()
    log = _open(root)
    f = log.frame(1)
    assert f.lidar is None and f.boxes == []
    with pytest.raises(SourceError, match=r"calib/000002.txt"):
        log.frame(2)
    with pytest.raises(SourceError, match="image_2"):
        _open(tmp_path)
