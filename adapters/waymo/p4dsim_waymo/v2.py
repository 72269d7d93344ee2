"""Waymo Open Dataset v2: the Parquet components of one segment as a Log, with pyarrow alone.

Layout: ``{root}/{component}/{segment}.parquet``. Used components: ``camera_image`` and
``camera_calibration`` (required), ``vehicle_pose``, ``lidar_box``, ``lidar``,
``lidar_calibration`` and ``lidar_pose`` (optional). Rows are joined on
``key.segment_context_name``, ``key.frame_timestamp_micros`` and ``key.camera_name`` /
``key.laser_name``. Frames are the timestamps of the chosen camera's images, in time order.
``key.camera_name`` / ``key.laser_name`` may be the enum's integer (official int8) or its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from p4dsim.errors import ConfigError, SourceError
from p4dsim.types import Box3D, Frame, Log, SourceInfo, Track
from p4dsim_waymo import schema as S
from p4dsim_waymo.camera import (
    CAMERA_IDS,
    CAMERA_NAMES,
    LASER_IDS,
    LASER_NAMES,
    camera_from_waymo,
    decode_jpeg,
    undistort,
)
from p4dsim_waymo.range_image import beam_inclinations, pixel_poses, range_image_to_points
from p4dsim_waymo.v1 import LABEL_TYPES, tracks_from_boxes


def list_segments(root: Path) -> list[str]:
    """Segment names with a ``camera_image`` file under ``root``."""
    return sorted(p.stem for p in (Path(root) / "camera_image").glob("*.parquet"))


def _sensor_mask(column: pa.ChunkedArray, sensor_id: int, names: dict[int, str]) -> pa.Array:
    """Rows whose camera/laser key names ``sensor_id`` (column of ints or of enum names)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.equal(column, names[sensor_id])
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
        return _sensor_mask(column, sensor_id, names)
    return pc.equal(column, sensor_id)


