"""Core types shared by every stage of p4dsim.

Conventions, once for the whole code base:

* **Ego and world frames**: x forward, y left, z up (ISO 8855, Waymo vehicle frame), metres.
  Adapters convert everything into these conventions at their boundary (KITTI's ego frame is
  its velodyne frame). Inside a :class:`~p4dsim.scene.Scene4D` the world origin is the ego pose
  of the source frame.
* **Camera frame**: OpenCV, x right, y down, z forward. Pinhole intrinsics; images are
  undistorted on ingest.
* **Poses** are 4×4 float64 ``T_a_b``: they map points from frame b to frame a.
* **Time** is seconds relative to the source frame inside the code; ``timestamp_us`` (int64,
  microseconds) in files.
* **Velocities** of boxes are ground (world) velocities expressed in the axes of the frame the
  box is given in (the ego frame for :class:`Frame`), m/s; accelerations likewise in m/s².
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from p4dsim.geometry import BOX_CORNER_SIGNS, box_corners, make_pose, pose_from_xyz_yaw, rot_z

Label = Literal["vehicle", "pedestrian", "cyclist", "sign", "other"]
LABELS: tuple[str, ...] = ("vehicle", "pedestrian", "cyclist", "sign", "other")

#: where rendering runs, for every command and scenario: ``auto`` = cuda when available
Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")

#: where the source frame's depth comes from (see :class:`p4dsim.scene.builder.BuildConfig`)
DepthSource = Literal["auto", "lidar", "prior", "mono"]


def check_device(value: str | None, where: str = "--device") -> Device | None:
    """``value`` as a :data:`Device` (None stays None); raises
    :class:`~p4dsim.errors.ConfigError` naming ``where`` and the valid devices otherwise."""
    from p4dsim.errors import ConfigError

    if value is None or value in DEVICES:
        return value  # type: ignore[return-value]
    raise ConfigError(f"{where} must be {', '.join(DEVICES[:-1])} or {DEVICES[-1]}, got '{value}'")


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    K: [3, 3] intrinsics (pixels); width, height: image size in pixels;
    T_ego_camera: [4, 4] pose of the camera in the ego frame (camera axes OpenCV).
    """

    K: np.ndarray
    width: int
    height: int
    T_ego_camera: np.ndarray

    def with_resolution(self, width: int, height: int) -> Camera:
        """The same camera resampled to ``width``×``height`` (intrinsics scaled)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, :] *= sx
        K[1, :] *= sy
        return Camera(K=K, width=int(width), height=int(height), T_ego_camera=self.T_ego_camera)


@dataclass
class Box3D:
    """A 3D box, upright unless it carries a full rotation.

    center: [3] box centre (not the bottom) in the frame it is given in (ego frame in a Frame);
    size: [3] length (along heading), width, height in metres; yaw: heading about +z, radians;
    velocity, acceleration: [3] or None (see module docstring); yaw_rate: rad/s or None;
    rotation: [3, 3] the box's full orientation in that frame, or None for upright boxes
    (``rot_z(yaw)``). Adapters whose boxes are upright in another frame than the ego frame
    (nuScenes: upright in the map frame, the ego body pitched and rolled against it) give it so
    that :meth:`corners` and :meth:`pose` are exact; ``yaw`` is then the heading of the box's
    x axis projected onto the frame's xy plane.
    """

    track_id: str
    label: Label
    center: np.ndarray
    size: np.ndarray
    yaw: float
    velocity: np.ndarray | None = None
    acceleration: np.ndarray | None = None
    yaw_rate: float | None = None
    source: str = "labels"
    confidence: float = 1.0
    rotation: np.ndarray | None = None

    def corners(self) -> np.ndarray:
        """The 8 corners [8, 3] (order of :func:`p4dsim.geometry.box_corners`), rotated by
        ``rotation`` when the box has one."""
        if self.rotation is None:
            return box_corners(self.center, self.size, self.yaw)
        local = BOX_CORNER_SIGNS * np.asarray(self.size, dtype=np.float64) / 2
        return local @ np.asarray(self.rotation, np.float64).T + np.asarray(self.center, np.float64)

    def rotation_matrix(self) -> np.ndarray:
        """[3, 3] orientation of the box in its frame: ``rotation``, else ``rot_z(yaw)``."""
        if self.rotation is None:
            return rot_z(self.yaw)
        return np.array(self.rotation, dtype=np.float64)

    def pose(self) -> np.ndarray:
        """[4, 4] pose of the box (``T_frame_box``, at its centre): ``rotation`` when given,
        else upright at ``yaw``."""
        if self.rotation is None:
            return pose_from_xyz_yaw(self.center, self.yaw)
        return make_pose(self.rotation, self.center)


@dataclass(frozen=True)
class SourceInfo:
    """Where a frame came from: dataset name, log id and frame index within the log."""

    dataset: str
    log_id: str
    frame_index: int


@dataclass
class Frame:
    """One front-camera frame of a log.

    image: uint8 [H, W, 3] RGB, undistorted; camera: its :class:`Camera`;
    lidar: float32 [N, 3] points in the ego frame, or None;
    boxes: 3D boxes in the ego frame; T_world_ego: [4, 4] ego pose in the log's world frame;
    ego_velocity: [3] ego velocity in the ego frame (m/s); timestamp_us: int64 microseconds.
    """

    image: np.ndarray
    camera: Camera
    lidar: np.ndarray | None
    boxes: list[Box3D]
    T_world_ego: np.ndarray
    ego_velocity: np.ndarray
    timestamp_us: int
    source: SourceInfo
    extras: dict = field(default_factory=dict)


@dataclass
class Track:
    """A logged box history: timestamps_us [T] int64, T_world_box [T, 4, 4], size [3], label."""

    track_id: str
    label: Label
    timestamps_us: np.ndarray
    T_world_box: np.ndarray
    size: np.ndarray


class Oracle(ABC):
    """Ground truth from any pose at any time, for evaluating views no log recorded (perturbed
    ego paths). A capability a log may offer (:meth:`Log.oracle`); synthetic worlds can,
    recorded logs cannot. Poses are in the log's world frame; times in seconds on the oracle's
    clock (:meth:`time_of` gives a frame's)."""

    @abstractmethod
    def time_of(self, index: int) -> float:
        """Time (s) of frame ``index`` on the oracle's clock."""

    @abstractmethod
    def true_view(self, camera: Camera, T_world_camera: np.ndarray, t: float) -> np.ndarray:
        """The true image uint8 [H, W, 3] seen by ``camera`` at pose ``T_world_camera`` [4, 4]
        (OpenCV axes) at time ``t``."""

    @abstractmethod
    def true_lidar(self, T_world_ego: np.ndarray, t: float) -> np.ndarray:
        """The LiDAR sweep float32 [N, 3] (ego frame) from ego pose ``T_world_ego`` [4, 4] at
        time ``t``."""


class Log(ABC):
    """What an adapter opens: a sequence of frames with an ego trajectory.

    Adapters implement ``__len__``, :meth:`frame` and :meth:`ego_trajectory`; :meth:`tracks` and
    :meth:`oracle` are optional (datasets without track ids return an empty dict, logs without
    ground truth for unrecorded poses return None).
    """

    #: dataset name, e.g. ``"toytown"``, ``"kitti-raw"``
    dataset: str = "unknown"
    #: log identifier within the dataset
    log_id: str = ""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def frame(self, index: int) -> Frame:
        """Frame ``index`` (0-based); raises :class:`~p4dsim.errors.ConfigError` when out of range."""

    @abstractmethod
    def ego_trajectory(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Logged ego poses: (timestamps_us [N] int64, T_world_ego [N, 4, 4]), or None when the
        log has no poses (then the ``log`` ego base is unavailable)."""

    def tracks(self) -> dict[str, Track]:
        """Per-track box histories in the log's world frame, keyed by track id."""
        return {}

    def oracle(self) -> Oracle | None:
        """Ground truth for poses and times the log did not record, or None (the default)."""
        return None

    def stereo_frame(self, index: int) -> Frame:
        """The second camera of a rectified stereo pair at frame ``index``'s instant: the same
        :class:`Frame` (LiDAR, boxes, poses, time) with that camera's image and
        :class:`Camera` (its ``T_ego_camera`` places it in the ego frame). Logs with a stereo
        camera override this; the default raises :class:`~p4dsim.errors.ConfigError`."""
        from p4dsim.errors import ConfigError

        raise ConfigError(
            f"the {self.dataset} log '{self.log_id}' has no stereo camera (no second image of "
            "the same instant to compare with)"
        )

    def check_index(self, index: int) -> int:
        from p4dsim.errors import ConfigError

        n = len(self)
        if not isinstance(index, int | np.integer) or index < 0 or index >= n:
            raise ConfigError(
                f"frame index {index!r} is out of range for {self.dataset} log "
                f"'{self.log_id}', which has {n} frames (valid: 0..{n - 1})"
            )
        return int(index)
