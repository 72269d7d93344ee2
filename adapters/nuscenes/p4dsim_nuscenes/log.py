"""``NuScenesLog``: one scene of a nuScenes release as a p4dsim :class:`~p4dsim.types.Log`.

* Frames are the scene's keyframes (samples, 2 Hz), in order; a frame's image is the
  ``camera`` channel's keyframe JPEG (nuScenes images are undistorted pinhole images),
  resampled to ``width`` when that option is given.
* Ego frame = nuScenes' ego (vehicle body) frame, which is already p4dsim's (x forward, y left,
  z up); world = nuScenes' global map frame. ``T_world_ego`` is the ego pose at the camera's
  timestamp and ``T_ego_camera`` the camera's calibrated_sensor record (camera axes OpenCV).
* LiDAR: the sample's ``LIDAR_TOP`` keyframe (plus ``lidar_sweeps - 1`` earlier sweeps when
  asked and present), moved into the ego frame at the camera's timestamp with the ego poses
  of both timestamps (the LiDAR and the camera are not exposed at the same instant).
* Boxes: the sample's annotations in the ego frame at the camera's timestamp, track id = the
  instance token, label from the category (see :mod:`p4dsim_nuscenes.categories`), velocity
  from the devkit (``NuScenes.box_velocity``, centre differences of the annotation track,
  rotated into the ego frame; None where the devkit has none). nuScenes boxes are upright in
  the map frame and the ego body is pitched and rolled against it (0.2-4.6° in scene-0916),
  so each :class:`~p4dsim.types.Box3D` carries its full ``rotation`` in the ego frame (its
  corners are then exactly the devkit's) and ``yaw`` is its heading projected onto the ego's
  xy plane.
* Ego trajectory: every ego pose of the camera channel in the scene (12 Hz: the sweeps'
  sample_data records are used even where their image files are absent).
* Tracks: the annotation histories of the scene's instances, each annotation at its
  keyframe's camera timestamp. An annotation is made on the LiDAR sweep, about 35 ms after
  the CAM_FRONT exposure; the devkit draws it into the image as it is, and so do the frame's
  boxes. On the camera clock the track passes through the frame's box at the frame's time:
  an actor built from the image starts where its box is (a road user at 5 m/s would
  otherwise start 17 cm off).
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.geometry import inv_pose, make_pose, transform_points
from p4dsim.types import Box3D, Camera, Frame, Log, SourceInfo, Track
from p4dsim_nuscenes.categories import label_of
from p4dsim_nuscenes.lidar import lidar_to_ego_at, load_pcd_bin
from p4dsim_nuscenes.tables import open_nuscenes, table_path

logger = logging.getLogger(__name__)

#: p4dsim pixel coordinate = nuScenes pixel coordinate + PIXEL_OFFSET (u and v)
PIXEL_OFFSET = 0.5
LIDAR = "LIDAR_TOP"


def quat_to_matrix(q: Any) -> np.ndarray:
    """[3, 3] rotation of a nuScenes quaternion (w, x, y, z), normalised."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def record_pose(rec: dict[str, Any]) -> np.ndarray:
    """[4, 4] pose of an ego_pose / calibrated_sensor / sample_annotation record."""
    return make_pose(quat_to_matrix(rec["rotation"]), np.asarray(rec["translation"], np.float64))


def nuscenes_to_p4dsim_K(K: Any) -> np.ndarray:
    """nuScenes intrinsics (pixel centres at integers) -> p4dsim's (centres at integer + 0.5)."""
    K = np.array(K, dtype=np.float64).reshape(3, 3)
    K[0, 2] += PIXEL_OFFSET
    K[1, 2] += PIXEL_OFFSET
    return K


