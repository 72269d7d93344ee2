"""``kitti`` exporter: a native p4dsim dataset -> the KITTI object benchmark layout.

Output (``OUT/``), one ``NNNNNN`` id per dataset frame in (run_id, variant_id, frame_index)
order:

* ``image_2/NNNNNN.png``: the rendered RGB;
* ``label_2/NNNNNN.txt``: one row per actor visible in the image (``box2d`` not null): type,
  truncated, occluded (0/1/2 from the rendered visibility), alpha, 2D box, dimensions,
  location and rotation_y in the rendered camera's frame (which is its own rectified frame);
* ``calib/NNNNNN.txt``: P0..P3 = the rendered K with zero baseline, R0_rect = identity,
  Tr_velo_to_cam = the camera-from-ego pose of the frame (so the ``kitti-object`` reader puts
  the boxes back into the dataset's ego frame), Tr_imu_to_velo = identity;
* ``depth/NNNNNN.png``: uint16 camera-z depth in metres × 256, 0 = no depth (sky, nothing
  rendered, or beyond 255.99 m), the KITTI depth benchmark convention;
* ``mapping.csv``: ``kitti_id,run_id,variant_id,frame_index``.

Pixel coordinates are converted from p4dsim's convention (pixel centres at integer + 0.5) to
KITTI's (centres at integers). Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from p4dsim.errors import OutputError, SourceError
from p4dsim.geometry import project, transform_points
from p4dsim.plugins import Exporter, ExportSummary
from p4dsim.types import Box3D
from p4dsim_kitti.calib import p4dsim_to_kitti_K, p4dsim_to_kitti_pixels
from p4dsim_kitti.labels import box_to_label, format_label_line, kitti_type

#: visible fraction thresholds of KITTI's occlusion levels 0 (fully visible) and 1 (partly)
OCCLUSION_THRESHOLDS = (0.7, 0.4)
MAX_DEPTH_M = 65535 / 256.0


def _mat(values, n: int, where: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.size != n * n:
        raise SourceError(f"{where}: expected {n * n} numbers (row-major {n}x{n}), got {a.size}")
    return a.reshape(n, n)


def depth_png(depth: np.ndarray) -> bytes:
    """float32 [H, W] metres (inf = sky, 0 = none) -> 16-bit PNG bytes of metres × 256."""
    import cv2

    d = np.asarray(depth, dtype=np.float64)
    ok = np.isfinite(d) & (d > 0) & (d * 256.0 <= 65535.0)
    u16 = np.where(ok, np.round(np.where(ok, d, 0.0) * 256.0), 0).astype(np.uint16)
    good, buf = cv2.imencode(".png", u16)
    if not good:
        raise OutputError("OpenCV failed to encode a depth PNG")
    return buf.tobytes()


def calib_text(K: np.ndarray, T_cam_ego: np.ndarray) -> str:
    """KITTI object calibration text for a camera with p4dsim intrinsics ``K`` [3, 3] and
    camera-from-ego pose ``T_cam_ego`` [4, 4]."""
    P = np.zeros((3, 4))
    P[:, :3] = p4dsim_to_kitti_K(K)

    def row(name: str, m: np.ndarray) -> str:
        return name + ": " + " ".join(f"{v:.12e}" for v in np.asarray(m).reshape(-1))

    lines = [row(f"P{i}", P) for i in range(4)]
    lines.append(row("R0_rect", np.eye(3)))
    lines.append(row("Tr_velo_to_cam", T_cam_ego[:3, :]))
    lines.append(row("Tr_imu_to_velo", np.eye(4)[:3, :]))
    return "\n".join(lines) + "\n"


def _visibility(
    box: Box3D, T_cam_ego: np.ndarray, K: np.ndarray, width: int, height: int
) -> tuple[float, float]:
    """(area of the projected box hull in pixels, share of it inside the image)."""
    from shapely.geometry import Polygon
    from shapely.geometry import box as rect

    pts = transform_points(T_cam_ego, box.corners())
    if np.any(pts[:, 2] <= 0.05):
        return 0.0, 0.0
    uv, _ = project(K, pts)
    hull = Polygon(uv).convex_hull
    if hull.area <= 0:
        return 0.0, 0.0
    inside = hull.intersection(rect(0, 0, width, height)).area
    return float(hull.area), float(inside / hull.area)


class KittiExporter(Exporter):
    name = "kitti"
    description = "KITTI object layout (image_2, label_2, calib, depth) for detector training"

    def export(self, dataset_dir: Path, out_dir: Path) -> ExportSummary:
        from p4dsim.io.dataset import atomic_write_bytes, export_rows

        dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
        frames, by_frame = export_rows(dataset_dir, out_dir)
        frames.sort(key=lambda r: (r["run_id"], r["variant_id"], r["frame_index"]))
        for sub in ("image_2", "label_2", "calib", "depth"):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
        mapping = ["kitti_id,run_id,variant_id,frame_index"]
        n_objects = 0
        for idx, fr in enumerate(frames):
            key = (fr["run_id"], fr["variant_id"], fr["frame_index"])
            where = f"{dataset_dir}: frame {key}"
            name = f"{idx:06d}"
            W, H = int(fr["width"]), int(fr["height"])
            K = _mat(fr["K"], 3, f"{where}: K")
            T_wc = _mat(fr["T_world_camera"], 4, f"{where}: T_world_camera")
            T_we = _mat(fr["T_world_ego"], 4, f"{where}: T_world_ego")
            T_cam_ego = np.linalg.inv(T_wc) @ T_we
            T_ego_cam = np.linalg.inv(T_cam_ego)
            T_ego_world = np.linalg.inv(T_we)
            rows = []
            for a in sorted(by_frame.get(key, []), key=lambda a: a["track_id"]):
                if a["box2d"] is None:
                    continue
                c_ego = transform_points(T_ego_world, np.asarray([a["center_world"]]))[0]
                yaw_w = float(a["yaw_world"])
                h = T_ego_world[:3, :3] @ np.array([np.cos(yaw_w), np.sin(yaw_w), 0.0])
                box = Box3D(
                    track_id=a["track_id"],
                    label=a["label"],
                    center=c_ego,
                    size=np.asarray(a["size"], dtype=np.float64),
                    yaw=float(np.arctan2(h[1], h[0])),
                )
                hull_area, inside = _visibility(box, T_cam_ego, K, W, H)
                trunc = a.get("truncation")
                trunc = float(trunc) if trunc is not None else 1.0 - inside
                vis = a.get("visible_fraction")
                if vis is None:
                    vis = (a.get("visible_pixels") or 0) / max(hull_area * inside, 1.0)
                occ = (
                    0
                    if vis >= OCCLUSION_THRESHOLDS[0]
                    else 1
                    if vis >= OCCLUSION_THRESHOLDS[1]
                    else 2
                )
                bbox = p4dsim_to_kitti_pixels(np.asarray(a["box2d"], dtype=np.float64))
                bbox = np.clip(bbox, 0, [W - 1, H - 1, W - 1, H - 1])
                lb = box_to_label(
                    box,
                    T_ego_cam,
                    kitti_type(a["label"], a["size"]),
                    bbox,
                    float(np.clip(trunc, 0.0, 1.0)),
                    occ,
                )
                rows.append(format_label_line(lb))
            n_objects += len(rows)
            rgb = fr["rgb"]
            if fr.get("rgb_format") != "png":
                from p4dsim.io.codecs import decode_rgb, encode_rgb

                rgb = encode_rgb(decode_rgb(rgb), "png")
            atomic_write_bytes(out_dir / "image_2" / f"{name}.png", rgb)
            atomic_write_bytes(
                out_dir / "label_2" / f"{name}.txt",
                ("\n".join(rows) + "\n" if rows else "").encode(),
            )
            atomic_write_bytes(out_dir / "calib" / f"{name}.txt", calib_text(K, T_cam_ego).encode())
            if fr.get("depth") is not None:
                from p4dsim.io.codecs import decode_depth

                depth = decode_depth(fr["depth"], fr["depth_format"], W, H)
                atomic_write_bytes(out_dir / "depth" / f"{name}.png", depth_png(depth))
            mapping.append(f"{name},{key[0]},{key[1]},{key[2]}")
        atomic_write_bytes(out_dir / "mapping.csv", ("\n".join(mapping) + "\n").encode())
        return ExportSummary(out_dir=out_dir, frames=len(frames), objects=n_objects)
