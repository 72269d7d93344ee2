"""Gaussian rasterizers behind one interface (:class:`~p4dsim.render.base.Renderer`)."""

from __future__ import annotations

from p4dsim.errors import BackendUnavailableError
from p4dsim.render.base import RasterSettings, Renderer, RenderOutput
from p4dsim.types import Device

__all__ = ["Device", "RasterSettings", "RenderOutput", "Renderer", "cuda_available", "get_renderer"]


def cuda_available() -> bool:
    """True when torch sees a CUDA device and gsplat is importable."""
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        import gsplat  # noqa: F401
    except Exception:
        return False
    return True


def get_renderer(device: Device = "auto", settings: RasterSettings | None = None) -> Renderer:
    """The renderer for ``device``: ``cuda`` = gsplat, ``cpu`` = p4dsim's numba rasterizer,
    ``auto`` = cuda when available, else cpu."""
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    if device == "cpu":
        from p4dsim.render.cpu import CpuRenderer

        return CpuRenderer(settings)
    if device == "cuda":
        if not cuda_available():
            raise BackendUnavailableError(
                "device 'cuda' was asked for but no CUDA GPU with gsplat is available here; "
                "use --device cpu (or device: cpu in the scenario's render section)"
            )
        try:
            from p4dsim.render.gsplat import GsplatRenderer
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the gsplat backend could not be loaded: {exc}"
            ) from None
        return GsplatRenderer(settings)
    raise BackendUnavailableError(f"unknown device '{device}' (use auto, cpu or cuda)")