class NuScenesLog(Log):
    """One nuScenes scene; see the module docstring."""

    dataset = "nuscenes"

    def __init__(
        self,
        root: Path,
        version: str = "v1.0-mini",
        scene: str | None = None,
        camera: str = "CAM_FRONT",
        lidar_sweeps: int = 1,
        width: int | None = None,
    ):
        self.root, self.version = Path(root), version
        self.camera_channel, self.lidar_sweeps = camera, int(lidar_sweeps)
        self.width = width
        self.nusc = open_nuscenes(self.root, version)
        by_name = {s["name"]: s for s in self.nusc.scene}
        names = ", ".join(sorted(by_name)) or "none"
        if scene is None:
            if len(by_name) != 1:
                raise SourceError(
                    f"nuScenes {self.root / version} holds {len(by_name)} scenes; choose one "
                    f"with scene=NAME (scenes: {names})"
                )
            scene = next(iter(by_name))
        if scene not in by_name:
            raise SourceError(
                f"nuScenes {table_path(self.root, version, 'scene')} has no scene '{scene}' "
                f"(scenes: {names})"
            )
        self.scene = by_name[scene]
        self.log_id = scene
        self.samples = self._keyframes()
        have = sorted(self.samples[0]["data"])
        for i, s in enumerate(self.samples):
            if camera not in s["data"]:
                raise SourceError(
                    f"nuScenes scene {scene}: keyframe {i} (sample {s['token']}) has no "
                    f"{camera} data (channels: {', '.join(sorted(s['data'])) or 'none'}; "
                    f"choose camera= one of {', '.join(c for c in have if c.startswith('CAM'))})"
                )
        self.cam_sd = [
            self._get("sample_data", s["data"][camera], f"sample {s['token']} {camera}")
            for s in self.samples
        ]
        self.lidar_sd = [
            self._get("sample_data", s["data"][LIDAR], f"sample {s['token']} {LIDAR}")
            if LIDAR in s["data"]
            else None
            for s in self.samples
        ]
        self.timestamps_us = np.array([r["timestamp"] for r in self.cam_sd], dtype=np.int64)

    # -- table access ---------------------------------------------------------------------

    def _get(self, table: str, token: str, where: str) -> dict[str, Any]:
        """``nusc.get(table, token)``; a SourceError naming the table file when the token
        (referred to from ``where``) is not in it."""
        try:
            return self.nusc.get(table, token)
        except KeyError:
            raise SourceError(
                f"nuScenes table {table_path(self.root, self.version, table)} has no record "
                f"with token '{token}' (referred to by {where}); the tables are inconsistent"
            ) from None

    def _keyframes(self) -> list[dict[str, Any]]:
        out, token, seen = [], self.scene["first_sample_token"], set()
        while token:
            if token in seen:
                raise SourceError(
                    f"nuScenes table {table_path(self.root, self.version, 'sample')}: the "
                    f"sample chain of {self.log_id} loops at token '{token}'"
                )
            seen.add(token)
            rec = self._get("sample", token, f"the sample chain of scene {self.log_id}")
            if rec["scene_token"] != self.scene["token"]:
                break
            out.append(rec)
            if token == self.scene["last_sample_token"]:
                break
            token = rec["next"]
        if not out:
            raise SourceError(f"nuScenes scene {self.log_id} has no keyframes")
        return out

    def _chain(self, sd: dict[str, Any]) -> list[dict[str, Any]]:
        """Every sample_data record of ``sd``'s channel in this scene, in time order."""
        recs = [sd]
        for direction in ("prev", "next"):
            rec = sd
            while rec[direction]:
                nxt = self._get(
                    "sample_data", rec[direction], f"sample_data {rec['token']} field '{direction}'"
                )
                smp = self._get(
                    "sample",
                    nxt["sample_token"],
                    f"sample_data {nxt['token']} field 'sample_token'",
                )
                if smp["scene_token"] != self.scene["token"]:
                    break
                recs.append(nxt)
                rec = nxt
        recs.sort(key=lambda r: r["timestamp"])
        return recs

    def _ego_pose(self, sd: dict[str, Any]) -> np.ndarray:
        rec = self._get(
            "ego_pose", sd["ego_pose_token"], f"sample_data {sd['token']} field 'ego_pose_token'"
        )
        return record_pose(rec)

    def _calib(self, sd: dict[str, Any]) -> dict[str, Any]:
        return self._get(
            "calibrated_sensor",
            sd["calibrated_sensor_token"],
            f"sample_data {sd['token']} field 'calibrated_sensor_token'",
        )

    # -- Log ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.samples)

    @cached_property
    def _trajectory(self) -> tuple[np.ndarray, np.ndarray]:
        recs = self._chain(self.cam_sd[0])
        ts = np.array([r["timestamp"] for r in recs], dtype=np.int64)
        keep = np.concatenate([[True], np.diff(ts) > 0])
        T = np.stack([self._ego_pose(r) for r in recs])
        return ts[keep], T[keep]

    def ego_trajectory(self) -> tuple[np.ndarray, np.ndarray] | None:
        ts, T = self._trajectory
        return ts.copy(), T.copy()

    def ego_velocity(self, timestamp_us: int, T_world_ego: np.ndarray) -> np.ndarray:
        """[3] ego velocity (m/s, ego axes) at ``timestamp_us``: centre differences of the
        camera channel's ego poses around it."""
        ts, T = self._trajectory
        if len(ts) < 2:
            return np.zeros(3)
        k = int(np.clip(np.searchsorted(ts, timestamp_us), 0, len(ts) - 1))
        a, b = max(k - 1, 0), min(k + 1, len(ts) - 1)
        if a == b:
            return np.zeros(3)
        v_world = (T[b, :3, 3] - T[a, :3, 3]) / ((ts[b] - ts[a]) * 1e-6)
        return T_world_ego[:3, :3].T @ v_world

    def _category(self, instance_token: str, ann_token: str) -> str:
        inst = self._get(
            "instance", instance_token, f"sample_annotation {ann_token} field 'instance_token'"
        )
        cat = self._get(
            "category", inst["category_token"], f"instance {instance_token} field 'category_token'"
        )
        return str(cat["name"])

    def _annotations(self, i: int) -> list[dict[str, Any]]:
        s = self.samples[i]
        return [
            self._get("sample_annotation", a, f"sample {s['token']} (its annotations)")
            for a in s["anns"]
        ]

    def _box_velocity(self, ann_token: str) -> np.ndarray:
        try:
            return np.asarray(self.nusc.box_velocity(ann_token), dtype=np.float64)
        except KeyError as exc:
            raise SourceError(
                f"nuScenes table {table_path(self.root, self.version, 'sample_annotation')}: "
                f"the track of annotation {ann_token} refers to token {exc} that no table holds"
            ) from None

    def boxes(self, i: int, T_world_ego: np.ndarray) -> tuple[list[Box3D], dict[str, str]]:
        """Keyframe ``i``'s boxes in the ego frame ``T_world_ego`` and their categories."""
        T_ego_world = inv_pose(T_world_ego)
        boxes, cats = [], {}
        for ann in self._annotations(i):
            cat = self._category(ann["instance_token"], ann["token"])
            T_wb = record_pose(ann)
            T_eb = T_ego_world @ T_wb
            w, l, h = (float(x) for x in ann["size"])
            v = self._box_velocity(ann["token"])
            vel = T_ego_world[:3, :3] @ v if np.all(np.isfinite(v)) else None
            tid = ann["instance_token"]
            boxes.append(
                Box3D(
                    track_id=tid,
                    label=label_of(cat),
                    center=T_eb[:3, 3].copy(),
                    size=np.array([l, w, h]),
                    yaw=float(np.arctan2(T_eb[1, 0], T_eb[0, 0])),
                    velocity=vel,
                    rotation=T_eb[:3, :3].copy(),
                )
            )
            cats[tid] = cat
        return boxes, cats

    def _lidar(self, i: int, T_world_ego: np.ndarray, notes: list[str]) -> np.ndarray | None:
        sd = self.lidar_sd[i]
        if sd is None:
            notes.append(f"keyframe {i} has no {LIDAR} data")
            return None
        recs = [sd]
        rec = sd
        while len(recs) < self.lidar_sweeps and rec["prev"]:
            rec = self._get("sample_data", rec["prev"], f"sample_data {rec['token']} field 'prev'")
            recs.append(rec)
        clouds = []
        for k, r in enumerate(recs):
            path = self.root / r["filename"]
            if k > 0 and not path.is_file():
                notes.append(f"{LIDAR} sweep {path} is absent; skipped")
                continue
            pts = load_pcd_bin(path)
            T = lidar_to_ego_at(T_world_ego, self._ego_pose(r), record_pose(self._calib(r)))
            clouds.append(transform_points(T, pts).astype(np.float32))
        if len(notes) and self.lidar_sweeps > 1:
            logger.info("nuScenes %s keyframe %d: %s", self.log_id, i, "; ".join(notes))
        return np.concatenate(clouds)

    def _image(self, sd: dict[str, Any], i: int) -> np.ndarray:
        import cv2

        path = self.root / sd["filename"]
        if not path.is_file():
            raise SourceError(
                f"nuScenes image {path} ({self.camera_channel} keyframe {i} of {self.log_id}) "
                "does not exist"
            )
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SourceError(f"nuScenes image {path} cannot be decoded (expected a JPEG image)")
        h, w = bgr.shape[:2]
        if sd.get("width") and sd.get("height") and (w, h) != (sd["width"], sd["height"]):
            raise SourceError(
                f"nuScenes image {path} is {w}×{h} but its sample_data record says "
                f"{sd['width']}×{sd['height']}"
            )
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def camera(self, i: int, width: int, height: int) -> Camera:
        cs = self._calib(self.cam_sd[i])
        if not cs.get("camera_intrinsic"):
            raise SourceError(
                f"nuScenes table {table_path(self.root, self.version, 'calibrated_sensor')}: "
                f"record {cs['token']} of {self.camera_channel} has no camera_intrinsic"
            )
        return Camera(
            K=nuscenes_to_p4dsim_K(cs["camera_intrinsic"]),
            width=width,
            height=height,
            T_ego_camera=record_pose(cs),
        )

    def frame(self, index: int) -> Frame:
        i = self.check_index(index)
        sd = self.cam_sd[i]
        image = self._image(sd, i)
        camera = self.camera(i, image.shape[1], image.shape[0])
        if self.width is not None and self.width != image.shape[1]:
            import cv2

            h = max(1, round(image.shape[0] * self.width / image.shape[1]))
            image = cv2.resize(image, (self.width, h), interpolation=cv2.INTER_AREA)
            camera = camera.with_resolution(self.width, h)
        T_world_ego = self._ego_pose(sd)
        notes: list[str] = []
        lidar = self._lidar(i, T_world_ego, notes)
        boxes, cats = self.boxes(i, T_world_ego)
        return Frame(
            image=image,
            camera=camera,
            lidar=lidar,
            boxes=boxes,
            T_world_ego=T_world_ego,
            ego_velocity=self.ego_velocity(int(sd["timestamp"]), T_world_ego),
            timestamp_us=int(sd["timestamp"]),
            source=SourceInfo(self.dataset, self.log_id, i),
            extras={
                "nuscenes_categories": cats,
                "sample_token": self.samples[i]["token"],
                "notes": notes,
            },
        )

    @cached_property
    def _tracks(self) -> dict[str, Track]:
        hist: dict[str, list[tuple[int, np.ndarray, np.ndarray, str]]] = {}
        for i in range(len(self.samples)):
            for ann in self._annotations(i):
                cat = self._category(ann["instance_token"], ann["token"])
                w, l, h = (float(x) for x in ann["size"])
                hist.setdefault(ann["instance_token"], []).append(
                    (int(self.timestamps_us[i]), record_pose(ann), np.array([l, w, h]), cat)
                )
        out = {}
        for tid, rows in hist.items():
            rows.sort(key=lambda r: r[0])
            out[tid] = Track(
                track_id=tid,
                label=label_of(rows[0][3]),
                timestamps_us=np.array([r[0] for r in rows], dtype=np.int64),
                T_world_box=np.stack([r[1] for r in rows]),
                size=rows[0][2],
            )
        return out

    def tracks(self) -> dict[str, Track]:
        return dict(self._tracks)
