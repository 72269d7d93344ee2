"""The renderer interface shared by every backend.

A backend rasterizes a :class:`~p4dsim.scene.gaussians.GaussianSet` for a batch of C cameras
with the same projection (EWA splatting, pinhole), the same low-pass filter ``eps2d`` added to
every 2D covariance, and the same front-to-back alpha compositing as gsplat:

* per Gaussian and pixel: ``alpha = min(max_alpha, opacity * exp(-0.5 * d^T Σ2d⁻¹ d))``,
  skipped when below ``min_alpha``;
* composited in increasing camera depth ``z`` of the Gaussian centre within a tile, with
  transmittance ``T`` stopping once ``T < min_transmittance``;
* outputs RGB (premultiplied sum, plus ``T * background``), expected depth
  ``Σ w z / Σ w`` (camera z, metres; 0 where nothing was hit) and alpha ``Σ w``, and any
  extra per-Gaussian channels composited like colour (not normalised).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from p4dsim.scene.gaussians import GaussianSet


@dataclass(frozen=True)
class RasterSettings:
    """Rasterization constants every backend must honour (gsplat's defaults where it has them)."""

    eps2d: float = 0.1  #: pixels², added to each 2D covariance (gsplat's default is 0.3; p4dsim scenes are built for 0.1)
    near: float = 0.01  #: metres; Gaussians with camera z below are culled
    far: float = 1.0e10  #: metres; Gaussians with camera z above are culled
    min_alpha: float = 1.0 / 255.0
    max_alpha: float = 0.999  #: gsplat 1.5.3's clamp in rasterize_to_pixels (not 3DGS's 0.99)
    min_transmittance: float = 1.0e-4
    #: cap, in standard deviations, on a Gaussian's per-axis screen extent; gsplat 1.5.3 uses
    #: ``min(3.33, sqrt(2 ln(opacity / min_alpha)))`` so nothing with alpha >= min_alpha is cut
    radius_sigma: float = 3.33
    tile_size: int = 16


@dataclass
class RenderOutput:
    """Rendered images for C cameras.

    rgb: float32 [C, H, W, 3] in [0, 1]; depth: float32 [C, H, W] expected camera z (metres,
    0 where alpha is 0); alpha: float32 [C, H, W]; extra: float32 [C, H, W, E] or None.
    """

    rgb: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    extra: np.ndarray | None = None


class Renderer(ABC):
    """A Gaussian rasterizer backend."""

    #: backend name, e.g. ``"cpu"`` or ``"gsplat"``
    name: str = ""

    def __init__(self, settings: RasterSettings | None = None) -> None:
        self.settings = settings or RasterSettings()

    @property
    def device_name(self) -> str:
        """Human-readable name of the device this backend runs on."""
        return self.name

    @abstractmethod
    def render(
        self,
        gaussians: GaussianSet,
        viewmats: np.ndarray,  # [C, 4, 4] T_camera_world
        Ks: np.ndarray,  # [C, 3, 3]
        width: int,
        height: int,
        background: np.ndarray | None = None,  # [3] RGB, default black
        extra: np.ndarray | None = None,  # [N, E] per-Gaussian channels to composite
    ) -> RenderOutput: ...
