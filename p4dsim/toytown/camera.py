"""Toytown seen by a pinhole camera: exact RGB, depth, actor ids, normals and semantic classes
(:class:`GroundTruth`), with per-primitive image rectangles so each ray meets only the
primitives that can cover it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BOX_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
_MAX_RAYS_PER_CHUNK = 160_000


@dataclass
class GroundTruth:
    """An exact rendering of toytown.

    rgb: uint8 [H, W, 3]; depth: float32 [H, W] camera z (m), ``inf`` for sky;
    actor_id: int32 [H, W] index into :attr:`ToytownWorld.track_ids` of the vehicle seen at
    the pixel, -1 otherwise; normal: float32 [H, W, 3] unit surface normal in the world frame
    (0 for sky); semantic: uint8 [H, W] index into :data:`~p4dsim.toytown.shading.SEMANTIC_CLASSES`.
    Depth, actor_id, normal and semantic come from the ray through the pixel centre.
    """

    rgb: np.ndarray
    depth: np.ndarray
    actor_id: np.ndarray
    normal: np.ndarray
    semantic: np.ndarray


class Camera:
    """Camera rendering (mixed into :class:`~p4dsim.toytown.world.ToytownWorld`)."""

    def _camera_rects(self, scene, K, T_world_camera, s, Hs, Ws) -> list:
        """Per primitive (boxes, then cylinders) the conservative sub-sample rectangle
        (r0, r1, c0, c1) it can cover, or None (whole image) / () (not visible)."""
        corners = scene.corners()  # [P, 8, 3]
        R = T_world_camera[:3, :3]
        pc = (corners - T_world_camera[:3, 3]) @ R  # camera frame
        near = 1e-3
        rects: list = []
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        for k in range(len(pc)):
            p = pc[k]
            z = p[:, 2]
            if np.all(z < near):
                rects.append(())
                continue
            pts = [p[z >= near]]
            a, b = p[_BOX_EDGES[:, 0]], p[_BOX_EDGES[:, 1]]
            za, zb = a[:, 2] - near, b[:, 2] - near
            cross = za * zb < 0
            if np.any(cross):
                w = za[cross] / (za[cross] - zb[cross])
                pts.append(a[cross] + w[:, None] * (b[cross] - a[cross]))
            q = np.concatenate(pts)
            u = fx * q[:, 0] / q[:, 2] + cx
            v = fy * q[:, 1] / q[:, 2] + cy
            c0 = max(int(np.floor(u.min() * s - 0.5)) - 1, 0)
            c1 = min(int(np.ceil(u.max() * s - 0.5)) + 2, Ws)
            r0 = max(int(np.floor(v.min() * s - 0.5)) - 1, 0)
            r1 = min(int(np.ceil(v.max() * s - 0.5)) + 2, Hs)
            rects.append((r0, r1, c0, c1) if (c1 > c0 and r1 > r0) else ())
        return rects

    def _cast_camera(
        self,
        scene,
        K,
        T_world_camera,
        us: np.ndarray,
        vs: np.ndarray,
        s: int,
        shade: bool,
        pix_angle: float,
    ):
        """Trace (and shade) the rays through image points us [Ws] x vs [Hs] in row chunks."""
        Hs, Ws = len(vs), len(us)
        rects = self._camera_rects(scene, K, T_world_camera, s, Hs, Ws)
        o = T_world_camera[:3, 3].astype(np.float64)
        R = T_world_camera[:3, :3]
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        xs = (us - cx) / fx
        t_all = np.empty(Hs * Ws)
        prim_all = np.empty(Hs * Ws, dtype=np.int32)
        face_all = np.empty(Hs * Ws, dtype=np.int8)
        col_all = np.empty((Hs * Ws, 3), dtype=np.float32) if shade else None
        rows_per = max(1, _MAX_RAYS_PER_CHUNK // Ws)
        for r0 in range(0, Hs, rows_per):
            r1 = min(r0 + rows_per, Hs)
            ys = (vs[r0:r1] - cy) / fy
            dc = np.stack(
                np.broadcast_arrays(xs[None, :], ys[:, None], np.ones((1, 1))), axis=-1
            ).reshape(-1, 3)
            D = dc @ R.T

            def select(k, r0=r0, r1=r1):
                rect = rects[k]
                if rect is None:
                    return None
                if rect == ():
                    return np.empty(0, dtype=np.int64)
                a0, a1 = max(rect[0], r0), min(rect[1], r1)
                if a1 <= a0:
                    return np.empty(0, dtype=np.int64)
                rr = np.arange(a0 - r0, a1 - r0)
                cc = np.arange(rect[2], rect[3])
                return (rr[:, None] * Ws + cc[None, :]).ravel()

            t, prim, face = self._trace(scene, o, D, select)
            sl = slice(r0 * Ws, r1 * Ws)
            t_all[sl], prim_all[sl], face_all[sl] = t, prim, face
            if shade:
                col_all[sl] = self._shade(scene, o, D, t, prim, face, pix_angle)
        return t_all, prim_all, face_all, col_all

    def render(self, K, width, height, T_world_camera, t, supersample: int = 1) -> GroundTruth:
        """Ray-cast the world at time t (s) from a pinhole camera.

        K: [3, 3] intrinsics (pixels); width, height: image size; T_world_camera: [4, 4]
        camera pose (OpenCV axes). Pixel (i, j) is the ray through (u, v) = (j + 0.5, i + 0.5);
        with ``supersample`` s, colours average s×s sub-samples at ((j + (a + 0.5)/s),
        (i + (b + 0.5)/s)); depth, actor id, normal and semantic come from the centre ray.
        """
        K = np.asarray(K, dtype=np.float64)
        T = np.asarray(T_world_camera, dtype=np.float64)
        W, H, s = int(width), int(height), int(supersample)
        if s < 1:
            raise ValueError(f"supersample must be ≥ 1, got {supersample}")
        scene = self._scene(float(t))
        pix_angle = 1.0 / float(np.sqrt(K[0, 0] * K[1, 1]))
        us = (np.arange(W * s) + 0.5) / s
        vs = (np.arange(H * s) + 0.5) / s
        ts, prim, face, col = self._cast_camera(scene, K, T, us, vs, s, True, pix_angle)
        rgb = col.reshape(H, s, W, s, 3).mean(axis=(1, 3))
        if s % 2 == 1:
            c = s // 2
            tc = ts.reshape(H, s, W, s)[:, c, :, c].ravel()
            pc = prim.reshape(H, s, W, s)[:, c, :, c].ravel()
            fc = face.reshape(H, s, W, s)[:, c, :, c].ravel()
        else:
            tc, pc, fc, _ = self._cast_camera(
                scene, K, T, np.arange(W) + 0.5, np.arange(H) + 0.5, 1, False, pix_angle
            )
        # centre-ray geometry
        jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        dc = np.stack(
            [(jj - K[0, 2]) / K[0, 0], (ii - K[1, 2]) / K[1, 1], np.ones_like(jj)], axis=-1
        ).reshape(-1, 3)
        Dw = dc @ T[:3, :3].T
        P = T[:3, 3] + np.where(pc >= 0, tc, 0.0)[:, None] * Dw
        normal = self._normals(scene, P, pc, fc)
        nb, nbx = scene.n_buildings, scene.n_boxes
        actor = np.where((pc > nb) & (pc <= nbx), pc - 1 - nb, -1).astype(np.int32)
        return GroundTruth(
            rgb=np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8),
            depth=np.where(pc >= 0, tc, np.inf).astype(np.float32).reshape(H, W),
            actor_id=actor.reshape(H, W),
            normal=normal.astype(np.float32).reshape(H, W, 3),
            semantic=self._semantic(scene, pc, fc).reshape(H, W),
        )
