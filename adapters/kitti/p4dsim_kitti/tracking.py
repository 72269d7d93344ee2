"""``kitti-tracking``: the KITTI tracking benchmark layout.

``PATH/training/`` holds ``image_02/SSSS/NNNNNN.png``, ``velodyne/SSSS/NNNNNN.bin``,
``label_02/SSSS.txt`` (rows ``frame track_id type ...``), ``calib/SSSS.txt`` and
``oxts/SSSS.txt`` (one packet per frame). Only the calibration is required: without velodyne
frames have no LiDAR, without oxts the log has no ego trajectory (identity poses, velocities
relative to the ego), without labels no boxes. Frames are spaced 0.1 s.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.plugins import Adapter
from p4dsim.types import Box3D, Frame, Log, SourceInfo, Track
from p4dsim_kitti.calib import KittiCalib, kitti_to_p4dsim_pixels
from p4dsim_kitti.common import FRAME_PERIOD_US, file_ids, load_rgb, load_velodyne, require_dir
from p4dsim_kitti.labels import KittiLabel, label_to_box, read_label_file
from p4dsim_kitti.options import TrackingOptions
from p4dsim_kitti.oxts import ego_velocity_velo, oxts_poses, read_oxts_file
from p4dsim_kitti.tracks import build_tracks

LAYOUT = (
    "training/ with calib/SSSS.txt and optionally image_02/SSSS/, velodyne/SSSS/, "
    "label_02/SSSS.txt, oxts/SSSS.txt (the KITTI tracking benchmark layout)"
)


class KittiTrackingLog(Log):
    """One tracking sequence. Ego frame = velodyne frame; world frame = the oxts frame
    (east-north-up, origin at the first packet) of the velodyne, or the ego frame itself when
    the sequence has no oxts."""

    dataset = "kitti-tracking"

    def __init__(
        self, root: Path, sequence: str, split: str = "training", front_only: bool = False
    ):
        base = root / split
        if not base.is_dir():
            raise SourceError(f"kitti-tracking: folder {base} does not exist (expected {LAYOUT})")
        self.root = root
        self.sequence = sequence
        self.log_id = sequence
        self.front_only = front_only
        calib_path = base / "calib" / f"{sequence}.txt"
        if not calib_path.is_file():
            have = sorted(p.stem for p in (base / "calib").glob("*.txt"))
            raise SourceError(
                f"kitti-tracking: calibration file {calib_path} does not exist (sequences with "
                f"calibration: {', '.join(have) or 'none'}; expected {LAYOUT})"
            )
        self.calib = KittiCalib.from_file(calib_path)
        self.images = file_ids(base / "image_02" / sequence, ".png")
        self.scans = file_ids(base / "velodyne" / sequence, ".bin")
        label_path = base / "label_02" / f"{sequence}.txt"
        self.labels: list[KittiLabel] = (
            read_label_file(label_path, tracking=True) if label_path.is_file() else []
        )
        oxts_path = base / "oxts" / f"{sequence}.txt"
        self.packets = read_oxts_file(oxts_path) if oxts_path.is_file() else None
        counts = [len(self.packets) if self.packets is not None else 0]
        counts += [max(d) + 1 for d in (self.images, self.scans) if d]
        counts += [max(lb.frame for lb in self.labels) + 1] if self.labels else []
        self.n_frames = max(counts)
        if self.n_frames == 0:
            raise SourceError(
                f"kitti-tracking: sequence {sequence} under {base} has no images, scans, "
                f"labels or oxts (expected {LAYOUT})"
            )
        if self.packets is not None and len(self.packets) < self.n_frames:
            raise SourceError(
                f"kitti-tracking: {oxts_path} has {len(self.packets)} packets but the "
                f"sequence has {self.n_frames} frames (one packet per frame expected)"
            )
        self.timestamps_us = np.arange(self.n_frames, dtype=np.int64) * FRAME_PERIOD_US

    def __len__(self) -> int:
        return self.n_frames

    @cached_property
    def T_world_ego(self) -> np.ndarray:
        """[F, 4, 4] velodyne poses in the world frame (identity without oxts)."""
        if self.packets is None or self.calib.T_velo_imu is None:
            return np.tile(np.eye(4), (self.n_frames, 1, 1))
        T_w_imu = oxts_poses(self.packets[: self.n_frames])
        return T_w_imu @ np.linalg.inv(self.calib.T_velo_imu)

    @cached_property
    def _motion(self) -> tuple[dict[str, Track], dict[int, list[Box3D]], dict[int, dict]]:
        T_vr = self.calib.T_velo_rect0
        boxes: dict[int, list[Box3D]] = {}
        raw: dict[int, dict] = {}
        for lb in self.labels:
            if lb.is_dontcare:
                continue
            tid = str(lb.track_id)
            boxes.setdefault(lb.frame, []).append(label_to_box(lb, T_vr, tid))
            raw.setdefault(lb.frame, {})[tid] = lb
        tracks, moving = build_tracks(boxes, self.timestamps_us, self.T_world_ego)
        return tracks, moving, raw

    def tracks(self) -> dict[str, Track]:
        return self._motion[0]

    def ego_trajectory(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.packets is None or self.calib.T_velo_imu is None:
            return None
        return self.timestamps_us.copy(), self.T_world_ego.copy()

    def frame(self, index: int) -> Frame:
        i = self.check_index(index)
        if i not in self.images:
            raise SourceError(
                f"kitti-tracking: sequence {self.sequence} has no image for frame {i} "
                f"(expected {self.root}/training/image_02/{self.sequence}/{i:06d}.png; frames "
                f"with images: {', '.join(map(str, list(self.images)[:20])) or 'none'})"
            )
        image = load_rgb(self.images[i])
        lidar = load_velodyne(self.scans[i], self.front_only) if i in self.scans else None
        if self.packets is not None and self.calib.T_velo_imu is not None:
            ego_v = ego_velocity_velo(self.packets[i : i + 1], self.calib.T_velo_imu)[0]
        else:
            ego_v = np.zeros(3)
        labels = self._motion[2].get(i, {})
        return Frame(
            image=image,
            camera=self.calib.camera(image.shape[1], image.shape[0]),
            lidar=lidar,
            boxes=list(self._motion[1].get(i, [])),
            T_world_ego=self.T_world_ego[i].copy(),
            ego_velocity=ego_v,
            timestamp_us=int(self.timestamps_us[i]),
            source=SourceInfo(self.dataset, self.log_id, i),
            extras={
                "kitti_labels": labels,
                "box2d": {t: kitti_to_p4dsim_pixels(lb.bbox) for t, lb in labels.items()},
            },
        )


class KittiTrackingAdapter(Adapter):
    name = "kitti-tracking"
    description = (
        "KITTI tracking benchmark sequence (training/label_02/SSSS.txt, image_02/SSSS/ ...)"
    )
    options_model = TrackingOptions

    def open(self, path: Path | None, options: TrackingOptions) -> KittiTrackingLog:
        root = require_dir(path, self.name, LAYOUT)
        return KittiTrackingLog(root, options.sequence, options.split, options.lidar_front_only)
