"""EWA projection of 3D Gaussians to the image plane (pinhole), vectorised numpy, float64.

Follows gsplat 1.5.3's ``fully_fused_projection`` (camera model "pinhole", not antialiased):

* camera-frame mean ``t = R p + t_cw`` and covariance ``Σc = R Σ Rᵀ`` with
  ``Σ = (R_q S)(R_q S)ᵀ``, ``R_q`` from the normalised quaternion (w, x, y, z);
* Jacobian of the perspective map at the mean, with ``x/z`` and ``y/z`` clamped to the image
  edges plus 0.3 × the half field of view (``tan_fov = 0.5 W / fx``);
* ``Σ2d = J Σc Jᵀ + eps2d I``, conic = ``Σ2d⁻¹``;
* per-axis radius ``ceil(extend * sqrt(Σ2d[a, a]))`` with
  ``extend = min(radius_sigma, sqrt(2 ln(opacity / min_alpha)))``;
* culled (radius 0) when ``z < near`` or ``z > far``, ``det(Σ2d) <= 0``, ``opacity < min_alpha``
  or the radius box lies entirely off screen.

This module is the plain reference; the numba backend has its own per-Gaussian kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p4dsim.render.base import RasterSettings
from p4dsim.scene.gaussians import GaussianSet


@dataclass
class ProjectedGaussians:
    """N Gaussians projected into one camera (rows align with the input GaussianSet).

    means2d: [N, 2] image coordinates (u, v) in pixels; conics: [N, 3] (a, b, c) with the
    inverse 2D covariance [[a, b], [b, c]] (pixels⁻²); depths: [N] camera z (metres);
    radii: [N, 2] int32 half extents in pixels (x, y), 0 where culled; valid: [N] bool.
    """

    means2d: np.ndarray
    conics: np.ndarray
    depths: np.ndarray
    radii: np.ndarray
    valid: np.ndarray


def quats_to_rotmats(quats: np.ndarray) -> np.ndarray:
    """Rotation matrices [N, 3, 3] from quaternions [N, 4] (w, x, y, z), normalised first."""
    q = np.asarray(quats, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    R = np.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return R.reshape(-1, 3, 3)


def project_gaussians(
    gaussians: GaussianSet,
    viewmat: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    settings: RasterSettings | None = None,
) -> ProjectedGaussians:
    """Project ``gaussians`` (world frame) into the camera ``viewmat`` [4, 4] T_camera_world.

    K: [3, 3] pinhole intrinsics (fx, fy, cx, cy in pixels); width, height in pixels.
    """
    s = settings or RasterSettings()
    viewmat = np.asarray(viewmat, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]

    Rcw, tcw = viewmat[:3, :3], viewmat[:3, 3]
    mc = gaussians.means.astype(np.float64) @ Rcw.T + tcw
    M = quats_to_rotmats(gaussians.quats) * gaussians.scales.astype(np.float64)[:, None, :]
    cov_w = M @ np.swapaxes(M, 1, 2)
    cov_c = Rcw[None] @ cov_w @ Rcw.T[None]

    x, y, z = mc[:, 0], mc[:, 1], mc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tan_fovx = 0.5 * width / fx
        tan_fovy = 0.5 * height / fy
        lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
        lim_x_neg = cx / fx + 0.3 * tan_fovx
        lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
        lim_y_neg = cy / fy + 0.3 * tan_fovy
        tx = z * np.clip(x / z, -lim_x_neg, lim_x_pos)
        ty = z * np.clip(y / z, -lim_y_neg, lim_y_pos)

        n = len(gaussians)
        J = np.zeros((n, 2, 3))
        J[:, 0, 0] = fx / z
        J[:, 0, 2] = -fx * tx / (z * z)
        J[:, 1, 1] = fy / z
        J[:, 1, 2] = -fy * ty / (z * z)
        cov2d = J @ cov_c @ np.swapaxes(J, 1, 2)
        cov2d[:, 0, 0] += s.eps2d
        cov2d[:, 1, 1] += s.eps2d
        det = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
        conics = np.stack(
            [cov2d[:, 1, 1] / det, -cov2d[:, 0, 1] / det, cov2d[:, 0, 0] / det], axis=-1
        )
        means2d = np.stack([fx * x / z + cx, fy * y / z + cy], axis=-1)

        opac = gaussians.opacities.astype(np.float64)
        extend = np.minimum(
            s.radius_sigma, np.sqrt(2.0 * np.log(np.maximum(opac, s.min_alpha) / s.min_alpha))
        )
        rx = np.ceil(extend * np.sqrt(cov2d[:, 0, 0]))
        ry = np.ceil(extend * np.sqrt(cov2d[:, 1, 1]))

        valid = (z >= s.near) & (z <= s.far) & (det > 0) & (opac >= s.min_alpha)
        valid &= (rx > 0) | (ry > 0)
        valid &= ~(
            (means2d[:, 0] + rx <= 0)
            | (means2d[:, 0] - rx >= width)
            | (means2d[:, 1] + ry <= 0)
            | (means2d[:, 1] - ry >= height)
        )
    radii = np.where(valid[:, None], np.stack([rx, ry], axis=-1), 0).astype(np.int32)
    return ProjectedGaussians(means2d, conics, z.copy(), radii, valid)
