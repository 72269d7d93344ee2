"""``kitti-raw``: KITTI raw drives through ``pykitti.raw``.

``PATH/YYYY_MM_DD/`` holds ``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``,
``calib_imu_to_velo.txt`` and ``YYYY_MM_DD_drive_NNNN_sync/`` with ``image_02/data/*.png``,
optionally ``velodyne_points/data/*.bin``, ``oxts/data/*.txt`` + ``oxts/timestamps.txt`` and
``tracklet_labels.xml``. Frames are the ``image_02`` images; the camera is rectified camera 2;
the ego frame is the velodyne frame and ``T_world_ego`` is the oxts pose of the velodyne
(``T_world_imu @ inv(T_velo_imu)``, east-north-up world, origin at the first packet).
Without oxts the log has no ego trajectory (identity poses, zero ego velocity).

pykitti lists files and reads the calibration; parts the sample layouts may lack (oxts,
camera/velodyne timestamps, other cameras) are read here, tolerating their absence.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.plugins import Adapter
from p4dsim.types import Box3D, Frame, Log, SourceInfo, Track
from p4dsim_kitti.calib import KittiCalib
from p4dsim_kitti.common import (
    FRAME_PERIOD_US,
    load_rgb,
    load_velodyne,
    read_timestamps_us,
    require_dir,
)
from p4dsim_kitti.options import RawOptions
from p4dsim_kitti.oxts import ego_velocity_velo, oxts_poses, parse_oxts_lines
from p4dsim_kitti.tracklets import read_tracklets
from p4dsim_kitti.tracks import build_tracks

LAYOUT = (
    "YYYY_MM_DD/ with calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt and "
    "YYYY_MM_DD_drive_NNNN_sync/image_02/data/*.png (the KITTI raw layout)"
)
CALIB_FILES = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt")


def _open_pykitti(base: Path, date: str, drive: str):
    """A ``pykitti.raw`` that reads file lists and calibration only (its timestamp and oxts
    loaders need files the drive may lack; those are read by :class:`KittiRawLog`)."""
    import pykitti

    class _Raw(pykitti.raw):
        def _load_timestamps(self) -> None:
            self.timestamps = []

        def _load_oxts(self) -> None:
            self.oxts = []

    return _Raw(str(base), date, drive)


class KittiRawLog(Log):
    """One raw drive (``YYYY_MM_DD_drive_NNNN_sync``)."""

    dataset = "kitti-raw"

    def __init__(self, root: Path, date: str, drive: str, front_only: bool = False):
        day = root / date
        if not day.is_dir():
            have = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise SourceError(
                f"kitti-raw: folder {day} does not exist (dates under {root}: "
                f"{', '.join(have) or 'none'}; expected {LAYOUT})"
            )
        name = f"{date}_drive_{drive}_sync"
        self.drive_dir = day / name
        if not self.drive_dir.is_dir():
            have = sorted(p.name for p in day.glob(f"{date}_drive_*_sync"))
            raise SourceError(
                f"kitti-raw: drive folder {self.drive_dir} does not exist (drives: "
                f"{', '.join(have) or 'none'}; expected {LAYOUT})"
            )
        for f in CALIB_FILES:
            if not (day / f).is_file():
                raise SourceError(
                    f"kitti-raw: calibration file {day / f} does not exist (expected {LAYOUT})"
                )
        self.log_id = name
        self.front_only = front_only
        try:
            ds = _open_pykitti(root, date, drive)
        except (KeyError, ValueError) as exc:
            raise SourceError(f"kitti-raw: bad calibration under {day}: {exc!r}") from None
        c = ds.calib
        self.calib = KittiCalib(
            P2=np.asarray(c.P_rect_20, dtype=np.float64),
            R0_rect=np.asarray(c.R_rect_00, dtype=np.float64)[:3, :3],
            T_cam0_velo=np.asarray(c.T_cam0_velo_unrect, dtype=np.float64),
            T_velo_imu=np.asarray(c.T_velo_imu, dtype=np.float64),
        )
        self.images = [Path(p) for p in ds.cam2_files]
        if not self.images:
            raise SourceError(
                f"kitti-raw: no images in {self.drive_dir}/image_02/data (expected {LAYOUT})"
            )
        scans = {Path(p).stem: Path(p) for p in ds.velo_files}
        self.scans = [scans.get(p.stem) for p in self.images]
        n = len(self.images)
        self.packets = None
        oxts_files = [Path(p) for p in ds.oxts_files]
        if oxts_files:
            by_stem = {p.stem: p for p in oxts_files}
            missing = [p.stem for p in self.images if p.stem not in by_stem]
            if missing:
                raise SourceError(
                    f"kitti-raw: oxts packets missing for frames {', '.join(missing[:5])} in "
                    f"{self.drive_dir / 'oxts' / 'data'} (one NNNNNNNNNN.txt per image expected)"
                )
            self.packets = np.concatenate(
                [
                    parse_oxts_lines(
                        by_stem[p.stem].read_text().splitlines(), str(by_stem[p.stem])
                    )[:1]
                    for p in self.images
                ]
            )
        self.timestamps_us = self._timestamps(n)

    def _timestamps(self, n: int) -> np.ndarray:
        for sub in ("oxts", "image_02", "velodyne_points"):
            f = self.drive_dir / sub / "timestamps.txt"
            if f.is_file():
                ts = read_timestamps_us(f)
                idx = [int(p.stem) for p in self.images]
                if len(ts) > max(idx):
                    return ts[idx]
        # Documented choice: without any timestamps.txt the frames are taken as 10 Hz
        # (KITTI's capture rate), and a warning says so.
        import logging

        logging.getLogger("p4dsim").warning(
            "kitti-raw: no timestamps.txt in %s/{oxts,image_02,velodyne_points} covers these "
            "frames; assuming KITTI's 10 Hz (frame N at N × 0.1 s)",
            self.drive_dir,
        )
        return np.array([int(p.stem) for p in self.images], dtype=np.int64) * FRAME_PERIOD_US

    def __len__(self) -> int:
        return len(self.images)

    @cached_property
    def T_world_ego(self) -> np.ndarray:
        """[F, 4, 4] velodyne poses (identity without oxts)."""
        if self.packets is None:
            return np.tile(np.eye(4), (len(self), 1, 1))
        return oxts_poses(self.packets) @ np.linalg.inv(self.calib.T_velo_imu)

    @cached_property
    def _motion(self) -> tuple[dict[str, Track], dict[int, list[Box3D]], dict[str, str]]:
        xml = self.drive_dir / "tracklet_labels.xml"
        if not xml.is_file():
            return {}, {}, {}
        boxes, types = read_tracklets(xml)
        index_of = {int(p.stem): i for i, p in enumerate(self.images)}
        boxes = {index_of[f]: b for f, b in boxes.items() if f in index_of}
        tracks, moving = build_tracks(boxes, self.timestamps_us, self.T_world_ego)
        return tracks, moving, types

    def tracks(self) -> dict[str, Track]:
        return self._motion[0]

    def ego_trajectory(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.packets is None:
            return None
        return self.timestamps_us.copy(), self.T_world_ego.copy()

    def frame(self, index: int) -> Frame:
        i = self.check_index(index)
        image = load_rgb(self.images[i])
        scan = self.scans[i]
        if self.packets is not None:
            ego_v = ego_velocity_velo(self.packets[i : i + 1], self.calib.T_velo_imu)[0]
        else:
            ego_v = np.zeros(3)
        return Frame(
            image=image,
            camera=self.calib.camera(image.shape[1], image.shape[0]),
            lidar=None if scan is None else load_velodyne(scan, self.front_only),
            boxes=list(self._motion[1].get(i, [])),
            T_world_ego=self.T_world_ego[i].copy(),
            ego_velocity=ego_v,
            timestamp_us=int(self.timestamps_us[i]),
            source=SourceInfo(self.dataset, self.log_id, i),
            extras={"kitti_types": dict(self._motion[2])},
        )


class KittiRawAdapter(Adapter):
    name = "kitti-raw"
    description = "KITTI raw drive (YYYY_MM_DD/YYYY_MM_DD_drive_NNNN_sync) via pykitti"
    options_model = RawOptions

    def open(self, path: Path | None, options: RawOptions) -> KittiRawLog:
        root = require_dir(path, self.name, LAYOUT)
        return KittiRawLog(root, options.date, options.drive, options.lidar_front_only)
