"""Synthetic Waymo data for the plugin's tests: v1 Frame protos with range images, and
small v2 component files written with the official column names."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def real_data_dir() -> Path | None:
    """The shared real-data folder (P4DSIM_REAL_DATA or <repo root>/../shared/data)."""
    env = os.environ.get("P4DSIM_REAL_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    cand = repo.parent / "shared" / "data"
    return cand if cand.is_dir() else None


def real_v1_file() -> Path:
    d = real_data_dir()
    p = None if d is None else d / "waymo_v1" / "pvps_data_one_frame.tfrecord"
    if p is None or not p.is_file():
        pytest.skip("real Waymo v1 sample absent (set P4DSIM_REAL_DATA or provide ../shared/data)")
    return p


def real_vehicle_pose_file() -> Path:
    d = real_data_dir()
    files = [] if d is None else sorted((d / "waymo_v2" / "vehicle_pose").glob("*.parquet"))
    if not files:
        pytest.skip("real Waymo v2 vehicle_pose file absent (set P4DSIM_REAL_DATA)")
    return files[0]


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def pose(R: np.ndarray, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


class RangeScene:
    """A range image [H, W] with known returns and the ego-frame points they encode.

    Rows look along ``inclinations[::-1]`` (row 0 highest); column j along the sensor azimuth
    pi * (1 - 2 (j + 0.5) / W) - yaw(extrinsic). With ``pixel_pose`` each pixel's point is
    moved by its own vehicle pose and brought back into the frame pose's vehicle frame.
    """

    def __init__(self, H=8, W=48, uniform=False, rolling=False, seed=1):
        rng = np.random.default_rng(seed)
        self.H, self.W = H, W
        self.incl_min, self.incl_max = -0.30, 0.05
        if uniform:
            self.values = []
            rows = self.incl_min + (np.arange(H) + 0.5) / H * (self.incl_max - self.incl_min)
        else:
            rows = np.sort(rng.uniform(self.incl_min, self.incl_max, H))
            self.values = rows.tolist()
        self.row_incl = rows[::-1]
        self.extrinsic = pose(rot_z(0.2) @ rot_y(0.01), [1.4, 0.05, 2.1])
        self.frame_pose = pose(rot_z(0.7), [100.0, -50.0, 3.0])
        self.ranges = np.zeros((H, W), dtype=np.float32)
        hit = rng.random((H, W)) < 0.6
        self.ranges[hit] = rng.uniform(2.0, 60.0, hit.sum()).astype(np.float32)
        self.pose_image = None
        if rolling:
            # Per-column vehicle poses: the car moves 1 m forward and yaws 0.02 rad over a sweep.
            fr = np.linspace(0.0, 1.0, W)
            img = np.zeros((H, W, 6), dtype=np.float32)
            img[..., 0] = 0.001
            img[..., 1] = -0.002
            img[..., 2] = 0.7 + 0.02 * fr[None, :]
            base = self.frame_pose[:3, 3]
            fwd = self.frame_pose[:3, 0]
            img[..., 3:6] = base[None, None, :] + fr[None, :, None] * fwd[None, None, :]
            self.pose_image = img

    def points(self) -> np.ndarray:
        """Expected ego-frame points [N, 3] of the valid pixels in row-major order."""
        az0 = np.arctan2(self.extrinsic[1, 0], self.extrinsic[0, 0])
        out = []
        for i in range(self.H):
            for j in range(self.W):
                r = float(self.ranges[i, j])
                if r <= 0:
                    continue
                az = np.pi * (1 - 2 * (j + 0.5) / self.W) - az0
                el = self.row_incl[i]
                s = r * np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
                v = self.extrinsic[:3, :3] @ s + self.extrinsic[:3, 3]
                if self.pose_image is not None:
                    roll, pitch, yaw, x, y, z = (float(a) for a in self.pose_image[i, j])
                    P = pose(rot_z(yaw) @ rot_y(pitch) @ rot_x(roll), [x, y, z])
                    w = P[:3, :3] @ v + P[:3, 3]
                    F = self.frame_pose
                    v = F[:3, :3].T @ (w - F[:3, 3])
                out.append(v)
        return np.array(out)


def matrix_float_bytes(dataset_pb2, array: np.ndarray) -> bytes:
    m = dataset_pb2.MatrixFloat()
    m.data.extend(np.asarray(array, dtype=np.float32).reshape(-1).tolist())
    m.shape.dims.extend(list(array.shape))
    return zlib.compress(m.SerializeToString())


def make_frame(
    scene: RangeScene | None,
    timestamp_us: int = 1_000_000,
    name="synthetic_seg",
    labels=(),
    frame_pose=None,
    cam_size=(64, 48),
) -> bytes:
    """A serialized v1 Frame: FRONT camera (small JPEG), TOP LiDAR range image, labels.

    labels: iterable of (id, type, center [3], size [3], heading, speed [3], accel [3]).
    """
    from waymo_open_dataset import dataset_pb2, label_pb2

    f = dataset_pb2.Frame()
    f.context.name = name
    f.timestamp_micros = timestamp_us
    fp = frame_pose if frame_pose is not None else (scene.frame_pose if scene else np.eye(4))
    f.pose.transform.extend(fp.reshape(-1).tolist())
    w, h = cam_size
    cc = f.context.camera_calibrations.add()
    cc.name = dataset_pb2.CameraName.FRONT
    cc.intrinsic.extend([60.0, 60.0, w / 2, h / 2, 0.0, 0.0, 0.0, 0.0, 0.0])
    cc.extrinsic.transform.extend(pose(np.eye(3), [1.5, 0.0, 2.0]).reshape(-1).tolist())
    cc.width, cc.height = w, h
    im = f.images.add()
    im.name = dataset_pb2.CameraName.FRONT
    im.image = jpeg(w, h)
    im.velocity.v_x, im.velocity.v_y, im.velocity.v_z = 3.0, 4.0, 0.0
    if scene is not None:
        lc = f.context.laser_calibrations.add()
        lc.name = dataset_pb2.LaserName.TOP
        lc.beam_inclinations.extend(scene.values)
        lc.beam_inclination_min, lc.beam_inclination_max = scene.incl_min, scene.incl_max
        lc.extrinsic.transform.extend(scene.extrinsic.reshape(-1).tolist())
        laser = f.lasers.add()
        laser.name = dataset_pb2.LaserName.TOP
        ri = np.zeros((scene.H, scene.W, 4), dtype=np.float32)
        ri[..., 0] = scene.ranges
        ri[..., 1] = np.where(scene.ranges > 0, 0.5, 0.0)
        laser.ri_return1.range_image_compressed = matrix_float_bytes(dataset_pb2, ri)
        if scene.pose_image is not None:
            laser.ri_return1.range_image_pose_compressed = matrix_float_bytes(
                dataset_pb2, scene.pose_image
            )
    for lid, ltype, c, s, heading, speed, accel in labels:
        lab = f.laser_labels.add()
        lab.id = lid
        lab.type = ltype
        lab.box.center_x, lab.box.center_y, lab.box.center_z = c
        lab.box.length, lab.box.width, lab.box.height = s
        lab.box.heading = heading
        lab.metadata.speed_x, lab.metadata.speed_y, lab.metadata.speed_z = speed
        lab.metadata.accel_x, lab.metadata.accel_y, lab.metadata.accel_z = accel
    assert label_pb2.Label.TYPE_VEHICLE == 1
    return f.SerializeToString()


def write_component(
    root: Path, component: str, segment: str, rows: list[dict], schema: pa.Schema
) -> None:
    path = root / component / f"{segment}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
