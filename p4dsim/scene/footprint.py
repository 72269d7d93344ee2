"""Pixel-footprint Gaussians in closed form, compiled with numba.

For a surface point P (camera frame) seen through pixel (u, v) with unit normal n, the
pixel's footprint on the tangent plane is spanned by a = ∂p/∂u and b = ∂p/∂v, where
p(u, v) = r(u, v) (n·P) / (n·r(u, v)) and r(u, v) = K⁻¹ (u, v, 1). The Gaussian's covariance
is σ² (a aᵀ + b bᵀ) + (t σ_n)² n nᵀ: projected back into the source view it is an isotropic
blob of σ pixels. a and b lie in the tangent plane, so n is one principal axis and the other
two come from a 2×2 eigenproblem, solved in closed form per Gaussian.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _footprint_kernel(P, N, Kinv, sigma, thickness_ratio, min_cos, R, t, means, quats, scales):
    n_pts = P.shape[0]
    rux, ruy, ruz = Kinv[0, 0], Kinv[1, 0], Kinv[2, 0]
    rvx, rvy, rvz = Kinv[0, 1], Kinv[1, 1], Kinv[2, 1]
    for i in prange(n_pts):
        px, py, pz = P[i, 0], P[i, 1], P[i, 2]
        nx, ny, nz = N[i, 0], N[i, 1], N[i, 2]
        rx, ry, rz = px / pz, py / pz, 1.0
        rlen = math.sqrt(rx * rx + ry * ry + rz * rz)
        ndr = nx * rx + ny * ry + nz * rz
        if abs(ndr) < min_cos * rlen:
            ndr = -min_cos * rlen
        c = nx * px + ny * py + nz * pz
        nru = nx * rux + ny * ruy + nz * ruz
        nrv = nx * rvx + ny * rvy + nz * rvz
        f = c / ndr
        g_u = c * nru / (ndr * ndr)
        g_v = c * nrv / (ndr * ndr)
        ax, ay, az = rux * f - rx * g_u, ruy * f - ry * g_u, ruz * f - rz * g_u
        bx, by, bz = rvx * f - rx * g_v, rvy * f - ry * g_v, rvz * f - rz * g_v
        # Tangent basis e1, e2 = n × e1.
        an = ax * nx + ay * ny + az * nz
        e1x, e1y, e1z = ax - an * nx, ay - an * ny, az - an * nz
        e1n = math.sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
        if e1n < 1e-15:
            # any vector perpendicular to n
            if abs(nx) < 0.9:
                e1x, e1y, e1z = 0.0, -nz, ny
            else:
                e1x, e1y, e1z = nz, 0.0, -nx
            e1n = math.sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
        e1x, e1y, e1z = e1x / e1n, e1y / e1n, e1z / e1n
        e2x = ny * e1z - nz * e1y
        e2y = nz * e1x - nx * e1z
        e2z = nx * e1y - ny * e1x
        a1 = ax * e1x + ay * e1y + az * e1z
        a2 = ax * e2x + ay * e2y + az * e2z
        b1 = bx * e1x + by * e1y + bz * e1z
        b2 = bx * e2x + by * e2y + bz * e2z
        s2 = sigma[i] * sigma[i]
        c11 = s2 * (a1 * a1 + b1 * b1)
        c12 = s2 * (a1 * a2 + b1 * b2)
        c22 = s2 * (a2 * a2 + b2 * b2)
        half = 0.5 * (c11 + c22)
        rad = math.sqrt(0.25 * (c11 - c22) * (c11 - c22) + c12 * c12)
        l1 = half + rad
        l2 = max(half - rad, 1e-24)
        th = 0.5 * math.atan2(2.0 * c12, c11 - c22)
        ct, st = math.cos(th), math.sin(th)
        v1x, v1y, v1z = ct * e1x + st * e2x, ct * e1y + st * e2y, ct * e1z + st * e2z
        v2x = ny * v1z - nz * v1y
        v2y = nz * v1x - nx * v1z
        v2z = nx * v1y - ny * v1x
        thick = (
            thickness_ratio
            * sigma[i]
            * math.sqrt(0.5 * (ax * ax + ay * ay + az * az + bx * bx + by * by + bz * bz))
        )
        scales[i, 0] = math.sqrt(l1)
        scales[i, 1] = math.sqrt(l2)
        scales[i, 2] = max(thick, 1e-12)
        # World rotation: R @ [v1 v2 n] and world mean R P + t.
        m00 = R[0, 0] * v1x + R[0, 1] * v1y + R[0, 2] * v1z
        m10 = R[1, 0] * v1x + R[1, 1] * v1y + R[1, 2] * v1z
        m20 = R[2, 0] * v1x + R[2, 1] * v1y + R[2, 2] * v1z
        m01 = R[0, 0] * v2x + R[0, 1] * v2y + R[0, 2] * v2z
        m11 = R[1, 0] * v2x + R[1, 1] * v2y + R[1, 2] * v2z
        m21 = R[2, 0] * v2x + R[2, 1] * v2y + R[2, 2] * v2z
        m02 = R[0, 0] * nx + R[0, 1] * ny + R[0, 2] * nz
        m12 = R[1, 0] * nx + R[1, 1] * ny + R[1, 2] * nz
        m22 = R[2, 0] * nx + R[2, 1] * ny + R[2, 2] * nz
        tr = m00 + m11 + m22
        if tr > 0:
            s = math.sqrt(tr + 1.0) * 2
            qw, qx, qy, qz = 0.25 * s, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s
        elif m00 > m11 and m00 > m22:
            s = math.sqrt(1.0 + m00 - m11 - m22) * 2
            qw, qx, qy, qz = (m21 - m12) / s, 0.25 * s, (m01 + m10) / s, (m02 + m20) / s
        elif m11 > m22:
            s = math.sqrt(1.0 + m11 - m00 - m22) * 2
            qw, qx, qy, qz = (m02 - m20) / s, (m01 + m10) / s, 0.25 * s, (m12 + m21) / s
        else:
            s = math.sqrt(1.0 + m22 - m00 - m11) * 2
            qw, qx, qy, qz = (m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, 0.25 * s
        if qw < 0:
            qw, qx, qy, qz = -qw, -qx, -qy, -qz
        qn = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        quats[i, 0] = qw / qn
        quats[i, 1] = qx / qn
        quats[i, 2] = qy / qn
        quats[i, 3] = qz / qn
        means[i, 0] = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        means[i, 1] = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        means[i, 2] = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]


def footprint_world(
    P_cam: np.ndarray,  # [n, 3] camera-frame points (m), z > 0
    normals_cam: np.ndarray,  # [n, 3] unit normals, camera frame, facing the camera
    K: np.ndarray,  # [3, 3]
    sigma_px: np.ndarray | float,  # [n] or scalar: source-view standard deviation (px)
    thickness_ratio: float,
    max_stretch: float,
    T_world_camera: np.ndarray,  # [4, 4]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World means [n, 3], quats [n, 4] (wxyz, w ≥ 0) and scales [n, 3] (m, float32) of
    pixel-footprint Gaussians (see module docstring); grazing footprints are stretched at
    most ``max_stretch`` times."""
    P = np.ascontiguousarray(P_cam, dtype=np.float64).reshape(-1, 3)
    N = np.ascontiguousarray(normals_cam, dtype=np.float64).reshape(-1, 3)
    n = len(P)
    sig = np.broadcast_to(np.asarray(sigma_px, dtype=np.float64), (n,)).copy()
    T = np.asarray(T_world_camera, dtype=np.float64)
    means = np.empty((n, 3), np.float32)
    quats = np.empty((n, 4), np.float32)
    scales = np.empty((n, 3), np.float32)
    if n:
        _footprint_kernel(
            P,
            N,
            np.linalg.inv(np.asarray(K, dtype=np.float64)),
            sig,
            float(thickness_ratio),
            1.0 / float(max_stretch),
            np.ascontiguousarray(T[:3, :3]),
            np.ascontiguousarray(T[:3, 3]),
            means,
            quats,
            scales,
        )
    return means, quats, scales


