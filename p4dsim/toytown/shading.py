"""Toytown's shading: the colour of every traced ray (procedural textures of
:mod:`p4dsim.toytown.textures`, sun and sky light) and its semantic class."""

from __future__ import annotations

import numpy as np

from p4dsim.toytown import textures as tx
from p4dsim.toytown.layout import (
    DASH_LENGTH,
    DASH_PERIOD,
    LANE_LINES,
    ROAD_LEFT,
    ROAD_RIGHT,
    SIDEWALK_WIDTH,
)
from p4dsim.toytown.tracing import TraceScene

_SUN = np.array([0.35, 0.45, 0.82]) / np.linalg.norm([0.35, 0.45, 0.82])
#: semantic classes of :attr:`GroundTruth.semantic`
SEMANTIC_CLASSES = ("sky", "road", "sidewalk", "building", "pole", "vehicle")
_SKY, _ROAD, _SIDEWALK, _BUILDING, _POLE, _VEHICLE = range(6)


class Shading:
    """Colours and semantic classes of traced rays (mixed into
    :class:`~p4dsim.toytown.world.ToytownWorld`)."""

    seed: int

    def _shade(self, scene, o, D, t, prim, face, pix_angle) -> np.ndarray:
        """Colours [M, 3] float32 of traced rays; ``pix_angle`` is the angle (rad) one output
        pixel subtends, which sets every texture's footprint."""
        M = len(t)
        col = np.zeros((M, 3), dtype=np.float32)
        dn = np.linalg.norm(D, axis=1)
        hit = prim >= 0
        P = o + np.where(hit, t, 0.0)[:, None] * D
        N = self._normals(scene, P, prim, face)
        dist = np.where(hit, t, 0.0) * dn
        cosang = np.abs(np.einsum("ij,ij->i", N, D)) / dn
        fw = dist * pix_angle / np.maximum(cosang, 0.2)
        seed = self.seed * 7919

        # sky
        s = ~hit
        if np.any(s):
            col[s] = tx.sky(D[s] / dn[s, None], np.full(int(s.sum()), pix_angle), seed)

        # ground
        g = prim == 0
        if np.any(g):
            gi = np.flatnonzero(g)
            x, y, z = P[gi, 0], P[gi, 1], P[gi, 2]
            f = face[gi]
            fwg = fw[gi]
            out = np.zeros((len(gi), 3), dtype=np.float32)
            road = f == 0
            if np.any(road):
                # anisotropic footprint on the road: elongated along the ray's ground direction
                d = D[gi[road]]
                h = d[:, :2] / np.maximum(np.linalg.norm(d[:, :2], axis=1, keepdims=True), 1e-9)
                across = dist[gi[road]] * pix_angle
                along = fwg[road]
                fwx = np.hypot(h[:, 0] * along, h[:, 1] * across)
                fwy = np.hypot(h[:, 1] * along, h[:, 0] * across)
                xr, yr = x[road], y[road]
                c = tx.asphalt(xr, yr, np.sqrt(fwx * fwy), seed)
                park = (
                    tx.soft_step(-5.25 - yr, fwy)
                    * tx.periodic_band(xr, 6.0, -0.06, 0.06, fwx)
                    * tx.soft_step(yr - (ROAD_RIGHT + 0.3), fwy)
                )
                paint = np.maximum(
                    tx.road_markings(xr, yr, fwx, fwy, LANE_LINES, DASH_PERIOD, DASH_LENGTH), park
                )
                paint = paint * (0.8 + 0.4 * tx.fbm(xr, yr, seed + 3, 0.8, 3, np.minimum(fwx, fwy)))
                out[road] = tx.mix(
                    c, np.array([0.88, 0.88, 0.84], np.float32), np.clip(paint, 0, 1)
                )
            top = f == 1
            if np.any(top):
                xt, yt, fwt = x[top], y[top], fwg[top]
                dk = np.where(
                    yt > 0, yt - ROAD_LEFT, ROAD_RIGHT - yt
                )  # distance from the kerb edge
                walk = tx.sidewalk_tiles(xt, yt, fwt, seed)
                grass = tx.lawn(xt, yt, fwt, seed)
                c = tx.mix(walk, grass, tx.soft_step(dk - SIDEWALK_WIDTH, fwt))
                stone = tx.kerb_stone(xt, yt, fwt, seed)
                out[top] = tx.mix(c, stone, tx.soft_step(0.25 - dk, fwt))
            kf = f >= 2
            if np.any(kf):
                out[kf] = tx.kerb_stone(x[kf], z[kf], fwg[kf], seed)
            col[gi] = out

        nbx = scene.n_boxes
        nb = scene.n_buildings
        # buildings
        bmask = (prim >= 1) & (prim <= nb)
        if np.any(bmask):
            bi = np.flatnonzero(bmask)
            k = prim[bi] - 1
            f = face[bi]
            Pl = P[bi] - scene.box_c[k] + scene.box_h[k]  # from the min corner
            u = np.where(f // 2 == 0, Pl[:, 1], Pl[:, 0])
            col[bi] = tx.facade(
                u,
                P[bi, 2],
                fw[bi],
                self._b_color[k],
                self._b_style[k],
                2 * scene.box_h[k, 2],
                self._b_offset[k],
                seed,
            )
        # vehicles
        vmask = (prim > nb) & (prim <= nbx)
        if np.any(vmask):
            vi = np.flatnonzero(vmask)
            k = prim[vi] - 1
            Pl = np.einsum("kji,kj->ki", scene.box_R[k], P[vi] - scene.box_c[k])
            colors = np.array([v.color for v in self._vehicles])[k - nb]
            col[vi] = tx.vehicle_paint(
                face[vi].astype(np.int64), Pl, 2 * scene.box_h[k], colors, fw[vi], seed
            )
        # poles
        cmask = prim > nbx
        if np.any(cmask):
            ci = np.flatnonzero(cmask)
            col[ci] = tx.metal_pole(P[ci, 2], fw[ci], seed)

        # sun and sky light
        lam = 0.62 + 0.38 * np.clip(N @ _SUN, 0.0, 1.0)
        col = np.where(hit[:, None], col * lam[:, None].astype(np.float32), col)
        return col

    def _semantic(self, scene: TraceScene, prim: np.ndarray, face: np.ndarray) -> np.ndarray:
        sem = np.full(prim.shape, _SKY, dtype=np.uint8)
        sem[(prim == 0) & (face == 0)] = _ROAD
        sem[(prim == 0) & (face >= 1)] = _SIDEWALK
        sem[(prim >= 1) & (prim <= scene.n_buildings)] = _BUILDING
        sem[(prim > scene.n_buildings) & (prim <= scene.n_boxes)] = _VEHICLE
        sem[prim > scene.n_boxes] = _POLE
        return sem
