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
from typing import TYPE_CHECKING

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.render.frames import render_each
from p4dsim.scene.gaussians import GaussianSet

if TYPE_CHECKING:
    from p4dsim.render.frames import RenderedFrame
    from p4dsim.scenario.model import OutputModel
    from p4dsim.scenario.timeline import Timeline
    from p4dsim.scene.scene4d import Scene4D


@dataclass(frozen=True)
class RasterSettings:
    """Rasterization constants every backend must honour (gsplat's defaults where it has them)."""

    #: pixels², added to each 2D covariance (gsplat's default is 0.3). Kept small: a scene's
    #: Gaussians carry their own source-pixel footprint (``BuildConfig.footprint_sigma_px``,
    #: 0.49² + 0.02 ≈ 0.26 px² at the source view), and a fixed screen-space term does not
    #: grow when a view magnifies a surface, so a large one would leave gaps between
    #: neighbouring Gaussians there (dotted surfaces when the camera approaches them).
    eps2d: float = 0.02
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
    #: time steps per :meth:`render_steps` call that the backend renders best (the replay
    #: pipeline asks for batches of this many)
    batch_size: int = 1

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

    def render_steps(
        self,
        scene: Scene4D,
        timeline: Timeline,
        ks: list[int],
        output: OutputModel | None = None,
    ) -> list[RenderedFrame]:
        """The frames of time steps ``ks`` of ``timeline`` (see
        :class:`~p4dsim.render.frames.RenderedFrame`). ``output``: the run's output settings,
        for backends that can encode on the device. This default renders one step at a time
        (:func:`~p4dsim.render.frames.render_each`); a backend with a batched path overrides
        it."""
        return render_each(self, scene, timeline, list(ks))


def check_inputs(
    gaussians: GaussianSet,
    viewmats: np.ndarray,
    Ks: np.ndarray,
    width: int,
    height: int,
    background: np.ndarray | None,
    extra: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate the arguments of :meth:`Renderer.render` (every backend calls it first);
    returns (viewmats [C,4,4] f64, Ks [C,3,3] f64, bg [3] f64, extra)."""
    if not isinstance(gaussians, GaussianSet):
        raise ConfigError(f"render: gaussians must be a GaussianSet, got {type(gaussians)!r}")
    viewmats = np.asarray(viewmats, dtype=np.float64)
    Ks = np.asarray(Ks, dtype=np.float64)
    if viewmats.ndim == 2:
        viewmats = viewmats[None]
    if Ks.ndim == 2:
        Ks = Ks[None]
    if viewmats.ndim != 3 or viewmats.shape[1:] != (4, 4):
        raise ConfigError(f"render: viewmats has shape {viewmats.shape}; pass [C, 4, 4]")
    if Ks.shape != (viewmats.shape[0], 3, 3):
        raise ConfigError(
            f"render: Ks has shape {Ks.shape}; pass [C, 3, 3] with C = {viewmats.shape[0]} "
            "(one per viewmat)"
        )
    if not np.all(np.isfinite(viewmats)) or not np.all(np.isfinite(Ks)):
        raise ConfigError("render: viewmats and Ks must be finite")
    if np.any(Ks[:, 0, 0] <= 0) or np.any(Ks[:, 1, 1] <= 0):
        raise ConfigError("render: Ks need positive focal lengths fx = K[0,0] and fy = K[1,1]")
    if int(width) != width or int(height) != height or width <= 0 or height <= 0:
        raise ConfigError(
            f"render: width and height must be positive integers, got {width}x{height}"
        )
    bg = np.zeros(3) if background is None else np.asarray(background, dtype=np.float64)
    if bg.shape != (3,):
        raise ConfigError(f"render: background has shape {bg.shape}; pass an RGB triple [3]")
    if extra is not None:
        extra = np.asarray(extra, dtype=np.float64)
        if extra.ndim != 2 or extra.shape[0] != len(gaussians):
            raise ConfigError(
                f"render: extra has shape {extra.shape}; pass [N, E] with N = {len(gaussians)}"
            )
    return np.ascontiguousarray(viewmats), np.ascontiguousarray(Ks), bg, extra
