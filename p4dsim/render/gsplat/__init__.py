"""The CUDA backend (gsplat): the rasterizer (:mod:`.rasterizer`), the 4D scene on the GPU
(:mod:`.scene`), the GPU label statistics (:mod:`.labels`), GPU JPEG (:mod:`.jpeg`) and the
:class:`~p4dsim.render.base.Renderer` that puts them together (:mod:`.renderer`).

Importing this package needs neither torch nor gsplat; constructing
:class:`GsplatRenderer` loads both."""

from p4dsim.render.gsplat.rasterizer import load_kernels
from p4dsim.render.gsplat.renderer import GsplatRenderer

__all__ = ["GsplatRenderer", "load_kernels"]
