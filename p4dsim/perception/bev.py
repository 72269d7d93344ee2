"""Bird's-eye images of a LiDAR sweep with detected actors (OpenCV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from p4dsim.perception.track import DetectedActor


def bev_image(
    points: np.ndarray,
    actors: list[DetectedActor],
    range_m: float = 50.0,
    px_per_m: float = 8.0,
    arrow_s: float = 1.0,
) -> np.ndarray:
    """A bird's-eye view, uint8 BGR [S, S, 3] with S = 2 * range_m * px_per_m: ego-frame points
    [N, 3] (grey, brighter higher up), actor boxes (green: moving, yellow: matched and still,
    red: unmatched, assumed static), velocity arrows (where each actor is ``arrow_s`` seconds
    later) and the ego at the centre, +x (forward) up, +y (left) to the left."""
    import cv2

    S = int(round(2 * range_m * px_per_m))
    img = np.zeros((S, S, 3), np.uint8)

    def px(xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(xy)
        col = S / 2 - xy[:, 1] * px_per_m
        row = S / 2 - xy[:, 0] * px_per_m
        return np.stack([col, row], axis=1)

    p = np.asarray(points, dtype=np.float64)
    uv = np.round(px(p[:, :2])).astype(int)
    ok = (uv[:, 0] >= 0) & (uv[:, 0] < S) & (uv[:, 1] >= 0) & (uv[:, 1] < S)
    z = p[ok, 2]
    shade = np.clip(70 + (z - np.percentile(z, 5)) * 60, 60, 230).astype(np.uint8)
    img[uv[ok, 1], uv[ok, 0]] = shade[:, None]
    for r in range(10, int(range_m) + 1, 10):
        cv2.circle(img, (S // 2, S // 2), int(r * px_per_m), (60, 40, 40), 1, cv2.LINE_AA)
    ego = np.array([[2.4, 0.9], [2.4, -0.9], [-1.8, -0.9], [-1.8, 0.9]])
    cv2.polylines(img, [np.round(px(ego)).astype(np.int32)], True, (255, 160, 0), 2, cv2.LINE_AA)
    for i, a in enumerate(actors):
        c = a.cluster
        ca, sa = np.cos(a.yaw), np.sin(a.yaw)
        L, W = c.size[0] / 2, c.size[1] / 2
        local = np.array([[L, W], [L, -W], [-L, -W], [-L, W]])
        corners = local @ np.array([[ca, sa], [-sa, ca]]) + c.center[:2]
        colour = (0, 0, 255) if a.static else (0, 220, 0) if a.speed > 0 else (0, 220, 220)
        cv2.polylines(img, [np.round(px(corners)).astype(np.int32)], True, colour, 2, cv2.LINE_AA)
        front = np.round(px(c.center[:2] + np.array([ca, sa]) * L)[0]).astype(int)
        cv2.circle(img, tuple(int(v) for v in front), 2, colour, -1)
        if a.speed > 0:
            p0 = np.round(px(c.center[:2])[0]).astype(int)
            p1 = np.round(px(c.center[:2] + a.velocity[:2] * arrow_s)[0]).astype(int)
            cv2.arrowedLine(
                img,
                tuple(int(v) for v in p0),
                tuple(int(v) for v in p1),
                (255, 255, 255),
                2,
                cv2.LINE_AA,
                tipLength=0.2,
            )
        label = f"auto{i} {a.speed:.1f}m/s"
        at = np.round(px(c.center[:2] + np.array([0.0, -W - 0.8]))[0]).astype(int)
        cv2.putText(
            img,
            label,
            (int(at[0]), int(at[1])),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            colour,
            1,
            cv2.LINE_AA,
        )
    return img


def write_bev(path: str | Path, points: np.ndarray, actors: list[DetectedActor], **kw) -> Path:
    """Write :func:`bev_image` to a PNG file; returns its path."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), bev_image(points, actors, **kw)):
        from p4dsim.errors import P4DSimError

        raise P4DSimError(f"could not write the bird's-eye PNG '{path}': check the folder")
    return path
