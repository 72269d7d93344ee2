"""``nuscenes`` exporter: a native p4dsim dataset -> a nuScenes-layout folder.

Output (``OUT/``), loadable with ``NuScenes(version="v1.0-p4dsim", dataroot=OUT)``:

* ``v1.0-p4dsim/*.json``: the 13 tables. Each (run, variant) of the dataset is one ``scene``
  (named ``p4dsim-<run>-<variant>``) with one ``log``; each rendered frame is one ``sample``
  (a keyframe) with one ``CAM_FRONT`` ``sample_data`` record, its ``ego_pose``
  (``T_world_ego``) and the ``calibrated_sensor`` of the rendered camera (intrinsics back in
  nuScenes' pixel convention, extrinsics ``T_ego_camera``). The world frame is the dataset's
  scene world (origin at the source frame's ego pose).
* ``sample_annotation``: one per actor row: the rendered box (centre, ``[w, l, h]``, yaw about
  z) in the world frame, ``instance`` = the actor's track within the scene, ``visibility``
  from the rendered visible fraction (nuScenes bins 0-40/40-60/60-80/80-100 %), attributes
  from the label and the speed, and ``num_lidar_pts`` = the actor's visible rendered pixels
  (rendered data have no LiDAR; this keeps pipelines that drop unobserved boxes working:
  boxes nothing of which is seen have 0), ``num_radar_pts`` = 0.
* ``category``: the 23 nuScenes categories. An actor keeps its source category where the
  source was a nuScenes scene still readable at the path in the manifest (track ids are
  instance tokens), else the generic category of its label
  (:data:`~p4dsim_nuscenes.categories.LABEL_TO_CATEGORY`).
* ``attribute``, ``visibility``, ``sensor``: the standard records.
* ``map``: one ``semantic_prior`` record whose mask ``maps/<token>.png`` is empty (p4dsim
  knows no drivable area; the devkit opens the file on load).
* ``samples/CAM_FRONT/<scene>__CAM_FRONT__<timestamp>.jpg``: the rendered RGB (JPEG).

Tokens are deterministic (UUID5 of the dataset's keys), so re-exporting writes the same
tables. Every file is written atomically.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from p4dsim.errors import OutputError, SourceError
from p4dsim.plugins import Exporter, ExportSummary
from p4dsim_nuscenes.categories import CATEGORIES, category_for_export
from p4dsim_nuscenes.log import PIXEL_OFFSET

VERSION = "v1.0-p4dsim"
CHANNEL = "CAM_FRONT"
_NS = uuid.UUID("5f0c2a4e-3a52-4c1e-9a57-6e7573636e65")

#: the standard nuScenes visibility records (token, level, description)
VISIBILITY = (
    ("1", "v0-40", "visibility of whole object is between 0 and 40%"),
    ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
    ("3", "v60-80", "visibility of whole object is between 60 and 80%"),
    ("4", "v80-100", "visibility of whole object is between 80 and 100%"),
)

#: the standard nuScenes attributes (name, description)
ATTRIBUTES = (
    ("vehicle.moving", "Vehicle is moving."),
    ("vehicle.stopped", "Vehicle, with a driver/rider in/on it, is currently stationary."),
    ("vehicle.parked", "Vehicle is stationary (usually for longer duration) with no driver."),
    ("cycle.with_rider", "There is a rider on the bicycle or motorcycle."),
    ("cycle.without_rider", "There is NO rider on the bicycle or motorcycle."),
    ("pedestrian.sitting_lying_down", "The human is sitting or lying down."),
    ("pedestrian.standing", "The human is standing."),
    ("pedestrian.moving", "The human is moving."),
)

#: speed (m/s) above which an actor counts as moving for its attribute
MOVING_SPEED = 0.5


def token(*parts: Any) -> str:
    """A deterministic 32-hex-digit nuScenes token of ``parts``."""
    return uuid.uuid5(_NS, "\x1f".join(str(p) for p in parts)).hex


def visibility_token(fraction: float | None) -> str:
    """nuScenes visibility token of a visible fraction in [0, 1] (None -> the lowest bin)."""
    f = 0.0 if fraction is None or not np.isfinite(fraction) else float(fraction)
    return "1" if f < 0.4 else "2" if f < 0.6 else "3" if f < 0.8 else "4"


def attribute_name(label: str, speed: float | None) -> str | None:
    moving = speed is not None and np.isfinite(speed) and speed > MOVING_SPEED
    if label == "vehicle":
        return "vehicle.moving" if moving else "vehicle.stopped"
    if label == "pedestrian":
        return "pedestrian.moving" if moving else "pedestrian.standing"
    if label == "cyclist":
        return "cycle.with_rider"
    return None


def matrix_to_quat(R: np.ndarray) -> list[float]:
    """(w, x, y, z) of a rotation matrix [3, 3], w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    m = (
        np.array(
            [
                [
                    R[0, 0] - R[1, 1] - R[2, 2],
                    R[1, 0] + R[0, 1],
                    R[2, 0] + R[0, 2],
                    R[2, 1] - R[1, 2],
                ],
                [
                    R[1, 0] + R[0, 1],
                    R[1, 1] - R[0, 0] - R[2, 2],
                    R[2, 1] + R[1, 2],
                    R[0, 2] - R[2, 0],
                ],
                [
                    R[2, 0] + R[0, 2],
                    R[2, 1] + R[1, 2],
                    R[2, 2] - R[0, 0] - R[1, 1],
                    R[1, 0] - R[0, 1],
                ],
                [
                    R[2, 1] - R[1, 2],
                    R[0, 2] - R[2, 0],
                    R[1, 0] - R[0, 1],
                    R[0, 0] + R[1, 1] + R[2, 2],
                ],
            ]
        )
        / 3.0
    )
    w, v = np.linalg.eigh(m)
    x, y, z, qw = v[:, int(np.argmax(w))]
    q = np.array([qw, x, y, z])
    q = q if q[0] >= 0 else -q
    return [float(a) for a in q / np.linalg.norm(q)]