def _transform(value: Any, where: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != 16:
        raise SourceError(f"{where}: expected a 4x4 transform (16 values), got {arr.size}")
    return arr.reshape(4, 4)


class WaymoV2Log(Log):
    """One segment of a v2 Parquet root as a :class:`~p4dsim.types.Log`.

    root: folder holding the component folders; segment: the segment name (needed when the
    root holds several); camera: which camera is the frame's camera.
    """

    dataset = "waymo"

    def __init__(self, root: Path, segment: str | None = None, camera: str = "FRONT"):
        self.root = Path(root)
        segments = list_segments(self.root)
        if not segments:
            raise SourceError(
                f"{self.root}: no Waymo v2 camera_image/*.parquet found; give a v2 root folder "
                "(with camera_image/, camera_calibration/, ...) or a v1 *.tfrecord file"
            )
        if segment is None:
            if len(segments) > 1:
                raise ConfigError(
                    f"{self.root} holds {len(segments)} segments; choose one with the option "
                    f"segment=..., e.g. {', '.join(segments[:5])}"
                    + (" ..." if len(segments) > 5 else "")
                )
            segment = segments[0]
        elif segment not in segments:
            raise ConfigError(
                f"segment '{segment}' not found in {self.root / 'camera_image'}; available: "
                f"{', '.join(segments[:5])}" + (" ..." if len(segments) > 5 else "")
            )
        if camera not in CAMERA_IDS or camera == "UNKNOWN":
            raise ConfigError(f"unknown Waymo camera '{camera}'")
        self.segment = segment
        self.log_id = segment
        self.camera_name = camera
        self._cam_id = CAMERA_IDS[camera]
        keys = self._read("camera_image", [S.KEY_TIMESTAMP, S.KEY_CAMERA])
        mask = _sensor_mask(keys.column(S.KEY_CAMERA), self._cam_id, CAMERA_NAMES)
        ts = keys.filter(mask).column(S.KEY_TIMESTAMP).to_numpy()
        self._timestamps = np.unique(ts)
        if self._timestamps.size == 0:
            raise SourceError(f"{self._file('camera_image')}: no {camera} camera images")
        self._calib = self._camera_calibration()
        self._poses: dict[int, np.ndarray] | None = None
        self._boxes: dict[int, list[Box3D]] | None = None

    # -- files ---------------------------------------------------------------------------

    def _file(self, component: str) -> Path:
        return self.root / component / f"{self.segment}.parquet"

    def _has(self, component: str) -> bool:
        return self._file(component).is_file()

    def _read(self, component: str, columns: list[str] | None = None, filters=None) -> pa.Table:
        path = self._file(component)
        try:
            present = set(pq.read_schema(path).names)
        except FileNotFoundError:
            raise SourceError(f"missing Waymo v2 component file {path}") from None
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"{path}: not a readable Parquet file ({exc})") from None
        if columns is not None:
            missing = [c for c in columns if c not in present]
            if missing:
                raise SourceError(
                    f"{path}: missing column(s) {', '.join(missing)} of the official v2 layout"
                )
        try:
            return pq.read_table(path, columns=columns, filters=filters)
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"{path}: cannot read ({exc})") from None

    # -- pieces ------------------------------------------------------------------------

    def _camera_calibration(self) -> tuple[Any, np.ndarray]:
        cols = [S.KEY_CAMERA, *[f"{S.CC}.intrinsic.{f}" for f in S.INTRINSIC_FIELDS]]
        cols += [f"{S.CC}.extrinsic.transform", f"{S.CC}.width", f"{S.CC}.height"]
        t = self._read("camera_calibration", cols)
        t = t.filter(_sensor_mask(t.column(S.KEY_CAMERA), self._cam_id, CAMERA_NAMES))
        if t.num_rows == 0:
            raise SourceError(f"{self._file('camera_calibration')}: no {self.camera_name} row")
        row = t.slice(0, 1).to_pylist()[0]
        intr = [row[f"{S.CC}.intrinsic.{f}"] for f in S.INTRINSIC_FIELDS]
        ext = _transform(row[f"{S.CC}.extrinsic.transform"], str(self._file("camera_calibration")))
        return camera_from_waymo(intr, ext, row[f"{S.CC}.width"], row[f"{S.CC}.height"])

    def _vehicle_poses(self) -> dict[int, np.ndarray]:
        if self._poses is None:
            poses: dict[int, np.ndarray] = {}
            if self._has("vehicle_pose"):
                col = f"{S.VP}.world_from_vehicle.transform"
                t = self._read("vehicle_pose", [S.KEY_TIMESTAMP, col])
                where = str(self._file("vehicle_pose"))
                for ts, T in zip(
                    t.column(S.KEY_TIMESTAMP).to_pylist(), t.column(col).to_pylist(), strict=True
                ):
                    poses[int(ts)] = _transform(T, where)
            self._poses = poses
        return self._poses

    def _all_boxes(self) -> dict[int, list[Box3D]]:
        if self._boxes is None:
            out: dict[int, list[Box3D]] = {}
            if self._has("lidar_box"):
                t = self._read("lidar_box")
                names = set(t.column_names)
                rows = t.to_pylist()
                for r in rows:

                    def vec(prefix: str, r=r) -> np.ndarray | None:
                        keys = [f"{prefix}.{a}" for a in "xyz"]
                        if not all(k in names for k in keys) or any(r[k] is None for k in keys):
                            return None
                        return np.array([r[k] for k in keys], dtype=np.float64)

                    center = vec(f"{S.LB}.box.center")
                    size = vec(f"{S.LB}.box.size")
                    if center is None or size is None:
                        raise SourceError(
                            f"{self._file('lidar_box')}: missing box centre/size columns"
                        )
                    out.setdefault(int(r[S.KEY_TIMESTAMP]), []).append(
                        Box3D(
                            track_id=str(r[S.KEY_LASER_OBJECT]),
                            label=LABEL_TYPES.get(int(r.get(f"{S.LB}.type") or 0), "other"),
                            center=center,
                            size=size,
                            yaw=float(r[f"{S.LB}.box.heading"]),
                            velocity=vec(f"{S.LB}.speed"),
                            acceleration=vec(f"{S.LB}.acceleration"),
                        )
                    )
            self._boxes = out
        return self._boxes

    def _lidar(self, ts: int, T_world_ego: np.ndarray) -> np.ndarray | None:
        if not (self._has("lidar") and self._has("lidar_calibration")):
            return None
        top = LASER_IDS["TOP"]
        vcol, scol = f"{S.LI}.range_image_return1.values", f"{S.LI}.range_image_return1.shape"
        t = self._read("lidar", [S.KEY_LASER, vcol, scol], filters=[(S.KEY_TIMESTAMP, "=", ts)])
        t = t.filter(_sensor_mask(t.column(S.KEY_LASER), top, LASER_NAMES))
        if t.num_rows == 0 or t.column(vcol)[0].as_py() is None:
            return None
        where = f"{self._file('lidar')} (timestamp {ts})"
        shape = [int(x) for x in t.column(scol)[0].as_py()]
        values = np.asarray(t.column(vcol)[0].values.to_numpy(zero_copy_only=False), np.float32)
        if len(shape) != 3 or int(np.prod(shape)) != values.size:
            raise SourceError(
                f"{where}: range image shape {shape} does not match {values.size} values"
            )
        ri = values.reshape(shape)
        c = self._read("lidar_calibration")
        c = c.filter(_sensor_mask(c.column(S.KEY_LASER), top, LASER_NAMES))
        if c.num_rows == 0:
            raise SourceError(f"{self._file('lidar_calibration')}: no TOP LiDAR row")
        crow = c.slice(0, 1).to_pylist()[0]
        extrinsic = _transform(
            crow[f"{S.LC}.extrinsic.transform"], str(self._file("lidar_calibration"))
        )
        incl = beam_inclinations(
            crow.get(f"{S.LC}.beam_inclination.values"),
            crow[f"{S.LC}.beam_inclination.min"],
            crow[f"{S.LC}.beam_inclination.max"],
            shape[0],
        )
        if incl.size != shape[0]:
            raise SourceError(
                f"{self._file('lidar_calibration')}: {incl.size} beam inclinations for a range "
                f"image of {shape[0]} rows"
            )
        pixel_pose = None
        if self._has("lidar_pose"):
            pv, ps = f"{S.LP}.range_image_return1.values", f"{S.LP}.range_image_return1.shape"
            p = self._read(
                "lidar_pose", [S.KEY_LASER, pv, ps], filters=[(S.KEY_TIMESTAMP, "=", ts)]
            )
            p = p.filter(_sensor_mask(p.column(S.KEY_LASER), top, LASER_NAMES))
            if p.num_rows and p.column(pv)[0].as_py() is not None:
                pshape = [int(x) for x in p.column(ps)[0].as_py()]
                pvals = np.asarray(p.column(pv)[0].values.to_numpy(zero_copy_only=False))
                if pshape[:2] != shape[:2] or pshape[2] != 6 or pvals.size != np.prod(pshape):
                    raise SourceError(
                        f"{self._file('lidar_pose')} (timestamp {ts}): pose image shape {pshape} "
                        f"does not match the range image {shape}"
                    )
                pixel_pose = pixel_poses(pvals.reshape(pshape))
        pts, _ = range_image_to_points(
            ri[..., 0], extrinsic, incl, pixel_pose, T_world_ego if pixel_pose is not None else None
        )
        return pts.astype(np.float32)

    # -- Log ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._timestamps.size)

    def frame(self, index: int) -> Frame:
        index = self.check_index(index)
        ts = int(self._timestamps[index])
        cols = [
            S.KEY_CAMERA,
            f"{S.CI}.image",
            f"{S.CI}.pose.transform",
            *[f"{S.CI}.velocity.linear_velocity.{a}" for a in "xyz"],
        ]
        t = self._read("camera_image", cols, filters=[(S.KEY_TIMESTAMP, "=", ts)])
        t = t.filter(_sensor_mask(t.column(S.KEY_CAMERA), self._cam_id, CAMERA_NAMES))
        where = f"{self._file('camera_image')} (timestamp {ts})"
        row = t.slice(0, 1).to_pylist()[0]
        camera, dist = self._calib
        image = decode_jpeg(row[f"{S.CI}.image"], where)
        if image.shape[:2] != (camera.height, camera.width):
            raise SourceError(
                f"{where}: image is {image.shape[1]}x{image.shape[0]} but the calibration says "
                f"{camera.width}x{camera.height}"
            )
        image = undistort(image, camera.K, dist)
        poses = self._vehicle_poses()
        if ts in poses:
            T_world_ego = poses[ts]
        elif row[f"{S.CI}.pose.transform"] is not None:
            T_world_ego = _transform(row[f"{S.CI}.pose.transform"], where)
        else:
            raise SourceError(f"{where}: no vehicle pose for this frame")
        v = [row[f"{S.CI}.velocity.linear_velocity.{a}"] for a in "xyz"]
        ego_velocity = np.zeros(3)
        if all(x is not None for x in v):
            ego_velocity = T_world_ego[:3, :3].T @ np.asarray(v, dtype=np.float64)
        return Frame(
            image=image,
            camera=camera,
            lidar=self._lidar(ts, T_world_ego),
            boxes=list(self._all_boxes().get(ts, [])),
            T_world_ego=T_world_ego,
            ego_velocity=ego_velocity,
            timestamp_us=ts,
            source=SourceInfo(dataset="waymo", log_id=self.segment, frame_index=index),
            extras={"camera_name": self.camera_name, "distortion": dist},
        )

    def ego_trajectory(self) -> tuple[np.ndarray, np.ndarray] | None:
        poses = self._vehicle_poses()
        if poses:
            ts = np.array(sorted(poses), dtype=np.int64)
            return ts, np.stack([poses[int(t)] for t in ts])
        col = f"{S.CI}.pose.transform"
        t = self._read("camera_image", [S.KEY_TIMESTAMP, S.KEY_CAMERA, col])
        t = t.filter(_sensor_mask(t.column(S.KEY_CAMERA), self._cam_id, CAMERA_NAMES))
        rows = sorted(
            zip(t.column(S.KEY_TIMESTAMP).to_pylist(), t.column(col).to_pylist(), strict=True)
        )
        rows = [(ts, T) for ts, T in rows if T is not None]
        if not rows:
            return None
        where = str(self._file("camera_image"))
        return (
            np.array([ts for ts, _ in rows], dtype=np.int64),
            np.stack([_transform(T, where) for _, T in rows]),
        )

    def tracks(self) -> dict[str, Track]:
        traj = self.ego_trajectory()
        if traj is None:
            return {}
        poses = dict(zip(traj[0].tolist(), traj[1], strict=True))
        boxes = self._all_boxes()
        return tracks_from_boxes(
            [(ts, poses[ts], boxes[ts]) for ts in sorted(boxes) if ts in poses]
        )
