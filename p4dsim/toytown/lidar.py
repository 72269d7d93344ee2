"""Toytown's LiDAR: a 64-beam spinning sensor, ray-cast with azimuth culling of every
primitive."""

from __future__ import annotations

import numpy as np

#: LiDAR (64 beams, spinning) centre in the ego frame; axes as the ego frame
LIDAR_POSITION = np.array([0.0, 0.0, 1.73])
LIDAR_ELEVATIONS_DEG = np.linspace(-24.8, 2.0, 64)
LIDAR_AZIMUTH_STEP_DEG = 360.0 / 1028
LIDAR_MAX_RANGE = 100.0


class Lidar:
    """LiDAR sweeps (mixed into :class:`~p4dsim.toytown.world.ToytownWorld`)."""

    def lidar_directions(self) -> np.ndarray:
        """Unit beam directions [64 * A, 3] in the ego frame (rows: elevations low to high,
        columns: azimuths from -π in steps of :data:`LIDAR_AZIMUTH_STEP_DEG`)."""
        el = np.deg2rad(LIDAR_ELEVATIONS_DEG)
        n_az = int(round(360.0 / LIDAR_AZIMUTH_STEP_DEG))
        az = -np.pi + np.arange(n_az) * np.deg2rad(LIDAR_AZIMUTH_STEP_DEG)
        e, a = np.meshgrid(el, az, indexing="ij")
        return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1).reshape(
            -1, 3
        )

    def lidar(self, T_world_ego, t) -> np.ndarray:
        """A 64-beam spinning LiDAR sweep at time t (s) from ego pose T_world_ego [4, 4]:
        float32 [N, 3] points in the ego frame, one per beam that hits a surface within
        :data:`LIDAR_MAX_RANGE` m (no motion distortion, no noise)."""
        T = np.asarray(T_world_ego, dtype=np.float64)
        scene = self._scene(float(t))
        d_ego = self.lidar_directions()
        n_el = len(LIDAR_ELEVATIONS_DEG)
        n_az = len(d_ego) // n_el
        step = np.deg2rad(LIDAR_AZIMUTH_STEP_DEG)
        o = T[:3, :3] @ LIDAR_POSITION + T[:3, 3]
        D = d_ego @ T[:3, :3].T
        # azimuth culling of every primitive, in the sensor's axes
        corners = scene.corners()
        rel = (corners - o) @ T[:3, :3]
        rects: list = []
        for k in range(len(rel)):
            p = rel[k]
            lo, hi = p[:, :2].min(0), p[:, :2].max(0)
            dmin = np.linalg.norm(np.maximum(np.maximum(lo, -hi), 0.0))
            if dmin > LIDAR_MAX_RANGE:
                rects.append(np.empty(0, dtype=np.int64))
                continue
            if lo[0] <= 0.0 <= hi[0] and lo[1] <= 0.0 <= hi[1]:
                rects.append(None)
                continue
            az = np.arctan2(p[:, 1], p[:, 0])
            ac = np.arctan2(p[:, 1].mean(), p[:, 0].mean())
            rel_az = np.mod(az - ac + np.pi, 2 * np.pi) - np.pi
            a0 = ac + rel_az.min()
            a1 = ac + rel_az.max()
            c0 = int(np.floor((a0 + np.pi) / step)) - 1
            c1 = int(np.ceil((a1 + np.pi) / step)) + 2
            cols = np.mod(np.arange(c0, c1), n_az)
            rects.append((np.arange(n_el)[:, None] * n_az + cols[None, :]).ravel())
        t_hit, prim, _ = self._trace(scene, o, D, lambda k: rects[k])
        keep = (prim >= 0) & (t_hit <= LIDAR_MAX_RANGE)
        pts = LIDAR_POSITION + t_hit[keep, None] * d_ego[keep]
        return pts.astype(np.float32)
