"""p4dsim's CPU tile rasterizer for 3D Gaussians, compiled with numba.

It draws the same pictures as gsplat 1.5.3's ``rasterization`` with render_mode "RGB+ED",
packed=False, rasterize_mode "classic" and camera_model "pinhole" (see
:mod:`p4dsim.render.projection` for the projection rules and :mod:`p4dsim.render.reference`
for the compositing rule). Three stages per camera:

1. project every Gaussian (parallel over Gaussians): 2D mean, conic, camera depth, radii;
2. bin into ``tile_size``² tiles: each Gaussian's tile rectangle from its radius box, counts,
   prefix sum, then a fill in Gaussian order (so equal depths keep array order, as gsplat's
   stable radix sort does);
3. composite (parallel over tiles): each tile sorts its list by depth (stable), gathers it
   into contiguous arrays and runs gsplat's front-to-back loop for each of its pixels.

Arithmetic is float64 throughout; gsplat uses float32, so outputs agree to float32 rounding
(pixels right at the ``min_alpha`` or ``min_transmittance`` thresholds may flip either way).
Kernels are compiled once per machine (``cache=True``), on the first render.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from p4dsim.render.base import Renderer, RenderOutput, check_inputs
from p4dsim.scene.gaussians import GaussianSet

#: margin (in units of sigma) above which the exact alpha test is skipped as surely failing
_SIGMA_MARGIN = 1e-5


@njit(parallel=True, cache=True)
def _project_kernel(
    means,  # [N, 3] float32 world
    quats,  # [N, 4] float32 (w, x, y, z)
    scales,  # [N, 3] float32
    opacities,  # [N] float32
    viewmat,  # [4, 4] float64 T_camera_world
    K,  # [3, 3] float64
    width,
    height,
    eps2d,
    near,
    far,
    min_alpha,
    radius_sigma,
    xy,  # out [N, 2] float64 pixels
    conic,  # out [N, 3] float64 (a, b, c)
    depth,  # out [N] float64 camera z
    radii,  # out [N, 2] int32, 0 where culled
    sigma_max,  # out [N] float64: alpha >= min_alpha needs sigma <= this
):
    n = means.shape[0]
    r00, r01, r02, t0 = viewmat[0, 0], viewmat[0, 1], viewmat[0, 2], viewmat[0, 3]
    r10, r11, r12, t1 = viewmat[1, 0], viewmat[1, 1], viewmat[1, 2], viewmat[1, 3]
    r20, r21, r22, t2 = viewmat[2, 0], viewmat[2, 1], viewmat[2, 2], viewmat[2, 3]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    for i in prange(n):
        radii[i, 0] = 0
        radii[i, 1] = 0
        px = np.float64(means[i, 0])
        py = np.float64(means[i, 1])
        pz = np.float64(means[i, 2])
        x = r00 * px + r01 * py + r02 * pz + t0
        y = r10 * px + r11 * py + r12 * pz + t1
        z = r20 * px + r21 * py + r22 * pz + t2
        if not (z >= near and z <= far):
            continue
        op = np.float64(opacities[i])
        if not (op >= min_alpha):
            continue

        # world covariance (R S)(R S)^T from the normalised quaternion
        qw = np.float64(quats[i, 0])
        qx = np.float64(quats[i, 1])
        qy = np.float64(quats[i, 2])
        qz = np.float64(quats[i, 3])
        inv = 1.0 / math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        qw *= inv
        qx *= inv
        qy *= inv
        qz *= inv
        sx = np.float64(scales[i, 0])
        sy = np.float64(scales[i, 1])
        sz = np.float64(scales[i, 2])
        m00 = (1.0 - 2.0 * (qy * qy + qz * qz)) * sx
        m01 = 2.0 * (qx * qy - qw * qz) * sy
        m02 = 2.0 * (qx * qz + qw * qy) * sz
        m10 = 2.0 * (qx * qy + qw * qz) * sx
        m11 = (1.0 - 2.0 * (qx * qx + qz * qz)) * sy
        m12 = 2.0 * (qy * qz - qw * qx) * sz
        m20 = 2.0 * (qx * qz - qw * qy) * sx
        m21 = 2.0 * (qy * qz + qw * qx) * sy
        m22 = (1.0 - 2.0 * (qx * qx + qy * qy)) * sz
        # camera-frame M' = R_cw M, so that Σc = M' M'^T
        a00 = r00 * m00 + r01 * m10 + r02 * m20
        a01 = r00 * m01 + r01 * m11 + r02 * m21
        a02 = r00 * m02 + r01 * m12 + r02 * m22
        a10 = r10 * m00 + r11 * m10 + r12 * m20
        a11 = r10 * m01 + r11 * m11 + r12 * m21
        a12 = r10 * m02 + r11 * m12 + r12 * m22
        a20 = r20 * m00 + r21 * m10 + r22 * m20
        a21 = r20 * m01 + r21 * m11 + r22 * m21
        a22 = r20 * m02 + r21 * m12 + r22 * m22

        # Jacobian with the clamped tangent; B = J M' ([2, 3]); Σ2d = B B^T
        rz = 1.0 / z
        tx = z * min(lim_x_pos, max(-lim_x_neg, x * rz))
        ty = z * min(lim_y_pos, max(-lim_y_neg, y * rz))
        j00 = fx * rz
        j02 = -fx * tx * rz * rz
        j11 = fy * rz
        j12 = -fy * ty * rz * rz
        b00 = j00 * a00 + j02 * a20
        b01 = j00 * a01 + j02 * a21
        b02 = j00 * a02 + j02 * a22
        b10 = j11 * a10 + j12 * a20
        b11 = j11 * a11 + j12 * a21
        b12 = j11 * a12 + j12 * a22
        c00 = b00 * b00 + b01 * b01 + b02 * b02 + eps2d
        c01 = b00 * b10 + b01 * b11 + b02 * b12
        c11 = b10 * b10 + b11 * b11 + b12 * b12 + eps2d
        det = c00 * c11 - c01 * c01
        if not (det > 0.0):
            continue

        u = fx * x * rz + cx
        v = fy * y * rz + cy
        smax = math.log(op / min_alpha)
        extend = min(radius_sigma, math.sqrt(2.0 * smax))
        rx = math.ceil(extend * math.sqrt(c00))
        ry = math.ceil(extend * math.sqrt(c11))
        if rx <= 0.0 and ry <= 0.0:
            continue
        if u + rx <= 0.0 or u - rx >= width or v + ry <= 0.0 or v - ry >= height:
            continue

        xy[i, 0] = u
        xy[i, 1] = v
        conic[i, 0] = c11 / det
        conic[i, 1] = -c01 / det
        conic[i, 2] = c00 / det
        depth[i] = z
        sigma_max[i] = smax
        radii[i, 0] = np.int32(rx)
        radii[i, 1] = np.int32(ry)


@njit(cache=True)
def _bin_kernel(xy, radii, tile_size, tiles_x, tiles_y):
    """Tile lists: (offsets [n_tiles + 1] int64, gaussian ids [n_isects] int64 in array order)."""
    n = xy.shape[0]
    n_tiles = tiles_x * tiles_y
    rect = np.zeros((n, 4), dtype=np.int64)  # x0, x1, y0, y1 (max exclusive)
    counts = np.zeros(n_tiles + 1, dtype=np.int64)
    ts = np.float64(tile_size)
    for i in range(n):
        if radii[i, 0] <= 0 or radii[i, 1] <= 0:
            continue
        cx = xy[i, 0] / ts
        cy = xy[i, 1] / ts
        rx = radii[i, 0] / ts
        ry = radii[i, 1] / ts
        x0 = int(min(max(math.floor(cx - rx), 0.0), tiles_x))
        x1 = int(min(max(math.ceil(cx + rx), 0.0), tiles_x))
        y0 = int(min(max(math.floor(cy - ry), 0.0), tiles_y))
        y1 = int(min(max(math.ceil(cy + ry), 0.0), tiles_y))
        rect[i, 0] = x0
        rect[i, 1] = x1
        rect[i, 2] = y0
        rect[i, 3] = y1
        for ty in range(y0, y1):
            for tx in range(x0, x1):
                counts[ty * tiles_x + tx + 1] += 1
    for t in range(n_tiles):
        counts[t + 1] += counts[t]
    offsets = counts
    cursor = offsets[:-1].copy()
    gids = np.empty(offsets[n_tiles], dtype=np.int64)
    for i in range(n):
        for ty in range(rect[i, 2], rect[i, 3]):
            for tx in range(rect[i, 0], rect[i, 1]):
                t = ty * tiles_x + tx
                gids[cursor[t]] = i
                cursor[t] += 1
    return offsets, gids


@njit(parallel=True, cache=True)
def _composite_kernel(
    xy,  # [N, 2] float64
    conic,  # [N, 3] float64
    opacities,  # [N] float32
    sigma_max,  # [N] float64
    depth,  # [N] float64
    feats,  # [N, F] float64, composited; camera depth is appended as channel F
    bg,  # [F + 1] float64
    offsets,  # [n_tiles + 1] int64
    gids,  # [n_isects] int64
    width,
    height,
    tile_size,
    tiles_x,
    max_alpha,
    min_alpha,
    min_transmittance,
    margin,
    out,  # [H, W, F + 1] float32
    out_alpha,  # [H, W] float32
):
    nf = feats.shape[1]
    k_all = nf + 1
    n_tiles = offsets.shape[0] - 1
    for t in prange(n_tiles):
        s = offsets[t]
        m = offsets[t + 1] - s
        i0 = (t // tiles_x) * tile_size
        j0 = (t % tiles_x) * tile_size
        i1 = min(i0 + tile_size, height)
        j1 = min(j0 + tile_size, width)

        d = np.empty(m)
        for k in range(m):
            d[k] = depth[gids[s + k]]
        order = np.argsort(d, kind="mergesort")  # stable: ties keep array order
        lx = np.empty(m)
        ly = np.empty(m)
        la = np.empty(m)
        lb = np.empty(m)
        lc = np.empty(m)
        lo = np.empty(m)
        ls = np.empty(m)
        lf = np.empty((m, k_all))
        for k in range(m):
            g = gids[s + order[k]]
            lx[k] = xy[g, 0]
            ly[k] = xy[g, 1]
            la[k] = conic[g, 0]
            lb[k] = conic[g, 1]
            lc[k] = conic[g, 2]
            lo[k] = opacities[g]
            ls[k] = sigma_max[g] + margin
            for q in range(nf):
                lf[k, q] = feats[g, q]
            lf[k, nf] = depth[g]

        acc = np.empty(k_all)
        for i in range(i0, i1):
            py = i + 0.5
            for j in range(j0, j1):
                px = j + 0.5
                T = 1.0
                acc[:] = 0.0
                for k in range(m):
                    dx = lx[k] - px
                    dy = ly[k] - py
                    sigma = 0.5 * (la[k] * dx * dx + lc[k] * dy * dy) + lb[k] * dx * dy
                    if sigma < 0.0 or sigma > ls[k]:
                        continue
                    alpha = min(max_alpha, lo[k] * math.exp(-sigma))
                    if alpha < min_alpha:
                        continue
                    next_t = T * (1.0 - alpha)
                    if next_t <= min_transmittance:
                        break
                    w = alpha * T
                    for q in range(k_all):
                        acc[q] += lf[k, q] * w
                    T = next_t
                for q in range(k_all):
                    out[i, j, q] = acc[q] + T * bg[q]
                out_alpha[i, j] = 1.0 - T


class CpuRenderer(Renderer):
    """gsplat-equivalent tile rasterizer on the CPU (numba, all cores)."""

    name = "cpu"

    @property
    def device_name(self) -> str:
        import os

        return f"cpu ({os.cpu_count()} cores, numba)"

    def render(
        self,
        gaussians: GaussianSet,
        viewmats: np.ndarray,
        Ks: np.ndarray,
        width: int,
        height: int,
        background: np.ndarray | None = None,
        extra: np.ndarray | None = None,
    ) -> RenderOutput:
        """Render C cameras; see :class:`~p4dsim.render.base.Renderer` for the arguments.

        viewmats: [C, 4, 4] T_camera_world; Ks: [C, 3, 3] pinhole intrinsics (pixels);
        background: [3] RGB added as ``T * background`` (black when None); extra: [N, E]
        per-Gaussian channels composited like colour with a zero background.
        """
        viewmats, Ks, bg, extra = check_inputs(
            gaussians, viewmats, Ks, width, height, background, extra
        )
        s = self.settings
        width = int(width)
        height = int(height)
        C = viewmats.shape[0]
        n = len(gaussians)
        n_extra = 0 if extra is None else extra.shape[1]

        feats = np.ascontiguousarray(
            np.concatenate([gaussians.colors, extra], axis=1) if n_extra else gaussians.colors,
            dtype=np.float64,
        )
        bg_all = np.zeros(3 + n_extra + 1)
        bg_all[:3] = bg
        ts = int(s.tile_size)
        tiles_x = (width + ts - 1) // ts
        tiles_y = (height + ts - 1) // ts

        out = np.empty((C, height, width, 3 + n_extra + 1), dtype=np.float32)
        alpha = np.empty((C, height, width), dtype=np.float32)
        for c in range(C):
            if n == 0:
                out[c] = bg_all.astype(np.float32)
                alpha[c] = 0.0
                continue
            xy = np.zeros((n, 2))
            conic = np.zeros((n, 3))
            depth = np.zeros(n)
            radii = np.zeros((n, 2), dtype=np.int32)
            sigma_max = np.zeros(n)
            _project_kernel(
                gaussians.means,
                gaussians.quats,
                gaussians.scales,
                gaussians.opacities,
                viewmats[c],
                Ks[c],
                float(width),
                float(height),
                float(s.eps2d),
                float(s.near),
                float(s.far),
                float(s.min_alpha),
                float(s.radius_sigma),
                xy,
                conic,
                depth,
                radii,
                sigma_max,
            )
            offsets, gids = _bin_kernel(xy, radii, ts, tiles_x, tiles_y)
            _composite_kernel(
                xy,
                conic,
                gaussians.opacities,
                sigma_max,
                depth,
                feats,
                bg_all,
                offsets,
                gids,
                height=height,
                width=width,
                tile_size=ts,
                tiles_x=tiles_x,
                max_alpha=float(s.max_alpha),
                min_alpha=float(s.min_alpha),
                min_transmittance=float(s.min_transmittance),
                margin=_SIGMA_MARGIN,
                out=out[c],
                out_alpha=alpha[c],
            )

        acc_depth = out[..., -1]
        depth_img = (acc_depth / np.maximum(alpha, np.float32(1e-10))).astype(np.float32)
        return RenderOutput(
            rgb=np.ascontiguousarray(out[..., :3]),
            depth=depth_img,
            alpha=alpha,
            extra=np.ascontiguousarray(out[..., 3 : 3 + n_extra]) if extra is not None else None,
        )