def _mat(values: Any, n: int, where: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.size != n * n:
        raise SourceError(f"{where}: expected {n * n} numbers (row-major {n}x{n}), got {a.size}")
    return a.reshape(n, n)


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text or "x")


def source_categories(manifest: dict[str, Any]) -> dict[str, str]:
    """instance token -> category name of the dataset's nuScenes source, when the manifest's
    source is a nuScenes root that is still readable; else empty."""
    src = manifest.get("source") or {}
    if src.get("adapter") != "nuscenes" or not src.get("path"):
        return {}
    root = Path(str(src["path"])) / str(src.get("version", "v1.0-mini"))
    try:
        cats = {c["token"]: c["name"] for c in json.loads((root / "category.json").read_text())}
        inst = json.loads((root / "instance.json").read_text())
        return {i["token"]: cats[i["category_token"]] for i in inst if i["category_token"] in cats}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _empty_map_png() -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.zeros((100, 100), np.uint8))
    if not ok:
        raise OutputError("OpenCV failed to encode the map mask PNG")
    return buf.tobytes()


class NuScenesExporter(Exporter):
    name = "nuscenes"
    description = "nuScenes layout (13 tables + samples/CAM_FRONT/*.jpg) for BEV pipelines"

    def export(self, dataset_dir: Path, out_dir: Path) -> ExportSummary:
        from p4dsim.io.codecs import decode_rgb, encode_rgb
        from p4dsim.io.dataset import atomic_write_bytes, export_rows, read_manifest

        dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
        frames, by_frame = export_rows(dataset_dir, out_dir)
        manifest = read_manifest(dataset_dir)
        src_cats = source_categories(manifest)
        source_log = str((manifest.get("source") or {}).get("scene") or "")
        runs: dict[tuple[str, str], list[dict]] = {}
        for fr in frames:
            runs.setdefault((fr["run_id"], fr["variant_id"]), []).append(fr)

        T: dict[str, list[dict[str, Any]]] = {
            "category": [
                {"token": token("category", n), "name": n, "description": d} for n, d in CATEGORIES
            ],
            "attribute": [
                {"token": token("attribute", n), "name": n, "description": d} for n, d in ATTRIBUTES
            ],
            "visibility": [{"token": t, "level": lv, "description": d} for t, lv, d in VISIBILITY],
            "sensor": [
                {"token": token("sensor", CHANNEL), "channel": CHANNEL, "modality": "camera"}
            ],
        }
        for t in ("calibrated_sensor", "ego_pose", "log", "scene", "sample", "sample_data"):
            T[t] = []
        T["instance"], T["sample_annotation"] = [], []
        cat_token = {c["name"]: c["token"] for c in T["category"]}
        attr_token = {a["name"]: a["token"] for a in T["attribute"]}
        calib_tokens: dict[tuple, str] = {}
        (out_dir / "samples" / CHANNEL).mkdir(parents=True, exist_ok=True)
        (out_dir / VERSION).mkdir(parents=True, exist_ok=True)
        (out_dir / "maps").mkdir(parents=True, exist_ok=True)
        n_objects = 0
        for (run_id, variant_id), rows in sorted(runs.items()):
            rows.sort(key=lambda r: r["frame_index"])
            ts = [int(r["timestamp_us"]) for r in rows]
            if any(b <= a for a, b in zip(ts, ts[1:], strict=False)):
                raise SourceError(
                    f"{dataset_dir}: run {run_id!r} variant {variant_id!r} has frame timestamps "
                    "that do not increase; nuScenes samples need increasing timestamps"
                )
            name = f"p4dsim-{_clean(run_id)}-{_clean(variant_id)}"
            log_tok, scene_tok = (
                token("log", run_id, variant_id),
                token("scene", run_id, variant_id),
            )
            T["log"].append(
                {
                    "token": log_tok,
                    "logfile": f"p4dsim-{_clean(source_log or rows[0].get('source_log') or '')}",
                    "vehicle": "p4dsim",
                    "date_captured": _date(ts[0]),
                    "location": "p4dsim",
                }
            )
            s_toks = [token("sample", run_id, variant_id, r["frame_index"]) for r in rows]
            instances: dict[str, list[str]] = {}
            inst_cat: dict[str, str] = {}
            ann_rows: list[dict[str, Any]] = []
            for k, fr in enumerate(rows):
                fi = fr["frame_index"]
                where = f"{dataset_dir}: frame ({run_id}, {variant_id}, {fi})"
                W, H = int(fr["width"]), int(fr["height"])
                K = _mat(fr["K"], 3, f"{where}: K")
                T_wc = _mat(fr["T_world_camera"], 4, f"{where}: T_world_camera")
                T_we = _mat(fr["T_world_ego"], 4, f"{where}: T_world_ego")
                T_ec = np.linalg.inv(T_we) @ T_wc
                Kn = K.copy()
                Kn[0, 2] -= PIXEL_OFFSET
                Kn[1, 2] -= PIXEL_OFFSET
                key = (tuple(np.round(Kn, 6).ravel()), tuple(np.round(T_ec, 9).ravel()))
                if key not in calib_tokens:
                    calib_tokens[key] = token("calibrated_sensor", len(calib_tokens), key)
                    T["calibrated_sensor"].append(
                        {
                            "token": calib_tokens[key],
                            "sensor_token": token("sensor", CHANNEL),
                            "translation": [float(x) for x in T_ec[:3, 3]],
                            "rotation": matrix_to_quat(T_ec[:3, :3]),
                            "camera_intrinsic": Kn.tolist(),
                        }
                    )
                sd_tok = token("sample_data", run_id, variant_id, fi)
                ep_tok = token("ego_pose", run_id, variant_id, fi)
                T["ego_pose"].append(
                    {
                        "token": ep_tok,
                        "timestamp": ts[k],
                        "rotation": matrix_to_quat(T_we[:3, :3]),
                        "translation": [float(x) for x in T_we[:3, 3]],
                    }
                )
                T["sample"].append(
                    {
                        "token": s_toks[k],
                        "timestamp": ts[k],
                        "prev": s_toks[k - 1] if k > 0 else "",
                        "next": s_toks[k + 1] if k + 1 < len(rows) else "",
                        "scene_token": scene_tok,
                    }
                )
                fname = f"samples/{CHANNEL}/{name}__{CHANNEL}__{ts[k]}.jpg"
                prev_sd = token("sample_data", run_id, variant_id, rows[k - 1]["frame_index"])
                next_sd = (
                    token("sample_data", run_id, variant_id, rows[k + 1]["frame_index"])
                    if k + 1 < len(rows)
                    else ""
                )
                T["sample_data"].append(
                    {
                        "token": sd_tok,
                        "sample_token": s_toks[k],
                        "ego_pose_token": ep_tok,
                        "calibrated_sensor_token": calib_tokens[key],
                        "timestamp": ts[k],
                        "fileformat": "jpg",
                        "is_key_frame": True,
                        "height": H,
                        "width": W,
                        "filename": fname,
                        "prev": prev_sd if k > 0 else "",
                        "next": next_sd,
                    }
                )
                rgb = fr["rgb"]
                if fr.get("rgb_format") != "jpeg":
                    rgb = encode_rgb(decode_rgb(rgb), "jpeg")
                atomic_write_bytes(out_dir / fname, rgb)
                for a in sorted(by_frame.get((run_id, variant_id, fi), []), key=_track):
                    inst = token("instance", run_id, variant_id, a["track_id"])
                    ann = token("sample_annotation", run_id, variant_id, fi, a["track_id"])
                    instances.setdefault(inst, []).append(ann)
                    inst_cat.setdefault(
                        inst, category_for_export(a["label"], src_cats.get(a["track_id"]))
                    )
                    l, w, h = (float(x) for x in a["size"])
                    yaw = float(a["yaw_world"])
                    attr = attribute_name(a["label"], a.get("speed"))
                    ann_rows.append(
                        {
                            "token": ann,
                            "sample_token": s_toks[k],
                            "instance_token": inst,
                            "visibility_token": visibility_token(a.get("visible_fraction")),
                            "attribute_tokens": [attr_token[attr]] if attr else [],
                            "translation": [float(x) for x in a["center_world"]],
                            "size": [w, l, h],
                            "rotation": [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))],
                            "prev": "",
                            "next": "",
                            "num_lidar_pts": int(a.get("visible_pixels") or 0),
                            "num_radar_pts": 0,
                        }
                    )
            by_tok = {r["token"]: r for r in ann_rows}
            for inst, anns in instances.items():
                for j, ann in enumerate(anns):
                    by_tok[ann]["prev"] = anns[j - 1] if j > 0 else ""
                    by_tok[ann]["next"] = anns[j + 1] if j + 1 < len(anns) else ""
                T["instance"].append(
                    {
                        "token": inst,
                        "category_token": cat_token[inst_cat[inst]],
                        "nbr_annotations": len(anns),
                        "first_annotation_token": anns[0],
                        "last_annotation_token": anns[-1],
                    }
                )
            T["sample_annotation"] += ann_rows
            n_objects += len(ann_rows)
            T["scene"].append(
                {
                    "token": scene_tok,
                    "log_token": log_tok,
                    "nbr_samples": len(rows),
                    "first_sample_token": s_toks[0],
                    "last_sample_token": s_toks[-1],
                    "name": name,
                    "description": f"p4dsim run {run_id}, variant {variant_id}",
                }
            )
        map_tok = token("map", dataset_dir.name)
        T["map"] = [
            {
                "token": map_tok,
                "category": "semantic_prior",
                "filename": f"maps/{map_tok}.png",
                "log_tokens": [r["token"] for r in T["log"]],
            }
        ]
        atomic_write_bytes(out_dir / "maps" / f"{map_tok}.png", _empty_map_png())
        for name, recs in T.items():
            atomic_write_bytes(out_dir / VERSION / f"{name}.json", json.dumps(recs).encode())
        return ExportSummary(out_dir=out_dir, frames=len(frames), objects=n_objects)


def _date(timestamp_us: int) -> str:
    """YYYY-MM-DD (UTC) of a source-clock timestamp (nuScenes: microseconds since 1970)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp_us / 1e6, tz=UTC).strftime("%Y-%m-%d")


def _track(a: dict[str, Any]) -> str:
    return str(a["track_id"])
