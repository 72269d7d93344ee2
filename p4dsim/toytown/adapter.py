"""The ``toytown`` adapter: logs of the synthetic toytown world (no files needed).

Source strings: ``toytown``, ``toytown:?seed=3&frames=60&width=621&height=188``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from p4dsim.errors import ConfigError
from p4dsim.geometry import inv_pose, yaw_of
from p4dsim.plugins import Adapter
from p4dsim.toytown.layout import T_EGO_CAMERA
from p4dsim.toytown.world import ToytownWorld
from p4dsim.types import Box3D, Camera, Frame, Log, Oracle, SourceInfo, Track

#: KITTI-like focal length (pixels) at 1242×375
KITTI_FOCAL = 721.5377
KITTI_WIDTH, KITTI_HEIGHT = 1242, 375
#: timestamp of t = 0, microseconds
START_TIMESTAMP_US = 1_700_000_000_000_000
#: boxes of a frame: vehicles whose centre is within this distance of the ego (m)
BOX_RANGE = 80.0


class ToytownOptions(BaseModel):
    """Options of a toytown source."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="world seed: textures, colours, layout and vehicle placement")
    frames: int = Field(40, ge=1, le=100_000, description="log length in frames (10 Hz)")
    width: int = Field(1242, ge=8, le=8192, description="camera image width (pixels)")
    height: int = Field(375, ge=8, le=8192, description="camera image height (pixels)")


def toytown_camera(width: int = KITTI_WIDTH, height: int = KITTI_HEIGHT) -> Camera:
    """The front camera: KITTI-like intrinsics scaled to ``width``×``height`` (fx = fy = 721.5 at
    1242×375, principal point at the image centre), 1.65 m above the ground looking along +x."""
    K = np.array(
        [
            [KITTI_FOCAL * width / KITTI_WIDTH, 0.0, width / 2.0],
            [0.0, KITTI_FOCAL * height / KITTI_HEIGHT, height / 2.0],
            [0.0, 0.0, 1.0],
        ]
    )
    return Camera(K=K, width=int(width), height=int(height), T_ego_camera=T_EGO_CAMERA.copy())


class ToytownLog(Log, Oracle):
    """A log of the toytown world: ``frames`` frames at the world's 10 Hz from t = 0.

    Each frame carries the rendered image, a LiDAR sweep and boxes of the vehicles whose centre
    lies within :data:`BOX_RANGE` m of the ego (all directions), in the ego frame. ``extras``
    holds the exact ``depth`` [H, W] and ``actor_id`` [H, W] of the image (see
    :class:`~p4dsim.toytown.world.GroundTruth`).
    """

    dataset = "toytown"

    def __init__(
        self, seed: int = 0, frames: int = 40, width: int = KITTI_WIDTH, height: int = KITTI_HEIGHT
    ):
        self.seed = int(seed)
        self.log_id = f"toytown-seed{self.seed}"
        self.n_frames = int(frames)
        self.world = ToytownWorld(self.seed)
        self.camera = toytown_camera(width, height)

    def __len__(self) -> int:
        return self.n_frames

    def time(self, index: int) -> float:
        """Log time (s) of frame ``index``."""
        return index / self.world.fps

    def timestamp_us(self, index: int) -> int:
        return START_TIMESTAMP_US + int(round(self.time(index) * 1e6))

    def boxes(self, index: int) -> list[Box3D]:
        """Vehicle boxes of frame ``index`` in its ego frame (within :data:`BOX_RANGE` m)."""
        t = self.time(index)
        T_world_ego = self.world.ego_pose(t)
        T_ego_world = inv_pose(T_world_ego)
        R = T_ego_world[:3, :3]
        out = []
        for st in self.world.vehicles(t):
            T = T_ego_world @ st.T_world_box
            if np.linalg.norm(T[:2, 3]) > BOX_RANGE:
                continue
            out.append(
                Box3D(
                    track_id=st.track_id,
                    label=st.label,
                    center=T[:3, 3].copy(),
                    size=st.size.copy(),
                    yaw=float(yaw_of(T)),
                    velocity=R @ st.velocity,
                    acceleration=R @ st.acceleration,
                    yaw_rate=st.yaw_rate,
                    source="labels",
                )
            )
        return out

    # -- the ground-truth oracle (p4dsim.types.Oracle): the world itself --------------------
    def oracle(self) -> ToytownLog:
        return self

    def time_of(self, index: int) -> float:
        return self.time(index)

    def true_view(self, camera: Camera, T_world_camera: np.ndarray, t: float) -> np.ndarray:
        return self.world.render(camera.K, camera.width, camera.height, T_world_camera, t).rgb

    def true_lidar(self, T_world_ego: np.ndarray, t: float) -> np.ndarray:
        return self.world.lidar(T_world_ego, t)

    def frame(self, index: int) -> Frame:
        i = self.check_index(index)
        t = self.time(i)
        T_world_ego = self.world.ego_pose(t)
        cam = self.camera
        gt = self.world.render(cam.K, cam.width, cam.height, T_world_ego @ cam.T_ego_camera, t)
        return Frame(
            image=gt.rgb,
            camera=cam,
            lidar=self.world.lidar(T_world_ego, t),
            boxes=self.boxes(i),
            T_world_ego=T_world_ego,
            ego_velocity=self.world.ego_velocity(t),
            timestamp_us=self.timestamp_us(i),
            source=SourceInfo(self.dataset, self.log_id, i),
            extras={"depth": gt.depth, "actor_id": gt.actor_id, "time_s": t},
        )

    def ego_trajectory(self) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(self.n_frames)
        ts = np.array([self.timestamp_us(i) for i in idx], dtype=np.int64)
        return ts, self.world.ego_pose(idx / self.world.fps)

    def tracks(self) -> dict[str, Track]:
        idx = np.arange(self.n_frames)
        ts = np.array([self.timestamp_us(i) for i in idx], dtype=np.int64)
        poses = {tid: [] for tid in self.world.track_ids}
        sizes = {}
        for i in idx:
            for st in self.world.vehicles(self.time(int(i))):
                poses[st.track_id].append(st.T_world_box)
                sizes[st.track_id] = st.size
        return {
            tid: Track(
                track_id=tid,
                label="vehicle",
                timestamps_us=ts.copy(),
                T_world_box=np.array(poses[tid]),
                size=sizes[tid].copy(),
            )
            for tid in self.world.track_ids
        }


class ToytownAdapter(Adapter):
    """Adapter ``toytown``: the synthetic world, no path."""

    name = "toytown"
    description = "synthetic procedural driving world (exact ground truth, no files needed)"
    options_model = ToytownOptions
    needs_path = False
    native_resolution = True

    def open(self, path: Path | None, options: BaseModel) -> ToytownLog:
        if path is not None:
            raise ConfigError(
                f"source: adapter 'toytown' takes no path, got '{path}'; "
                "write 'toytown' or 'toytown:?seed=N'"
            )
        opts = (
            options
            if isinstance(options, ToytownOptions)
            else ToytownOptions.model_validate(dict(options))
        )
        return ToytownLog(seed=opts.seed, frames=opts.frames, width=opts.width, height=opts.height)
