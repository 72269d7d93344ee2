"""File helpers shared by the KITTI readers: images, velodyne scans, timestamps, file ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError

#: nominal KITTI frame period (10 Hz), microseconds
FRAME_PERIOD_US = 100_000


def load_rgb(path: Path) -> np.ndarray:
    """uint8 [H, W, 3] RGB image of a PNG/JPEG file."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"KITTI image {path} does not exist")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SourceError(f"KITTI image {path} cannot be decoded (expected a PNG image)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file."""
    img = load_rgb(path)
    return int(img.shape[1]), int(img.shape[0])


def load_velodyne(path: Path, front_only: bool = False) -> np.ndarray:
    """float32 [N, 3] points (x, y, z) of a KITTI ``.bin`` scan in the velodyne frame, metres;
    reflectance dropped; ``front_only`` keeps points with x > 0."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size == 0:
        raise SourceError(
            f"velodyne scan {path} is empty (0 points); restore the scan, or remove the file "
            "to use the frame without LiDAR"
        )
    if raw.size % 4:
        raise SourceError(
            f"velodyne scan {path} has {raw.size} float32 values, not a multiple of 4 "
            "(expected x, y, z, reflectance per point)"
        )
    pts = np.ascontiguousarray(raw.reshape(-1, 4)[:, :3])
    if front_only:
        pts = pts[pts[:, 0] > 0]
    return pts


def read_timestamps_us(path: Path) -> np.ndarray:
    """int64 [N] microseconds since the epoch from a KITTI ``timestamps.txt``
    (``YYYY-MM-DD HH:MM:SS.fffffffff`` per line)."""
    path = Path(path)
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            ns = np.datetime64(line.replace(" ", "T"), "ns")
        except ValueError:
            raise SourceError(
                f"{path}:{lineno}: bad timestamp '{line}' (expected YYYY-MM-DD HH:MM:SS.fff)"
            ) from None
        out.append(ns.astype(np.int64) // 1000)
    return np.asarray(out, dtype=np.int64)


def file_ids(folder: Path, suffix: str) -> dict[int, Path]:
    """Files ``NNNNNN<suffix>`` of ``folder`` keyed by their integer id (empty when absent)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    out = {}
    for p in folder.iterdir():
        if p.suffix == suffix and p.stem.isdigit():
            out[int(p.stem)] = p
    return dict(sorted(out.items()))


def require_dir(path: Path | None, adapter: str, layout: str) -> Path:
    """``path`` as an existing folder, else SourceError describing the expected ``layout``."""
    if path is None:
        raise SourceError(f"adapter '{adapter}' needs a path to a folder holding {layout}")
    path = Path(path)
    if not path.is_dir():
        raise SourceError(
            f"{adapter}: folder {path} does not exist (expected a folder holding {layout})"
        )
    return path
