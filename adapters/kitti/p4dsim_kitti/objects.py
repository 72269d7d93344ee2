"""``kitti-object``: the KITTI object benchmark layout, single unrelated frames.

``PATH/training/`` (or ``PATH`` itself) holds ``image_2/NNNNNN.png``, ``calib/NNNNNN.txt`` and optionally
``velodyne/NNNNNN.bin`` and ``label_2/NNNNNN.txt``. Frame ``i`` is the ``i``-th image id in
sorted order. Frames have identity ego poses, zero ego velocity and timestamp 0; boxes have no
velocities (None: the objects' motion is unknown); the log has no ego trajectory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.plugins import Adapter
from p4dsim.types import Frame, Log, SourceInfo
from p4dsim_kitti.calib import KittiCalib, kitti_to_p4dsim_pixels
from p4dsim_kitti.common import file_ids, load_rgb, load_velodyne, require_dir
from p4dsim_kitti.labels import label_to_box, read_label_file
from p4dsim_kitti.options import ObjectOptions

LAYOUT = (
    "training/ with image_2/NNNNNN.png, calib/NNNNNN.txt and optionally velodyne/NNNNNN.bin, "
    "label_2/NNNNNN.txt (the KITTI object benchmark layout)"
)


class KittiObjectLog(Log):
    """The frames of an object-benchmark split; ``frame_ids[i]`` is the file id of frame i."""

    dataset = "kitti-object"

    def __init__(self, root: Path, split: str = "training", front_only: bool = False):
        self.base = root / split
        if not self.base.is_dir() and (root / "image_2").is_dir():
            self.base = root  # the split folder itself (e.g. an export by the kitti exporter)
        if not self.base.is_dir():
            raise SourceError(
                f"kitti-object: folder {self.base} does not exist (expected {LAYOUT})"
            )
        self.log_id = split
        self.front_only = front_only
        self.images = file_ids(self.base / "image_2", ".png")
        if not self.images:
            raise SourceError(
                f"kitti-object: no images NNNNNN.png in {self.base / 'image_2'} (expected {LAYOUT})"
            )
        self.frame_ids = list(self.images)

    def __len__(self) -> int:
        return len(self.frame_ids)

    def ego_trajectory(self) -> None:
        return None

    def frame(self, index: int) -> Frame:
        i = self.check_index(index)
        fid = self.frame_ids[i]
        calib_path = self.base / "calib" / f"{fid:06d}.txt"
        if not calib_path.is_file():
            raise SourceError(
                f"kitti-object: calibration file {calib_path} of image {fid:06d} does not exist "
                f"(expected {LAYOUT})"
            )
        calib = KittiCalib.from_file(calib_path)
        image = load_rgb(self.images[fid])
        scan = self.base / "velodyne" / f"{fid:06d}.bin"
        lidar = load_velodyne(scan, self.front_only) if scan.is_file() else None
        label_path = self.base / "label_2" / f"{fid:06d}.txt"
        boxes, labels = [], {}
        if label_path.is_file():
            kept = [lb for lb in read_label_file(label_path) if not lb.is_dontcare]
            for k, lb in enumerate(kept):
                tid = f"{fid:06d}_{k}"
                boxes.append(label_to_box(lb, calib.T_velo_rect0, tid))
                labels[tid] = lb
        return Frame(
            image=image,
            camera=calib.camera(image.shape[1], image.shape[0]),
            lidar=lidar,
            boxes=boxes,
            T_world_ego=np.eye(4),
            ego_velocity=np.zeros(3),
            timestamp_us=0,
            source=SourceInfo(self.dataset, self.log_id, i),
            extras={
                "frame_id": fid,
                "kitti_labels": labels,
                "box2d": {t: kitti_to_p4dsim_pixels(lb.bbox) for t, lb in labels.items()},
            },
        )


class KittiObjectAdapter(Adapter):
    name = "kitti-object"
    description = "KITTI object benchmark frames (training/image_2, calib, velodyne, label_2)"
    options_model = ObjectOptions

    def open(self, path: Path | None, options: ObjectOptions) -> KittiObjectLog:
        root = require_dir(path, self.name, LAYOUT)
        return KittiObjectLog(root, options.split, options.lidar_front_only)
