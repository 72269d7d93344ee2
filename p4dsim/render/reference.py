"""A slow, plain numpy rasterizer that states the compositing rule directly (for tests).

Per camera every Gaussian surviving :func:`~p4dsim.render.projection.project_gaussians` is
sorted once by camera depth (stable, so ties keep array order) and every pixel walks that
list front to back, exactly as gsplat's per-pixel loop does but without tiles:

* pixel centre ``(u, v) = (j + 0.5, i + 0.5)``, ``d = mean2d - (u, v)``;
* ``sigma = 0.5 (a dx² + c dy²) + b dx dy``; ``alpha = min(max_alpha, opacity exp(-sigma))``;
* skipped when ``sigma < 0`` or ``alpha < min_alpha``;
* stop, without using it, at the first Gaussian whose ``T (1 - alpha) <= min_transmittance``;
* ``out += w feature`` with ``w = alpha T``; then ``T *= 1 - alpha``.

The loop runs over Gaussians with the pixels vectorised, which is the same per-pixel recurrence.
The gsplat radius box only skips pixels where ``alpha < min_alpha``, so no tiles are needed.
"""

from __future__ import annotations

import numpy as np

from p4dsim.render.base import RasterSettings, Renderer, RenderOutput
from p4dsim.render.projection import project_gaussians
from p4dsim.scene.gaussians import GaussianSet


def render_reference(
    gaussians: GaussianSet,
    viewmats: np.ndarray,
    Ks: np.ndarray,
    width: int,
    height: int,
    background: np.ndarray | None = None,
    extra: np.ndarray | None = None,
    settings: RasterSettings | None = None,
) -> RenderOutput:
    """Render C cameras (viewmats [C, 4, 4] T_camera_world, Ks [C, 3, 3]) in float64.

    Returns float32 arrays as documented by :class:`~p4dsim.render.base.RenderOutput`.
    """
    s = settings or RasterSettings()
    viewmats = np.asarray(viewmats, dtype=np.float64).reshape(-1, 4, 4)
    Ks = np.asarray(Ks, dtype=np.float64).reshape(-1, 3, 3)
    bg = np.zeros(3) if background is None else np.asarray(background, dtype=np.float64)
    n_extra = 0 if extra is None else int(np.asarray(extra).shape[1])
    C = viewmats.shape[0]

    rgb = np.zeros((C, height, width, 3))
    depth = np.zeros((C, height, width))
    alpha = np.zeros((C, height, width))
    extra_out = np.zeros((C, height, width, n_extra))

    jj, ii = np.meshgrid(np.arange(width), np.arange(height))
    px = jj.ravel() + 0.5
    py = ii.ravel() + 0.5
    opac = gaussians.opacities.astype(np.float64)
    for c in range(C):
        proj = project_gaussians(gaussians, viewmats[c], Ks[c], width, height, s)
        ids = np.flatnonzero(proj.valid)
        ids = ids[np.argsort(proj.depths[ids], kind="stable")]

        T = np.ones(px.shape)
        done = np.zeros(px.shape, dtype=bool)
        acc_rgb = np.zeros((px.size, 3))
        acc_d = np.zeros(px.size)
        acc_e = np.zeros((px.size, n_extra))
        for g in ids:
            a, b, cc = proj.conics[g]
            dx = proj.means2d[g, 0] - px
            dy = proj.means2d[g, 1] - py
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            with np.errstate(over="ignore"):
                al = np.minimum(s.max_alpha, opac[g] * np.exp(-sigma))
            use = ~done & (sigma >= 0) & (al >= s.min_alpha)
            next_T = T * (1.0 - al)
            stop = use & (next_T <= s.min_transmittance)
            done |= stop
            use &= ~stop
            w = np.where(use, al * T, 0.0)
            acc_rgb += w[:, None] * gaussians.colors[g].astype(np.float64)
            acc_d += w * proj.depths[g]
            if n_extra:
                acc_e += w[:, None] * np.asarray(extra[g], dtype=np.float64)
            T = np.where(use, next_T, T)

        acc_a = 1.0 - T
        rgb[c] = (acc_rgb + T[:, None] * bg).reshape(height, width, 3)
        alpha[c] = acc_a.reshape(height, width)
        depth[c] = (acc_d / np.maximum(acc_a, 1e-10)).reshape(height, width)
        extra_out[c] = acc_e.reshape(height, width, n_extra)

    f32 = np.float32
    return RenderOutput(
        rgb=rgb.astype(f32),
        depth=depth.astype(f32),
        alpha=alpha.astype(f32),
        extra=extra_out.astype(f32) if extra is not None else None,
    )


class ReferenceRenderer(Renderer):
    """:func:`render_reference` behind the :class:`Renderer` interface (slow; for tests)."""

    name = "reference"

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
        return render_reference(
            gaussians, viewmats, Ks, width, height, background, extra, self.settings
        )
