"""Waymo Open Dataset v2 component layout: column names and Arrow types.

Column names follow the official v2 convention: keys as ``key.<field>``, component fields
as ``[<ComponentClass>].<field path>``. Types follow the official component definitions
(``waymo_open_dataset/v2``); 4×4 transforms are ``fixed_size_list<float32>[16]`` (row-major),
as in the released Parquet files (e.g. ``vehicle_pose``). ``camera_depth`` is p4dsim's own
component, keyed like ``camera_image``.
"""

from __future__ import annotations

import pyarrow as pa

KEY_SEGMENT = "key.segment_context_name"
KEY_TIMESTAMP = "key.frame_timestamp_micros"
KEY_CAMERA = "key.camera_name"
KEY_LASER = "key.laser_name"
KEY_LASER_OBJECT = "key.laser_object_id"
KEY_CAMERA_OBJECT = "key.camera_object_id"

TRANSFORM = pa.list_(pa.float32(), 16)

_F64 = pa.float64()
_F32 = pa.float32()


def _vec(prefix: str, t: pa.DataType) -> list[tuple[str, pa.DataType]]:
    return [(f"{prefix}.{a}", t) for a in ("x", "y", "z")]


CI = "[CameraImageComponent]"
CAMERA_IMAGE = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_TIMESTAMP, pa.int64()),
        (KEY_CAMERA, pa.int8()),
        (f"{CI}.image", pa.binary()),
        (f"{CI}.pose.transform", TRANSFORM),
        *_vec(f"{CI}.velocity.linear_velocity", _F32),
        *_vec(f"{CI}.velocity.angular_velocity", _F64),
        (f"{CI}.pose_timestamp", _F64),
        (f"{CI}.rolling_shutter_params.shutter", _F64),
        (f"{CI}.rolling_shutter_params.camera_trigger_time", _F64),
        (f"{CI}.rolling_shutter_params.camera_readout_done_time", _F64),
    ]
)

CC = "[CameraCalibrationComponent]"
INTRINSIC_FIELDS = ("f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3")
CAMERA_CALIBRATION = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_CAMERA, pa.int8()),
        *[(f"{CC}.intrinsic.{f}", _F64) for f in INTRINSIC_FIELDS],
        (f"{CC}.extrinsic.transform", TRANSFORM),
        (f"{CC}.width", pa.int32()),
        (f"{CC}.height", pa.int32()),
        (f"{CC}.rolling_shutter_direction", pa.int8()),
    ]
)

CB = "[CameraBoxComponent]"
CAMERA_BOX = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_TIMESTAMP, pa.int64()),
        (KEY_CAMERA, pa.int8()),
        (KEY_CAMERA_OBJECT, pa.string()),
        (f"{CB}.box.center.x", _F64),
        (f"{CB}.box.center.y", _F64),
        (f"{CB}.box.size.x", _F64),
        (f"{CB}.box.size.y", _F64),
        (f"{CB}.type", pa.int8()),
        (f"{CB}.difficulty_level.detection", pa.int8()),
        (f"{CB}.difficulty_level.tracking", pa.int8()),
    ]
)

VP = "[VehiclePoseComponent]"
VEHICLE_POSE = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_TIMESTAMP, pa.int64()),
        (f"{VP}.world_from_vehicle.transform", TRANSFORM),
    ]
)

LB = "[LiDARBoxComponent]"
LIDAR_BOX = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_TIMESTAMP, pa.int64()),
        (KEY_LASER_OBJECT, pa.string()),
        *_vec(f"{LB}.box.center", _F64),
        *_vec(f"{LB}.box.size", _F64),
        (f"{LB}.box.heading", _F64),
        (f"{LB}.type", pa.int8()),
        (f"{LB}.num_lidar_points_in_box", pa.int64()),
        (f"{LB}.num_top_lidar_points_in_box", pa.int64()),
        *_vec(f"{LB}.speed", _F64),
        *_vec(f"{LB}.acceleration", _F64),
        (f"{LB}.difficulty_level.detection", pa.int8()),
        (f"{LB}.difficulty_level.tracking", pa.int8()),
    ]
)

CD = "[CameraDepthComponent]"
#: p4dsim's depth component: depth in metres along the camera z axis, float16 little-endian,
#: row-major H×W, 0 where there is none; coverage: share of observed (not synthesised) pixels.
CAMERA_DEPTH = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_TIMESTAMP, pa.int64()),
        (KEY_CAMERA, pa.int8()),
        (f"{CD}.depth", pa.binary()),
        (f"{CD}.format", pa.string()),
        (f"{CD}.width", pa.int32()),
        (f"{CD}.height", pa.int32()),
        (f"{CD}.coverage", _F32),
    ]
)

# Components the v2 reader uses besides the ones above.
LI = "[LiDARComponent]"
LC = "[LiDARCalibrationComponent]"
LP = "[LiDARPoseComponent]"
LIDAR = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_TIMESTAMP, pa.int64()),
        (KEY_LASER, pa.int8()),
        (f"{LI}.range_image_return1.values", pa.list_(_F32)),
        (f"{LI}.range_image_return1.shape", pa.list_(pa.int32(), 3)),
        (f"{LI}.range_image_return2.values", pa.list_(_F32)),
        (f"{LI}.range_image_return2.shape", pa.list_(pa.int32(), 3)),
    ]
)
LIDAR_CALIBRATION = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_LASER, pa.int8()),
        (f"{LC}.extrinsic.transform", TRANSFORM),
        (f"{LC}.beam_inclination.min", _F64),
        (f"{LC}.beam_inclination.max", _F64),
        (f"{LC}.beam_inclination.values", pa.list_(_F64)),
    ]
)
LIDAR_POSE = pa.schema(
    [
        (KEY_SEGMENT, pa.string()),
        (KEY_TIMESTAMP, pa.int64()),
        (KEY_LASER, pa.int8()),
        (f"{LP}.range_image_return1.values", pa.list_(_F32)),
        (f"{LP}.range_image_return1.shape", pa.list_(pa.int32(), 3)),
    ]
)

#: component folder name -> schema
COMPONENTS: dict[str, pa.Schema] = {
    "camera_image": CAMERA_IMAGE,
    "camera_calibration": CAMERA_CALIBRATION,
    "camera_box": CAMERA_BOX,
    "vehicle_pose": VEHICLE_POSE,
    "lidar_box": LIDAR_BOX,
    "lidar": LIDAR,
    "lidar_calibration": LIDAR_CALIBRATION,
    "lidar_pose": LIDAR_POSE,
    "camera_depth": CAMERA_DEPTH,
}
