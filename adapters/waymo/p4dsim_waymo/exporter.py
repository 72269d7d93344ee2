"""The ``waymo-v2`` exporter: a native p4dsim dataset as Waymo Open Dataset v2 components.

Each (run, variant) of the dataset becomes one v2 segment named
``p4dsim__<source log>__<run>__<variant>`` (characters outside ``[A-Za-z0-9._-]`` become
``-``, runs of ``_`` inside a part become one ``_``).
Written components, one Parquet file per segment at ``{out}/{component}/{segment}.parquet``:

* ``camera_image``: the rendered RGB as JPEG (FRONT), the SDC pose ``T_world_ego``, its
  velocity (finite differences of the poses over the run, world frame) and a global shutter;
* ``camera_calibration``: the rendered pinhole camera, zero distortion, extrinsic
  ``T_vehicle_camera`` in Waymo's camera axes (x forward, y left, z up);
* ``camera_box``: the 2D boxes of visible actors, ``key.camera_object_id`` = track id;
* ``vehicle_pose``: ``T_world_ego`` per frame;
* ``lidar_box``: every actor's 3D box in the ego frame, with speed and acceleration in the ego
  frame's axes, from the motion model (the actors table's ``velocity_world`` and
  ``acceleration_world``; finite differences over the track for datasets without them);
  point counts are null
  (rendered data have no LiDAR);
* ``camera_depth`` (p4dsim's own): the rendered depth, float16, keyed like ``camera_image``.

The world frame is the dataset's scene world (origin at the source frame's ego pose).
"""

from __future__ import annotations

import os
import re
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from p4dsim.errors import OutputError
from p4dsim.geometry import wrap_angle, yaw_of
from p4dsim.plugins import Exporter, ExportSummary
from p4dsim_waymo import schema as S
from p4dsim_waymo.camera import CAMERA_IDS, T_WAYMOCAM_OPENCV

#: p4dsim label -> Waymo BoxType
BOX_TYPES = {"other": 0, "vehicle": 1, "pedestrian": 2, "sign": 3, "cyclist": 4}
FRONT = CAMERA_IDS["FRONT"]
GLOBAL_SHUTTER = 5


