"""Ray casting toytown: the primitives at one time (:class:`TraceScene`), the nearest hit of
every ray and the surface normal there (ray-primitive tests in :mod:`p4dsim.toytown.raycast`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p4dsim.geometry import BOX_CORNER_SIGNS
from p4dsim.toytown.layout import KERB_HEIGHT, ROAD_LEFT, ROAD_RIGHT
from p4dsim.toytown.raycast import ray_box, ray_ground, ray_vertical_cylinder


@dataclass
class TraceScene:
    """Primitives at one time. Boxes: centre [B, 3], R [B, 3, 3] (box axes in world),
    half [B, 3]; the first ``n_buildings`` are buildings, the rest vehicles. Cylinders:
    xy [C, 2], radius [C], z0 [C], z1 [C]. Global primitive ids: 0 ground, 1..B boxes,
    B+1..B+C cylinders."""

    box_c: np.ndarray
    box_R: np.ndarray
    box_h: np.ndarray
    n_buildings: int
    cyl_xy: np.ndarray
    cyl_r: np.ndarray
    cyl_z0: np.ndarray
    cyl_z1: np.ndarray

    @property
    def n_boxes(self) -> int:
        return len(self.box_c)

    def corners(self) -> np.ndarray:
        """Bounding corners [B + C, 8, 3] of every box and cylinder."""
        local = BOX_CORNER_SIGNS
        bc = (
            np.einsum("bij,bkj->bki", self.box_R, local[None] * self.box_h[:, None, :])
            + self.box_c[:, None]
        )
        cc = np.stack(
            [self.cyl_xy[:, 0], self.cyl_xy[:, 1], (self.cyl_z0 + self.cyl_z1) / 2], axis=1
        )
        ch = np.stack([self.cyl_r, self.cyl_r, (self.cyl_z1 - self.cyl_z0) / 2], axis=1)
        cyc = local[None] * ch[:, None, :] + cc[:, None]
        return np.concatenate([bc, cyc], axis=0)


class Tracing:
    """Ray casting (mixed into :class:`~p4dsim.toytown.world.ToytownWorld`; the vehicles come
    from :class:`~p4dsim.toytown.agents.Agents`)."""

    def _scene(self, t: float) -> TraceScene:
        states = self.vehicles(t)
        nb = len(self._b_center)
        box_c = np.concatenate([self._b_center, np.array([s.T_world_box[:3, 3] for s in states])])
        box_R = np.concatenate(
            [
                np.broadcast_to(np.eye(3), (nb, 3, 3)),
                np.array([s.T_world_box[:3, :3] for s in states]),
            ]
        )
        box_h = np.concatenate([self._b_half, np.array([s.size / 2 for s in states])])
        return TraceScene(box_c, box_R, box_h, nb, self._p_xy, self._p_r, self._p_z0, self._p_z1)

    def _trace(
        self, scene: TraceScene, o: np.ndarray, D: np.ndarray, select
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest hits of rays (origin o [3], directions D [M, 3]): t [M], primitive id [M]
        (-1 miss), face code [M]. ``select(k)`` gives the ray indices worth testing against
        primitive k (boxes then cylinders): None for all, or an index array."""
        t_best, face_best = ray_ground(o, D, ROAD_RIGHT, ROAD_LEFT, KERB_HEIGHT)
        prim_best = np.where(np.isfinite(t_best), 0, -1).astype(np.int32)
        nbx = scene.n_boxes
        for k in range(nbx + len(scene.cyl_r)):
            idx = select(k)
            if idx is not None and len(idx) == 0:
                continue
            Dk = D if idx is None else D[idx]
            if k < nbx:
                R = scene.box_R[k]
                t, face = ray_box(R.T @ (o - scene.box_c[k]), Dk @ R, scene.box_h[k])
            else:
                c = k - nbx
                t, face = ray_vertical_cylinder(
                    o, Dk, scene.cyl_xy[c], scene.cyl_r[c], scene.cyl_z0[c], scene.cyl_z1[c]
                )
            if idx is None:
                better = t < t_best
                t_best = np.where(better, t, t_best)
                face_best = np.where(better, face, face_best)
                prim_best = np.where(better, k + 1, prim_best)
            else:
                better = t < t_best[idx]
                sel = idx[better]
                t_best[sel] = t[better]
                face_best[sel] = face[better]
                prim_best[sel] = k + 1
        return t_best, prim_best, face_best

    def _normals(
        self, scene: TraceScene, P: np.ndarray, prim: np.ndarray, face: np.ndarray
    ) -> np.ndarray:
        """Unit world normals [M, 3] at hit points P [M, 3] (zeros for misses)."""
        n = np.zeros(P.shape)
        g = prim == 0
        n[g & (face <= 1), 2] = 1.0
        n[g & (face == 2), 1] = -1.0
        n[g & (face == 3), 1] = 1.0
        nbx = scene.n_boxes
        b = (prim >= 1) & (prim <= nbx)
        if np.any(b):
            k = prim[b] - 1
            f = face[b].astype(np.int64)
            local = np.zeros((len(k), 3))
            local[np.arange(len(k)), f // 2] = np.where(f % 2 == 0, 1.0, -1.0)
            n[b] = np.einsum("kij,kj->ki", scene.box_R[k], local)
        c = prim > nbx
        if np.any(c):
            k = prim[c] - 1 - nbx
            rel = P[c, :2] - scene.cyl_xy[k]
            side = np.concatenate(
                [
                    rel / np.maximum(np.linalg.norm(rel, axis=1, keepdims=True), 1e-9),
                    np.zeros((len(k), 1)),
                ],
                axis=1,
            )
            n[c] = np.where((face[c] == 1)[:, None], np.array([0.0, 0.0, 1.0]), side)
        return n
