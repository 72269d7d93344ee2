"""Contact sheets: rendered views as a PNG grid, RGB over colour-coded depth."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

#: depth colour scale: inverse depth between these distances (m)
NEAR_M, FAR_M = 2.0, 80.0
#: colour (RGB) of pixels with no depth (nothing rendered) and of sky (infinite depth)
EMPTY_RGB = (255, 0, 255)
SKY_RGB = (20, 20, 40)


def colour_depth(depth: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] picture of a depth map [H, W] (m): inverse depth on the turbo scale
    (near red, far blue), sky (inf) dark, no depth (0 or NaN) magenta."""
    d = np.asarray(depth, dtype=np.float64)
    empty = ~(d > 0)  # 0 and NaN
    sky = np.isinf(d)
    inv = np.clip(1.0 / np.where(empty | sky, FAR_M, d), 1.0 / FAR_M, 1.0 / NEAR_M)
    x = (inv - 1.0 / FAR_M) / (1.0 / NEAR_M - 1.0 / FAR_M)
    bgr = cv2.applyColorMap(np.round(x * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    out[sky] = SKY_RGB
    out[empty] = EMPTY_RGB
    return out


def _label(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((18, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def contact_sheet(
    views: Sequence[tuple[str, np.ndarray, np.ndarray]], columns: int = 2, max_width: int = 1242
) -> np.ndarray:
    """uint8 RGB grid of ``views`` (title, rgb [H, W, 3] uint8, depth [H, W]): each cell the
    image over its depth picture, titled; cells scaled to at most ``max_width`` pixels wide."""
    cells = []
    for title, rgb, depth in views:
        cell = np.vstack([rgb, colour_depth(depth)])
        s = min(1.0, max_width / cell.shape[1])
        if s < 1.0:
            cell = cv2.resize(cell, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        cells.append(_label(cell, title))
    h = max(c.shape[0] for c in cells)
    w = max(c.shape[1] for c in cells)
    pad = [
        np.pad(c, ((0, h - c.shape[0]), (0, w - c.shape[1]), (0, 0)), constant_values=255)
        for c in cells
    ]
    while len(pad) % columns:
        pad.append(np.full((h, w, 3), 255, np.uint8))
    rows = [np.hstack(pad[i : i + columns]) for i in range(0, len(pad), columns)]
    return np.vstack(rows)


def write_contact_sheet(
    path: Path, views: Sequence[tuple[str, np.ndarray, np.ndarray]], columns: int = 2
) -> Path:
    """Write :func:`contact_sheet` of ``views`` as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = contact_sheet(views, columns)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path
