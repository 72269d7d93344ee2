"""gsplat's rasterization with p4dsim's settings, and the CUDA plumbing around it.

:func:`rasterize` calls the steps of gsplat 1.5.3's ``rasterization`` (render_mode "RGB+ED",
packed=False, rasterize_mode "classic", pinhole) one by one through gsplat's public exports
(``gsplat.fully_fused_projection``, ``isect_tiles``, ``isect_offset_encode``,
``rasterize_to_pixels``); only the kernel loading (:func:`load_kernels`) reaches into
``gsplat.cuda._backend``, the one place gsplat says whether its extension is built.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from p4dsim.errors import BackendUnavailableError
from p4dsim.render.base import RasterSettings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_KERNELS_READY = False


def load_kernels() -> None:
    """Import gsplat's CUDA extension, compiling it first if this machine has no build yet.

    Logs "compiling gsplat CUDA kernels, first use only ..." only when a compile happens."""
    global _KERNELS_READY
    if _KERNELS_READY:
        return
    try:
        from torch.utils.cpp_extension import _get_build_directory

        build_dir = _get_build_directory("gsplat_cuda", verbose=False)
        built = any(
            os.path.exists(os.path.join(build_dir, f"gsplat_cuda.{ext}")) for ext in ("so", "lib")
        )
    except Exception:  # layout of torch's private helper changed: just say nothing
        built = True
    t0 = time.perf_counter()
    if not built:
        log.warning("compiling gsplat CUDA kernels, first use only (about a minute) ...")
    try:
        from gsplat.cuda._backend import _C
    except Exception as exc:  # compile or import failure
        raise BackendUnavailableError(f"gsplat's CUDA kernels could not be loaded: {exc}") from None
    if _C is None:
        raise BackendUnavailableError(
            "gsplat found no CUDA toolkit to compile its kernels (set CUDA_HOME or use --device cpu)"
        )
    if not built:
        log.warning("gsplat CUDA kernels compiled in %.0f s", time.perf_counter() - t0)
    _KERNELS_READY = True


def rasterize(
    settings: RasterSettings,
    means: torch.Tensor,  # [..., N, 3]
    quats: torch.Tensor,  # [..., N, 4]
    scales: torch.Tensor,  # [..., N, 3]
    opacities: torch.Tensor,  # [..., N]
    feats: torch.Tensor,  # [..., N, D]
    viewmats: torch.Tensor,  # [..., C, 4, 4] T_camera_world
    Ks: torch.Tensor,  # [..., C, 3, 3]
    width: int,
    height: int,
    backgrounds: torch.Tensor | None,  # [..., C, D]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """gsplat with ``settings``; returns (feats [..., C, H, W, D], depth [..., C, H, W],
    alpha [..., C, H, W]).

    The steps of gsplat's ``rasterization`` (render_mode "RGB+ED", non-packed, classic,
    pinhole) called one by one, for two reasons: the host waits for the projection with
    the interpreter lock released (gsplat's tile intersection synchronises inside its C++
    call, holding the lock, which stalls every other thread of a replay), and colour,
    extra channels and depth are written into one buffer already padded to a channel
    count the kernel supports (``rasterization`` concatenates, then pads: two copies of
    [..., C, N, channels])."""
    import torch
    from gsplat import (
        fully_fused_projection,
        isect_offset_encode,
        isect_tiles,
        rasterize_to_pixels,
    )

    s = settings
    t = int(s.tile_size)
    batch = tuple(means.shape[:-2])
    N, D = int(means.shape[-2]), int(feats.shape[-1])
    C = int(viewmats.shape[-3])
    radii, means2d, depths, conics, _ = fully_fused_projection(
        means,
        None,
        quats,
        scales,
        viewmats,
        Ks,
        int(width),
        int(height),
        eps2d=float(s.eps2d),
        near_plane=float(s.near),
        far_plane=float(s.far),
        packed=False,
        calc_compensations=False,
        camera_model="pinhole",
        opacities=opacities,
    )
    wait_for_stream()
    tw, th = -(-int(width) // t), -(-int(height) // t)
    n_images = C * int(np.prod(batch, dtype=np.int64))
    _, isect_ids, flatten_ids = isect_tiles(
        means2d, radii, depths, t, tw, th, packed=False, n_images=n_images
    )
    offsets = isect_offset_encode(isect_ids, n_images, tw, th).reshape(batch + (C, th, tw))
    ch = _kernel_channels(D + 1)
    colors = torch.empty(batch + (C, N, ch), dtype=torch.float32, device=means.device)
    colors[..., :D] = feats[..., None, :, :]
    colors[..., D] = depths
    colors[..., D + 1 :] = 0.0
    bgs = None
    if backgrounds is not None:
        bgs = torch.zeros(batch + (C, ch), dtype=torch.float32, device=means.device)
        bgs[..., :D] = backgrounds
    out, alpha = rasterize_to_pixels(
        means2d,
        conics,
        colors,
        torch.broadcast_to(opacities[..., None, :], batch + (C, N)),
        int(width),
        int(height),
        t,
        offsets,
        flatten_ids,
        backgrounds=bgs,
        packed=False,
    )
    alpha = alpha[..., 0]
    return out[..., :D], out[..., D] / alpha.clamp(min=1e-10), alpha


#: colour channel counts gsplat's rasterization kernel is built for (others are padded)
_KERNEL_CHANNELS = frozenset(
    {1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65, 128, 129, 256, 257, 512, 513}
)


def _kernel_channels(n: int) -> int:
    """The channel count gsplat rasterizes ``n`` channels with: ``n`` itself when its kernel is
    built for it, else the next power of two (gsplat pads to it)."""
    if n in _KERNEL_CHANNELS:
        return n
    if n > 513:
        raise BackendUnavailableError(
            f"gsplat rasterizes at most 513 channels; this scene needs {n} (too many actors)"
        )
    return 1 << (n - 1).bit_length()


def wait_for_stream() -> None:
    """Block until the current CUDA stream's work is done, sleeping with the interpreter lock
    released (a blocking event: no spinning core)."""
    import torch

    done = torch.cuda.Event(blocking=True)
    done.record()
    done.synchronize()


def to_host(*tensors: torch.Tensor) -> list[np.ndarray]:
    """Copy CUDA tensors to fresh pinned host memory (torch's caching host allocator reuses
    blocks once the arrays are gone) with one synchronisation; numpy views of them."""
    import torch

    host = []
    for t in tensors:
        h = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        h.copy_(t, non_blocking=True)
        host.append(h)
    wait_for_stream()
    return [h.numpy() for h in host]