@njit(cache=True, error_model="numpy")
def normals_kernel(P, out):  # pragma: no cover - compiled
    """Camera-facing normals out [h, w, 3] of an organised point map P [h, w, 3] (float64,
    h, w ≥ 2), as :func:`p4dsim.scene.builder._normals` defines them: central differences
    (one-sided at the borders), n = dy × dx normalised, flipped to face the camera, and
    -P/|P| at depth discontinuities. One pass with the same IEEE operations in numpy's order
    (sums of three products left to right), so the results are identical."""
    h, w = P.shape[0], P.shape[1]
    for i in range(h):
        i0 = i - 1 if 0 < i < h - 1 else (0 if i == 0 else h - 2)
        i1 = i + 1 if 0 < i < h - 1 else (1 if i == 0 else h - 1)
        for j in range(w):
            j0 = j - 1 if 0 < j < w - 1 else (0 if j == 0 else w - 2)
            j1 = j + 1 if 0 < j < w - 1 else (1 if j == 0 else w - 1)
            dx0 = P[i, j1, 0] - P[i, j0, 0]
            dx1 = P[i, j1, 1] - P[i, j0, 1]
            dx2 = P[i, j1, 2] - P[i, j0, 2]
            dy0 = P[i1, j, 0] - P[i0, j, 0]
            dy1 = P[i1, j, 1] - P[i0, j, 1]
            dy2 = P[i1, j, 2] - P[i0, j, 2]
            n0 = dy1 * dx2 - dy2 * dx1
            n1 = dy2 * dx0 - dy0 * dx2
            n2 = dy0 * dx1 - dy1 * dx0
            norm = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
            den = max(norm, 1e-12)
            n0, n1, n2 = n0 / den, n1 / den, n2 / den
            p0, p1, p2 = P[i, j, 0], P[i, j, 1], P[i, j, 2]
            plen = max(np.sqrt(p0 * p0 + p1 * p1 + p2 * p2), 1e-12)
            v0, v1, v2 = p0 / plen, p1 / plen, p2 / plen
            if n0 * v0 + n1 * v1 + n2 * v2 > 0:
                n0, n1, n2 = -n0, -n1, -n2
            if norm < 1e-12 or max(abs(dx2), abs(dy2)) > 0.25 * p2:
                n0, n1, n2 = -v0, -v1, -v2
            out[i, j, 0] = n0
            out[i, j, 1] = n1
            out[i, j, 2] = n2
