"""Preview videos of a dataset: RGB beside colour-mapped depth, with a depth legend.

MP4 through OpenCV's ``VideoWriter`` (codec ``mp4v``); when OpenCV cannot open an MP4 encoder
the preview is an animated GIF (Pillow) instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from p4dsim.errors import OutputError
from p4dsim.io.codecs import decode_depth, decode_rgb
from p4dsim.io.dataset import read_table

#: depth range of the colour map (m); nearer is red, farther blue
DEPTH_MIN, DEPTH_MAX = 1.0, 80.0
_LEGEND_H = 22
_TICKS_M = (2, 5, 10, 20, 40, 80)


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """float32 [H, W] metres -> uint8 [H, W, 3] RGB (turbo on log depth; sky and empty black)."""
    import cv2

    d = np.asarray(depth, dtype=np.float32)
    ok = np.isfinite(d) & (d > 0)
    x = np.zeros(d.shape, dtype=np.float32)
    x[ok] = np.log(np.clip(d[ok], DEPTH_MIN, DEPTH_MAX) / DEPTH_MIN) / np.log(DEPTH_MAX / DEPTH_MIN)
    bgr = cv2.applyColorMap(np.round(255 * (1 - x)).astype(np.uint8), cv2.COLORMAP_TURBO)
    rgb = bgr[..., ::-1].copy()
    rgb[~ok] = 0
    return rgb


def legend(width: int) -> np.ndarray:
    """uint8 [22, width, 3] RGB colour bar of the depth map with tick labels in metres."""
    import cv2

    ramp = np.exp(np.linspace(np.log(DEPTH_MIN), np.log(DEPTH_MAX), width, dtype=np.float32))
    bar = colorize_depth(np.repeat(ramp[None, :], 10, axis=0))
    out = np.zeros((_LEGEND_H, width, 3), dtype=np.uint8)
    out[:10] = bar
    for m in _TICKS_M:
        u = int(round(np.log(m / DEPTH_MIN) / np.log(DEPTH_MAX / DEPTH_MIN) * (width - 1)))
        text = f"{m}m"
        u = min(max(u - 6, 0), max(width - 8 * len(text), 0))
        cv2.putText(out, text, (u, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1)
    return out


def compose(rgb: np.ndarray, depth: np.ndarray, caption: str, alert: bool = False) -> np.ndarray:
    """One preview frame: RGB [H, W, 3] beside its colour-mapped depth, a legend under the
    depth and a caption under the RGB (red border when ``alert``) -> uint8 [H + 22, 2W, 3]."""
    import cv2

    H, W = depth.shape
    top = np.concatenate([rgb, colorize_depth(depth)], axis=1)
    bottom = np.zeros((_LEGEND_H, 2 * W, 3), dtype=np.uint8)
    bottom[:, W:] = legend(W)
    cv2.putText(bottom, caption, (3, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
    img = np.concatenate([top, bottom], axis=0)
    if alert:
        img[:3], img[-3:], img[:, :3], img[:, -3:] = (
            (255, 0, 0),
            (255, 0, 0),
            (255, 0, 0),
            (255, 0, 0),
        )
    return np.ascontiguousarray(img)


def write_preview(dataset_dir: Path, path: Path | None = None, fps: float | None = None) -> Path:
    """Write the preview video of a dataset (every variant in turn) and return its path.

    path: ``.mp4`` or ``.gif`` (default ``DATASET/preview.mp4``; ``.gif`` when no MP4 encoder
    is available); fps: frame rate (default: the frames' own rate). Frames with a collision
    get a red border; the caption names the variant, time, and minimum distance.
    """
    import cv2

    dataset_dir = Path(dataset_dir)
    table = read_table(dataset_dir, "frames")
    if table.num_rows == 0:
        raise OutputError(f"dataset '{dataset_dir}' has no frames to preview")
    rows = table.select(
        ["variant_id", "t_s", "rgb", "depth", "depth_format", "width", "height"]
        + ["collision", "min_distance_m"]
    ).to_pylist()
    if fps is None:
        ts = sorted({r["t_s"] for r in rows})
        fps = 1.0 / (ts[1] - ts[0]) if len(ts) > 1 and ts[1] > ts[0] else 10.0
    frames = []
    for r in rows:
        rgb = decode_rgb(r["rgb"])
        depth = decode_depth(r["depth"], r["depth_format"], r["width"], r["height"])
        dist = "" if r["min_distance_m"] is None else f"  min dist {r['min_distance_m']:.1f} m"
        hit = "  COLLISION" if r["collision"] else ""
        caption = f"{r['variant_id']}  t={r['t_s']:.2f} s{dist}{hit}"
        frames.append(compose(rgb, depth, caption, bool(r["collision"])))
    path = Path(path) if path is not None else dataset_dir / "preview.mp4"
    h, w = frames[0].shape[:2]
    if path.suffix.lower() == ".mp4":
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if writer.isOpened():
            for f in frames:
                writer.write(f[..., ::-1])
            writer.release()
            if path.exists() and path.stat().st_size > 0:
                return path
        path = path.with_suffix(".gif")
    return _write_gif(path, frames, fps)


def _write_gif(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    try:
        from PIL import Image
    except ImportError:
        raise OutputError(
            "no video encoder: OpenCV cannot write MP4 here and Pillow (for a GIF) is not "
            "installed; install pillow or an OpenCV build with an MP4 encoder"
        ) from None
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    return path
