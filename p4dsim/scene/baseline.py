"""The naive novel-view baseline scenes are measured against: LiDAR points coloured from the
source image, z-buffered into the new view, gaps of up to ``fill_px`` pixels filled from the
nearest neighbouring point, every other pixel copied from the source image."""

from __future__ import annotations

import numpy as np

from p4dsim.geometry import inv_pose, transform_points
from p4dsim.types import Camera


def lidar_splat(
    image: np.ndarray,  # uint8 [H, W, 3] source image
    lidar_ego: np.ndarray,  # [N, 3] source ego frame
    camera: Camera,  # source camera
    T_dst_src: np.ndarray,  # [4, 4] maps source camera coordinates to target camera coordinates
    K: np.ndarray,  # [3, 3] target intrinsics
    width: int,
    height: int,
    fill_px: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8 [height, width, 3], depth float32 [height, width] camera z, 0 = none)."""
    H0, W0 = camera.height, camera.width
    p = transform_points(inv_pose(camera.T_ego_camera), np.asarray(lidar_ego, np.float64))
    z = p[:, 2]
    ok = z > 0.5
    p = p[ok]
    u = np.floor(camera.K[0, 0] * p[:, 0] / p[:, 2] + camera.K[0, 2]).astype(np.int64)
    v = np.floor(camera.K[1, 1] * p[:, 1] / p[:, 2] + camera.K[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < W0) & (v >= 0) & (v < H0)
    p, col = p[inside], image[v[inside], u[inside]]
    q = transform_points(np.asarray(T_dst_src, np.float64), p)
    zq = q[:, 2]
    ok = zq > 0.1
    q, col, zq = q[ok], col[ok], zq[ok]
    uq = np.floor(K[0, 0] * q[:, 0] / zq + K[0, 2]).astype(np.int64)
    vq = np.floor(K[1, 1] * q[:, 1] / zq + K[1, 2]).astype(np.int64)
    inside = (uq >= 0) & (uq < width) & (vq >= 0) & (vq < height)
    uq, vq, zq, col = uq[inside], vq[inside], zq[inside], col[inside]
    order = np.argsort(-zq)  # far first, so nearer points overwrite
    depth = np.zeros((height, width), np.float32)
    rgb = np.zeros((height, width, 3), np.uint8)
    depth[vq[order], uq[order]] = zq[order]
    rgb[vq[order], uq[order]] = col[order]
    # Fill gaps of up to fill_px pixels from the nearest point around.
    best_d = np.where(depth > 0, depth, np.inf)
    best_c = rgb.copy()
    pad = fill_px
    dp = np.pad(np.where(depth > 0, depth, np.inf), pad, constant_values=np.inf)
    cp = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)))
    empty = depth <= 0
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            if dx == 0 and dy == 0:
                continue
            d = dp[pad + dy : pad + dy + height, pad + dx : pad + dx + width]
            c = cp[pad + dy : pad + dy + height, pad + dx : pad + dx + width]
            take = empty & (d < best_d)
            best_d = np.where(take, d, best_d)
            best_c[take] = c[take]
    filled = np.isfinite(best_d)
    if (height, width) == image.shape[:2]:
        src = image
    else:
        import cv2

        src = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    out = np.where(filled[..., None], best_c, src)
    return out.astype(np.uint8), np.where(filled, best_d, 0).astype(np.float32)