def segment_name(source_log: str, run_id: str, variant_id: str) -> str:
    """The v2 segment name of one (run, variant) of a dataset made from ``source_log``:
    ``p4dsim__<source log>__<run>__<variant>``."""
    parts = ["p4dsim", source_log or "unknown", run_id or "run", variant_id or "base"]
    clean = [re.sub(r"_{2,}", "_", re.sub(r"[^A-Za-z0-9._-]+", "-", p)) for p in parts]
    return "__".join(clean)


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _mat(values: Any, n: int, where: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size != n * n:
        raise OutputError(f"{where}: expected {n * n} values, got {arr.size}")
    return arr.reshape(n, n)


def _velocities(t_s: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Finite-difference velocity [T, 3] and acceleration [T, 3] (None below 3 samples)."""
    if t_s.size < 2:
        return np.zeros_like(pos), None
    vel = np.gradient(pos, t_s, axis=0)
    acc = np.gradient(vel, t_s, axis=0) if t_s.size >= 3 else None
    return vel, acc


def _angular_velocity(t_s: np.ndarray, R: np.ndarray) -> np.ndarray:
    """World-frame angular velocity [T, 3] of rotations R [T, 3, 3] (finite differences)."""
    import cv2

    out = np.zeros((t_s.size, 3))
    if t_s.size < 2:
        return out
    for i in range(t_s.size):
        a, b = (i, i + 1) if i + 1 < t_s.size else (i - 1, i)
        dR = R[b] @ R[a].T
        rvec, _ = cv2.Rodrigues(dR)
        out[i] = rvec[:, 0] / (t_s[b] - t_s[a])
    return out


def _xyz(prefix: str, v: np.ndarray | None) -> dict[str, float | None]:
    """Columns ``{prefix}.x/y/z`` of a 3-vector (all null when ``v`` is None)."""
    return {f"{prefix}.{a}": None if v is None else float(v[k]) for k, a in enumerate("xyz")}


def _frame_rows(seg: str, rows: list[dict], where: str) -> tuple[dict[str, list[dict]], dict]:
    """camera_image, vehicle_pose and camera_depth rows of one run, and the per-frame
    (timestamp_us, T_world_ego) by frame index."""
    from p4dsim.io.codecs import decode_depth, decode_rgb, encode_depth, encode_rgb

    ts_us = np.array([r["timestamp_us"] for r in rows], dtype=np.int64)
    if np.unique(ts_us).size != ts_us.size:
        raise OutputError(f"{where}: repeated timestamp_us; v2 keys need unique frames")
    t_s = (ts_us - ts_us[0]) / 1e6
    T_we = np.stack([_mat(r["T_world_ego"], 4, f"{where} T_world_ego") for r in rows])
    v_world, _ = _velocities(t_s, T_we[:, :3, 3])
    if len(rows) == 1 and rows[0].get("ego_speed") is not None:
        v_world[0] = T_we[0, :3, 0] * float(rows[0]["ego_speed"])
    w_world = _angular_velocity(t_s, T_we[:, :3, :3])
    out: dict[str, list[dict]] = {"camera_image": [], "vehicle_pose": [], "camera_depth": []}
    for i, r in enumerate(rows):
        ts = int(ts_us[i])
        key = {S.KEY_SEGMENT: seg, S.KEY_TIMESTAMP: ts}
        if r.get("rgb_format") == "jpeg":
            jpeg = r["rgb"]
        else:
            jpeg = encode_rgb(decode_rgb(r["rgb"]), "jpeg", jpeg_quality=95)
        pose = T_we[i].reshape(-1).tolist()
        out["camera_image"].append(
            {
                **key,
                S.KEY_CAMERA: FRONT,
                f"{S.CI}.image": jpeg,
                f"{S.CI}.pose.transform": pose,
                **_xyz(f"{S.CI}.velocity.linear_velocity", v_world[i]),
                **_xyz(f"{S.CI}.velocity.angular_velocity", w_world[i]),
                f"{S.CI}.pose_timestamp": ts / 1e6,
                f"{S.CI}.rolling_shutter_params.shutter": 0.0,
                f"{S.CI}.rolling_shutter_params.camera_trigger_time": ts / 1e6,
                f"{S.CI}.rolling_shutter_params.camera_readout_done_time": ts / 1e6,
            }
        )
        out["vehicle_pose"].append({**key, f"{S.VP}.world_from_vehicle.transform": pose})
        depth = r.get("depth")
        if depth is not None and r.get("depth_format") != "float16":
            d = decode_depth(depth, r["depth_format"], r["width"], r["height"])
            depth = encode_depth(d, "float16")
        out["camera_depth"].append(
            {
                **key,
                S.KEY_CAMERA: FRONT,
                f"{S.CD}.depth": depth,
                f"{S.CD}.format": "float16",
                f"{S.CD}.width": int(r["width"]),
                f"{S.CD}.height": int(r["height"]),
                f"{S.CD}.coverage": r.get("coverage"),
            }
        )
    ego_of = {r["frame_index"]: (int(ts_us[i]), T_we[i]) for i, r in enumerate(rows)}
    return out, ego_of


def _calibration_row(seg: str, r0: dict, T_world_ego: np.ndarray, where: str) -> dict:
    """camera_calibration row: the rendered pinhole camera (zero distortion) and its pose on
    the vehicle at the run's first frame, in Waymo's camera axes."""
    K = _mat(r0["K"], 3, f"{where} K")
    T_wc = _mat(r0["T_world_camera"], 4, f"{where} T_world_camera")
    T_vehicle_waymocam = np.linalg.inv(T_world_ego) @ T_wc @ np.linalg.inv(T_WAYMOCAM_OPENCV)
    values = [float(x) for x in (K[0, 0], K[1, 1], K[0, 2], K[1, 2])] + [0.0] * 5
    return {
        S.KEY_SEGMENT: seg,
        S.KEY_CAMERA: FRONT,
        **{
            f"{S.CC}.intrinsic.{k}": float(v)
            for k, v in zip(S.INTRINSIC_FIELDS, values, strict=True)
        },
        f"{S.CC}.extrinsic.transform": T_vehicle_waymocam.reshape(-1).tolist(),
        f"{S.CC}.width": int(r0["width"]),
        f"{S.CC}.height": int(r0["height"]),
        f"{S.CC}.rolling_shutter_direction": GLOBAL_SHUTTER,
    }


def _box_rows(seg: str, actors: list[dict], ego_of: dict) -> tuple[list[dict], list[dict]]:
    """lidar_box rows (every actor, ego frame) and camera_box rows (actors with a 2D box)."""
    box3d, box2d = [], []
    tracks: dict[str, list[dict]] = defaultdict(list)
    for a in actors:
        if a["frame_index"] in ego_of:
            tracks[a["track_id"]].append(a)
    for tid, items in sorted(tracks.items()):
        items.sort(key=lambda a: a["frame_index"])
        t_s = np.array([ego_of[a["frame_index"]][0] for a in items], dtype=np.float64) / 1e6
        c_w = np.array([a["center_world"] for a in items], dtype=np.float64)
        vel_w, acc_w = _velocities(t_s, c_w)
        if len(items) == 1 and items[0].get("speed") is not None:
            yaw = float(items[0]["yaw_world"])
            vel_w[0] = float(items[0]["speed"]) * np.array([np.cos(yaw), np.sin(yaw), 0.0])
        # The motion model's own values where the dataset has them (not finite differences).
        if all(a.get("velocity_world") is not None for a in items):
            vel_w = np.array([a["velocity_world"] for a in items], dtype=np.float64)
        if all(a.get("acceleration_world") is not None for a in items):
            acc_w = np.array([a["acceleration_world"] for a in items], dtype=np.float64)
        for j, a in enumerate(items):
            ts, T = ego_of[a["frame_index"]]
            R = T[:3, :3]
            heading = float(wrap_angle(float(a["yaw_world"]) - float(yaw_of(T))))
            if heading >= np.pi:  # v2 headings lie in [-pi, pi)
                heading -= 2 * np.pi
            btype = BOX_TYPES.get(a["label"], 0)
            box3d.append(
                {
                    S.KEY_SEGMENT: seg,
                    S.KEY_TIMESTAMP: ts,
                    S.KEY_LASER_OBJECT: tid,
                    **_xyz(f"{S.LB}.box.center", R.T @ (c_w[j] - T[:3, 3])),
                    **_xyz(f"{S.LB}.box.size", np.asarray(a["size"], dtype=np.float64)),
                    f"{S.LB}.box.heading": heading,
                    f"{S.LB}.type": btype,
                    f"{S.LB}.num_lidar_points_in_box": None,
                    f"{S.LB}.num_top_lidar_points_in_box": None,
                    **_xyz(f"{S.LB}.speed", R.T @ vel_w[j]),
                    **_xyz(f"{S.LB}.acceleration", None if acc_w is None else R.T @ acc_w[j]),
                    f"{S.LB}.difficulty_level.detection": None,
                    f"{S.LB}.difficulty_level.tracking": None,
                }
            )
            if a.get("box2d") is not None:
                x0, y0, x1, y1 = (float(x) for x in a["box2d"])
                box2d.append(
                    {
                        S.KEY_SEGMENT: seg,
                        S.KEY_TIMESTAMP: ts,
                        S.KEY_CAMERA: FRONT,
                        S.KEY_CAMERA_OBJECT: tid,
                        f"{S.CB}.box.center.x": (x0 + x1) / 2,
                        f"{S.CB}.box.center.y": (y0 + y1) / 2,
                        f"{S.CB}.box.size.x": x1 - x0,
                        f"{S.CB}.box.size.y": y1 - y0,
                        f"{S.CB}.type": btype,
                        f"{S.CB}.difficulty_level.detection": None,
                        f"{S.CB}.difficulty_level.tracking": None,
                    }
                )
    return box3d, box2d


class WaymoV2Exporter(Exporter):
    """Native p4dsim dataset -> Waymo Open Dataset v2 components (see module docstring)."""

    name: ClassVar[str] = "waymo-v2"
    description: ClassVar[str] = (
        "Waymo Open Dataset v2 components: camera_image, camera_calibration, camera_box, "
        "vehicle_pose, lidar_box (+ p4dsim camera_depth)"
    )

    def export(self, dataset_dir: Path, out_dir: Path) -> ExportSummary:
        from p4dsim.io.dataset import read_table

        dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise OutputError(f"export target '{out_dir}' exists and is not a folder")
        frames = read_table(dataset_dir, "frames").to_pylist()
        actors = read_table(dataset_dir, "actors").to_pylist()
        runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for f in frames:
            runs[(f["run_id"], f["variant_id"])].append(f)
        actors_by_run: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for a in actors:
            actors_by_run[(a["run_id"], a["variant_id"])].append(a)

        n_frames = n_objects = 0
        for (run_id, variant_id), rows in sorted(runs.items()):
            rows.sort(key=lambda r: r["frame_index"])
            seg = segment_name(rows[0].get("source_log") or "", run_id, variant_id)
            where = f"{dataset_dir} run '{run_id}' variant '{variant_id}'"
            components, ego_of = _frame_rows(seg, rows, where)
            components["camera_calibration"] = [
                _calibration_row(seg, rows[0], ego_of[rows[0]["frame_index"]][1], where)
            ]
            box3d, box2d = _box_rows(seg, actors_by_run[(run_id, variant_id)], ego_of)
            components["lidar_box"] = box3d
            components["camera_box"] = box2d
            for component, table_rows in components.items():
                table = pa.Table.from_pylist(table_rows, schema=S.COMPONENTS[component])
                _write_parquet(table, out_dir / component / f"{seg}.parquet")
            n_frames += len(rows)
            n_objects += len(box3d)
        return ExportSummary(out_dir=out_dir, frames=n_frames, objects=n_objects)
