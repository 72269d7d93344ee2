"""Building a scene at the resolution a run renders at, not the source camera's.

A scene holds one Gaussian per source pixel (per stride²); rendering it at a quarter of the
source size still pays for every one of them in the build, in memory and in rasterization.
When a scenario's ``camera`` asks for a smaller image than the source camera's, the source
frame is resampled first (area averaging, intrinsics scaled: the same rule as
:meth:`p4dsim.types.Camera.with_resolution`), so the scene is built at the requested
resolution. A larger request keeps the source resolution (upsampling adds no information).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from p4dsim.types import Frame


def requested_size(camera_model, source_width: int, source_height: int) -> tuple[int, int]:
    """(width, height) a scenario's ``camera`` section asks for (the source's when unset);
    one side given: the other follows the source aspect ratio."""
    w, h = camera_model.width, camera_model.height
    if w is None and h is None:
        return source_width, source_height
    if w is None:
        w = round(source_width * h / source_height)
    if h is None:
        h = round(source_height * w / source_width)
    return int(w), int(h)


def frame_at_resolution(frame: Frame, camera_model) -> Frame:
    """``frame`` resampled to the scenario camera's size when that is smaller on both axes."""
    import cv2

    cam = frame.camera
    w, h = requested_size(camera_model, cam.width, cam.height)
    if w >= cam.width or h >= cam.height:
        return frame
    image = cv2.resize(frame.image, (w, h), interpolation=cv2.INTER_AREA)
    # pixel-aligned extras (arrays at the source size) no longer line up: dropped
    extras = {k: v for k, v in frame.extras.items() if not isinstance(v, np.ndarray)}
    return dataclasses.replace(frame, image=image, camera=cam.with_resolution(w, h), extras=extras)
