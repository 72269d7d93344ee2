"""Waymo Open Dataset v1: a ``*.tfrecord`` of ``waymo.open_dataset.Frame`` protos as a Log.

Each record is one frame (10 Hz). Per frame p4dsim reads the chosen camera (FRONT by
default; JPEG, undistorted), the vehicle pose ``T_world_ego``, the ego velocity (from the
camera image's velocity, given in the world frame), the ``laser_labels`` as ego-frame
:class:`~p4dsim.types.Box3D` and the TOP LiDAR's first return when its range image is
present (otherwise ``lidar`` is None).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.geometry import pose_from_xyz_yaw
from p4dsim.types import Box3D, Frame, Log, SourceInfo, Track
from p4dsim_waymo.camera import (
    CAMERA_IDS,
    CAMERA_NAMES,
    LASER_IDS,
    camera_from_waymo,
    decode_jpeg,
    undistort,
)
from p4dsim_waymo.protos import dataset_pb2
from p4dsim_waymo.range_image import beam_inclinations, pixel_poses, range_image_to_points
from p4dsim_waymo.tfrecord import index_records, read_record

#: Waymo label type (label_pb2.Label.Type) -> p4dsim label
LABEL_TYPES = {0: "other", 1: "vehicle", 2: "pedestrian", 3: "sign", 4: "cyclist"}


def boxes_from_labels(labels: Any) -> list[Box3D]:
    """``laser_labels`` (repeated ``Label``) to ego-frame boxes with ids, speed and acceleration."""
    boxes = []
    for lab in labels:
        b = lab.box
        velocity = acceleration = None
        if lab.HasField("metadata"):
            m = lab.metadata
            velocity = np.array([m.speed_x, m.speed_y, m.speed_z])
            acceleration = np.array([m.accel_x, m.accel_y, m.accel_z])
        boxes.append(
            Box3D(
                track_id=lab.id,
                label=LABEL_TYPES.get(int(lab.type), "other"),
                center=np.array([b.center_x, b.center_y, b.center_z]),
                size=np.array([b.length, b.width, b.height]),
                yaw=float(b.heading),
                velocity=velocity,
                acceleration=acceleration,
            )
        )
    return boxes


def _matrix_float(compressed: bytes, where: str) -> np.ndarray:
    """A zlib-compressed ``MatrixFloat`` proto to a float32 array of its shape."""
    pb = dataset_pb2()
    try:
        raw = zlib.decompress(compressed)
    except zlib.error as exc:
        raise SourceError(f"{where}: the zlib-compressed range image is corrupt ({exc})") from None
    m = pb.MatrixFloat()
    try:
        m.ParseFromString(raw)
    except Exception as exc:  # protobuf's DecodeError
        raise SourceError(f"{where}: the range image is not a MatrixFloat proto ({exc})") from None
    dims = list(m.shape.dims)
    data = np.asarray(m.data, dtype=np.float32)
    if not dims or int(np.prod(dims)) != data.size:
        raise SourceError(
            f"{where}: range image shape {dims} does not match its {data.size} values"
        )
    return data.reshape(dims)


@dataclass
class LidarReturn:
    """The TOP LiDAR's first return: points [N, 3] in the ego frame (float32), intensity,
    elongation [N] and the range-image pixel (row, col) [N, 2] of each point."""

    points: np.ndarray
    intensity: np.ndarray
    elongation: np.ndarray
    pixels: np.ndarray


def decode_top_lidar(frame_pb: Any, where: str, context: Any | None = None) -> LidarReturn | None:
    """Decode the TOP LiDAR's first return of a Frame proto, or None when its range image
    is absent. ``context``: a Context proto to take calibrations from when the frame has none."""
    top = LASER_IDS["TOP"]
    laser = next((las for las in frame_pb.lasers if las.name == top), None)
    if laser is None or not laser.ri_return1.range_image_compressed:
        return None
    ctx = frame_pb.context if frame_pb.context.laser_calibrations else context
    calib = (
        None if ctx is None else next((c for c in ctx.laser_calibrations if c.name == top), None)
    )
    if calib is None:
        raise SourceError(f"{where}: the TOP LiDAR has a range image but no laser calibration")
    ri = _matrix_float(laser.ri_return1.range_image_compressed, f"{where} TOP ri_return1")
    if ri.ndim != 3 or ri.shape[2] < 1:
        raise SourceError(
            f"{where}: TOP range image has shape {list(ri.shape)}, expected [H, W, 4]"
        )
    H = ri.shape[0]
    extrinsic = np.asarray(calib.extrinsic.transform, dtype=np.float64).reshape(4, 4)
    incl = beam_inclinations(
        list(calib.beam_inclinations), calib.beam_inclination_min, calib.beam_inclination_max, H
    )
    if incl.shape[0] != H:
        raise SourceError(
            f"{where}: TOP calibration has {incl.shape[0]} beam inclinations for a range "
            f"image of {H} rows"
        )
    pixel_pose = frame_pose = None
    if laser.ri_return1.range_image_pose_compressed:
        pose_img = _matrix_float(
            laser.ri_return1.range_image_pose_compressed, f"{where} TOP range_image_pose"
        )
        if pose_img.shape[:2] != ri.shape[:2] or pose_img.shape[2] != 6:
            raise SourceError(
                f"{where}: TOP range image pose has shape {list(pose_img.shape)}, expected "
                f"[{ri.shape[0]}, {ri.shape[1]}, 6]"
            )
        pixel_pose = pixel_poses(pose_img)
        frame_pose = np.asarray(frame_pb.pose.transform, dtype=np.float64).reshape(4, 4)
    pts, mask = range_image_to_points(ri[..., 0], extrinsic, incl, pixel_pose, frame_pose)
    rows, cols = np.nonzero(mask)
    zeros = np.zeros(rows.size, dtype=np.float32)
    return LidarReturn(
        points=pts.astype(np.float32),
        intensity=ri[..., 1][mask] if ri.shape[2] > 1 else zeros,
        elongation=ri[..., 2][mask] if ri.shape[2] > 2 else zeros,
        pixels=np.stack([rows, cols], axis=1),
    )


class WaymoV1Log(Log):
    """A v1 TFRecord file as a :class:`~p4dsim.types.Log` (one record per frame).

    path: the ``*.tfrecord`` file; camera: which camera is the frame's camera.
    """

    dataset = "waymo"

    def __init__(self, path: Path, camera: str = "FRONT"):
        self.path = Path(path)
        if camera not in CAMERA_IDS or camera == "UNKNOWN":
            raise SourceError(
                f"unknown Waymo camera '{camera}'; use one of FRONT, FRONT_LEFT, "
                "FRONT_RIGHT, SIDE_LEFT, SIDE_RIGHT"
            )
        self.camera_name = camera
        dataset_pb2()  # fail early with the install hint when the protos are missing
        self._spans = index_records(self.path)
        if not self._spans:
            raise SourceError(f"{self.path}: the TFRecord file holds no records")
        first = self._proto(0)
        self.log_id = first.context.name or self.path.stem
        self._context = first.context
        self._summary: list[tuple[int, np.ndarray, list[Box3D]]] | None = None

    def __len__(self) -> int:
        return len(self._spans)

    def _where(self, index: int) -> str:
        return f"{self.path} (record {index} at byte offset {self._spans[index].offset})"

    @lru_cache(maxsize=2)  # noqa: B019 - one log object per opened file
    def _proto(self, index: int) -> Any:
        data = read_record(self.path, self._spans[index])
        frame = dataset_pb2().Frame()
        try:
            frame.ParseFromString(data)
        except Exception as exc:  # protobuf's DecodeError
            raise SourceError(
                f"{self._where(index)}: the record is not a waymo.open_dataset.Frame ({exc})"
            ) from None
        return frame

    def frame(self, index: int) -> Frame:
        index = self.check_index(index)
        where = self._where(index)
        f = self._proto(index)
        ctx = f.context if f.context.camera_calibrations else self._context
        cam_id = CAMERA_IDS[self.camera_name]
        calib = next((c for c in ctx.camera_calibrations if c.name == cam_id), None)
        img_pb = next((im for im in f.images if im.name == cam_id), None)
        if calib is None or img_pb is None:
            raise SourceError(
                f"{where}: no {self.camera_name} camera "
                f"{'calibration' if calib is None else 'image'} in this frame"
            )
        camera, dist = camera_from_waymo(
            list(calib.intrinsic),
            np.asarray(calib.extrinsic.transform).reshape(4, 4),
            calib.width,
            calib.height,
        )
        image = decode_jpeg(img_pb.image, f"{where} {self.camera_name} image")
        if image.shape[:2] != (camera.height, camera.width):
            raise SourceError(
                f"{where}: {self.camera_name} image is {image.shape[1]}x{image.shape[0]} but "
                f"its calibration says {camera.width}x{camera.height}"
            )
        image = undistort(image, camera.K, dist)
        T_world_ego = np.asarray(f.pose.transform, dtype=np.float64).reshape(4, 4)
        ego_velocity = np.zeros(3)
        if img_pb.HasField("velocity"):
            v = img_pb.velocity
            ego_velocity = T_world_ego[:3, :3].T @ np.array([v.v_x, v.v_y, v.v_z])
        lidar = decode_top_lidar(f, where, self._context)
        visible: dict[str, list[str]] = {}
        for cl in f.projected_lidar_labels:
            name = CAMERA_NAMES.get(int(cl.name), str(cl.name))
            visible[name] = [lab.id.rsplit("_", 1)[0] for lab in cl.labels]
        extras = {
            "camera_name": self.camera_name,
            "distortion": dist,
            "projected_label_ids": visible,
            "num_lidar_points_in_box": {
                lab.id: int(lab.num_lidar_points_in_box) for lab in f.laser_labels
            },
        }
        if lidar is not None:
            extras["lidar_intensity"] = lidar.intensity
            extras["lidar_elongation"] = lidar.elongation
        return Frame(
            image=image,
            camera=camera,
            lidar=None if lidar is None else lidar.points,
            boxes=boxes_from_labels(f.laser_labels),
            T_world_ego=T_world_ego,
            ego_velocity=ego_velocity,
            timestamp_us=int(f.timestamp_micros),
            source=SourceInfo(dataset="waymo", log_id=self.log_id, frame_index=index),
            extras=extras,
        )

    def _summaries(self) -> list[tuple[int, np.ndarray, list[Box3D]]]:
        if self._summary is None:
            out = []
            for i in range(len(self)):
                f = self._proto(i)
                T = np.asarray(f.pose.transform, dtype=np.float64).reshape(4, 4)
                out.append((int(f.timestamp_micros), T, boxes_from_labels(f.laser_labels)))
            self._summary = out
        return self._summary

    def ego_trajectory(self) -> tuple[np.ndarray, np.ndarray]:
        s = self._summaries()
        return np.array([t for t, _, _ in s], dtype=np.int64), np.stack([T for _, T, _ in s])

    def tracks(self) -> dict[str, Track]:
        return tracks_from_boxes(self._summaries())


def tracks_from_boxes(summaries: list[tuple[int, np.ndarray, list[Box3D]]]) -> dict[str, Track]:
    """Per-id box histories in the world frame from per-frame (timestamp_us, T_world_ego,
    ego-frame boxes)."""
    hist: dict[str, list[tuple[int, np.ndarray, Box3D]]] = {}
    for t, T_world_ego, boxes in summaries:
        for b in boxes:
            if b.track_id:
                hist.setdefault(b.track_id, []).append((t, T_world_ego, b))
    tracks = {}
    for tid, items in hist.items():
        items.sort(key=lambda x: x[0])
        T_world_box = np.stack([Te @ pose_from_xyz_yaw(b.center, b.yaw) for _, Te, b in items])
        tracks[tid] = Track(
            track_id=tid,
            label=items[0][2].label,
            timestamps_us=np.array([t for t, _, _ in items], dtype=np.int64),
            T_world_box=T_world_box,
            size=np.median(np.stack([b.size for _, _, b in items]), axis=0),
        )
    return tracks
