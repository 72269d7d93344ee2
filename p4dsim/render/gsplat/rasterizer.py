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
from dataclasses import dataclass
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


def _project(
    s: RasterSettings,
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    packed: bool,
) -> tuple:
    """gsplat's projection with p4dsim's settings (pinhole, classic, no compensation)."""
    from gsplat import fully_fused_projection

    return fully_fused_projection(
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
        packed=packed,
        calc_compensations=False,
        camera_model="pinhole",
        opacities=opacities,
    )


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
        isect_offset_encode,
        isect_tiles,
        rasterize_to_pixels,
    )

    s = settings
    t = int(s.tile_size)
    batch = tuple(means.shape[:-2])
    N, D = int(means.shape[-2]), int(feats.shape[-1])
    C = int(viewmats.shape[-3])
    radii, means2d, depths, conics, _ = _project(
        s, means, quats, scales, opacities, viewmats, Ks, width, height, False
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


#: (means, quats, scales, opacities) tensors of one Gaussian set
Gaussians = tuple


@dataclass
class Projected:
    """Gaussians projected into images, packed (one row per visible Gaussian and image, as
    gsplat's ``packed=True`` projection returns them): image index, row of the Gaussian in
    the caller's feature table, and gsplat's radii, 2D means, depths, conics, plus the
    opacity of each row."""

    image_ids: torch.Tensor  # [nnz] int32
    rows: torch.Tensor  # [nnz] int64
    radii: torch.Tensor  # [nnz, 2]
    means2d: torch.Tensor  # [nnz, 2]
    depths: torch.Tensor  # [nnz]
    conics: torch.Tensor  # [nnz, 3]
    opacities: torch.Tensor  # [nnz]


def project_packed(
    settings: RasterSettings,
    means: torch.Tensor,  # [N, 3] or [B, N, 3]
    quats: torch.Tensor,  # same leading dims, 4
    scales: torch.Tensor,  # same leading dims, 3
    opacities: torch.Tensor,  # [N] or [B, N]
    viewmats: torch.Tensor,  # [I, 4, 4] (shared Gaussians) or [B, 1, 4, 4] (one camera each)
    Ks: torch.Tensor,  # [I, 3, 3] or [B, 1, 3, 3]
    width: int,
    height: int,
    row_offset: int = 0,
) -> Projected:
    """gsplat's packed projection with ``settings`` (pinhole, classic): either one set of
    Gaussians seen by I cameras (image i = camera i; the Gaussians are read once, not copied
    per image), or B sets seen by one camera each (image b = set b). Rows are the
    Gaussians' indices plus ``row_offset``."""

    s = settings
    shared = means.dim() == 2
    batch_ids, camera_ids, gids, radii, means2d, depths, conics, _ = _project(
        s, means, quats, scales, opacities, viewmats, Ks, width, height, True
    )
    if shared:
        image_ids, opac = camera_ids, opacities[gids]
    else:
        image_ids, opac = batch_ids, opacities[batch_ids, gids]
    return Projected(image_ids, gids.long() + row_offset, radii, means2d, depths, conics, opac)


@dataclass
class PackedRaster:
    """Packed projections sorted by image, tile and depth once; :meth:`composite` then
    composites any per-Gaussian channels with them (the same weights every time), on every
    tile or only on the tiles a mask selects."""

    settings: RasterSettings
    means2d: torch.Tensor
    conics: torch.Tensor
    opacities: torch.Tensor
    rows: torch.Tensor
    depths: torch.Tensor
    offsets: torch.Tensor  # [I, tiles high, tiles wide]
    flatten_ids: torch.Tensor
    n_images: int
    width: int
    height: int

    def composite(
        self,
        feats: torch.Tensor,  # [rows, D] per-Gaussian channels, indexed by Projected.rows
        with_depth: bool = True,
        tile_mask: torch.Tensor | None = None,  # [I, tiles high, tiles wide] bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(channels [I, H, W, D], expected depth [I, H, W] or None, alpha [I, H, W]) on a
        black background; tiles outside ``tile_mask`` are left black with alpha 0."""
        import torch
        from gsplat import rasterize_to_pixels

        D = int(feats.shape[-1])
        nnz = int(self.rows.shape[0])
        used = D + int(with_depth)
        ch = _kernel_channels(used)
        colors = torch.empty((nnz, ch), dtype=torch.float32, device=feats.device)
        colors[:, :D] = feats.index_select(0, self.rows)
        if with_depth:
            colors[:, D] = self.depths
        colors[:, used:] = 0.0
        out, alpha = rasterize_to_pixels(
            self.means2d,
            self.conics,
            colors,
            self.opacities,
            self.width,
            self.height,
            int(self.settings.tile_size),
            self.offsets,
            self.flatten_ids,
            backgrounds=None,
            masks=tile_mask,
            packed=True,
        )
        alpha = alpha[..., 0]
        depth = out[..., D] / alpha.clamp(min=1e-10) if with_depth else None
        return out[..., :D], depth, alpha


def prepare_packed(
    settings: RasterSettings, parts: list[Projected], n_images: int, width: int, height: int
) -> PackedRaster | None:
    """Sort the packed projections ``parts`` together into ``n_images`` images (tile
    intersections, offsets); None when nothing is in view."""
    import torch
    from gsplat import isect_offset_encode, isect_tiles

    t = int(settings.tile_size)
    fields = [
        (p.image_ids, p.rows, p.radii, p.means2d, p.depths, p.conics, p.opacities) for p in parts
    ]
    joined = [torch.cat(x) if len(x) > 1 else x[0] for x in zip(*fields, strict=True)]
    image_ids, rows, radii, means2d, depths, conics, opac = joined
    if int(rows.shape[0]) == 0:
        return None
    tw, th = -(-int(width) // t), -(-int(height) // t)
    _, isect_ids, flatten_ids = isect_tiles(
        means2d,
        radii,
        depths,
        t,
        tw,
        th,
        packed=True,
        n_images=n_images,
        image_ids=image_ids.long(),
        gaussian_ids=rows,
    )
    offsets = isect_offset_encode(isect_ids, n_images, tw, th)
    return PackedRaster(
        settings,
        means2d,
        conics,
        opac,
        rows,
        depths,
        offsets,
        flatten_ids,
        n_images,
        int(width),
        int(height),
    )


@dataclass
class DenseRaster:
    """B sets of N Gaussians, one camera each, projected dense (gsplat's ``packed=False``:
    every Gaussian of every image has a row) and sorted by image, tile and depth once;
    :meth:`composite` as :meth:`PackedRaster.composite`."""

    settings: RasterSettings
    means2d: torch.Tensor  # [B, 1, N, 2]
    conics: torch.Tensor  # [B, 1, N, 3]
    opacities: torch.Tensor  # [B, 1, N]
    depths: torch.Tensor  # [B, 1, N]
    offsets: torch.Tensor  # [B, 1, tiles high, tiles wide]
    flatten_ids: torch.Tensor
    width: int
    height: int

    def composite(
        self,
        feats: torch.Tensor,  # [N, D] per-Gaussian channels
        with_depth: bool = True,
        tile_mask: torch.Tensor | None = None,  # [B, tiles high, tiles wide] bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        import torch
        from gsplat import rasterize_to_pixels

        D = int(feats.shape[-1])
        B, _, N = self.depths.shape
        used = D + int(with_depth)
        ch = _kernel_channels(used)
        colors = torch.empty((B, 1, N, ch), dtype=torch.float32, device=feats.device)
        colors[..., :D] = feats
        if with_depth:
            colors[..., D] = self.depths
        colors[..., used:] = 0.0
        out, alpha = rasterize_to_pixels(
            self.means2d,
            self.conics,
            colors,
            self.opacities,
            self.width,
            self.height,
            int(self.settings.tile_size),
            self.offsets,
            self.flatten_ids,
            backgrounds=None,
            masks=None if tile_mask is None else tile_mask[:, None],
            packed=False,
        )
        out, alpha = out[:, 0], alpha[:, 0, ..., 0]
        depth = out[..., D] / alpha.clamp(min=1e-10) if with_depth else None
        return out[..., :D], depth, alpha


def prepare_dense(
    settings: RasterSettings,
    static: Gaussians | None,
    actors: Gaussians | None,
    viewmats: torch.Tensor,  # [B, 4, 4]
    Ks: torch.Tensor,  # [B, 3, 3]
    width: int,
    height: int,
) -> DenseRaster:
    """Each step's Gaussians (the static ones, then the step's actors) projected dense into
    its camera and sorted; the static Gaussians are copied once per step."""
    import torch
    from gsplat import isect_offset_encode, isect_tiles

    s = settings
    B = int(viewmats.shape[0])
    sets = []
    if static is not None:
        sets.append([x.unsqueeze(0).expand(B, *x.shape) for x in static])
    if actors is not None:
        sets.append(list(actors))
    means, quats, scales, opac = (
        torch.cat(x, dim=1) if len(x) > 1 else x[0].contiguous() for x in zip(*sets, strict=True)
    )
    radii, means2d, depths, conics, _ = _project(
        s, means, quats, scales, opac, viewmats[:, None], Ks[:, None], width, height, False
    )
    wait_for_stream()
    t = int(s.tile_size)
    tw, th = -(-int(width) // t), -(-int(height) // t)
    _, isect_ids, flatten_ids = isect_tiles(
        means2d, radii, depths, t, tw, th, packed=False, n_images=B
    )
    offsets = isect_offset_encode(isect_ids, B, tw, th).reshape(B, 1, th, tw)
    return DenseRaster(
        settings,
        means2d,
        conics,
        opac[:, None],
        depths,
        offsets,
        flatten_ids,
        int(width),
        int(height),
    )


def rasterize_packed(
    settings: RasterSettings,
    parts: list[Projected],
    feats: torch.Tensor,  # [rows, D] per-Gaussian features, indexed by Projected.rows
    n_images: int,
    width: int,
    height: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Composite the packed projections ``parts`` into ``n_images`` images; returns (feats
    [I, H, W, D], depth [I, H, W], alpha [I, H, W]) on a black background, as
    :func:`rasterize` (render_mode "RGB+ED")."""
    import torch

    pr = prepare_packed(settings, parts, n_images, width, height)
    if pr is None:
        D = int(feats.shape[-1])
        z = torch.zeros((n_images, height, width), device=feats.device)
        return torch.zeros((n_images, height, width, D), device=feats.device), z, z.clone()
    f, depth, alpha = pr.composite(feats)
    assert depth is not None
    return f, depth, alpha


def rasterize_steps(
    settings: RasterSettings,
    static: Gaussians | None,  # shared by every step: [Ns, 3], [Ns, 4], [Ns, 3], [Ns]
    actors: Gaussians | None,  # per step: [B, Na, 3], [B, Na, 4], [B, Na, 3], [B, Na]
    feats: torch.Tensor,  # [Ns + Na, D] per-Gaussian channels (static rows, then actors')
    n_main: int,  # channels composited on every tile; the rest only on ``label_mask``
    viewmats: torch.Tensor,  # [B, 4, 4]
    Ks: torch.Tensor,  # [B, 3, 3]
    width: int,
    height: int,
    label_mask: torch.Tensor | None,  # [B, tiles high, tiles wide] bool
    packed: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """B images, image b = the static Gaussians and step b's actors seen by camera b,
    sorted once: packed (the static Gaussians projected once into all B cameras, never
    copied per step; rows only for Gaussians in view: least memory) or dense
    (:func:`prepare_dense`: fewer host synchronisations). Returns (channels [B, H, W, n_main], depth, alpha [B, H, W], the remaining
    channels [B, H, W, D - n_main] composited with the same weights on the tiles of
    ``label_mask`` only, zero elsewhere, in a second pass; without a mask every channel in
    one pass on every tile; None when there are none)."""
    import torch

    B = int(viewmats.shape[0])
    D = int(feats.shape[-1])
    dev = feats.device
    parts = []
    ns = 0
    pr: PackedRaster | DenseRaster | None = None
    if not packed and (static is not None or actors is not None):
        pr = prepare_dense(settings, static, actors, viewmats, Ks, width, height)
    else:
        if static is not None:
            ns = int(static[0].shape[0])
            parts.append(project_packed(settings, *static, viewmats, Ks, width, height))
        if actors is not None:
            parts.append(
                project_packed(
                    settings, *actors, viewmats[:, None], Ks[:, None], width, height, row_offset=ns
                )
            )
        pr = prepare_packed(settings, parts, B, width, height) if parts else None
    if pr is None:
        z = torch.zeros((B, height, width), device=dev)
        main = torch.zeros((B, height, width, n_main), device=dev)
        rest = torch.zeros((B, height, width, D - n_main), device=dev) if D > n_main else None
        return main, z, z.clone(), rest
    if label_mask is None or D == n_main:
        every, depth, alpha = pr.composite(feats)
        assert depth is not None
        rest = every[..., n_main:] if D > n_main else None
        return every[..., :n_main], depth, alpha, rest
    main, depth, alpha = pr.composite(feats[:, :n_main])
    assert depth is not None
    if bool(label_mask.any()):
        rest, _, _ = pr.composite(
            feats[:, n_main:].contiguous(), with_depth=False, tile_mask=label_mask
        )
    else:
        rest = torch.zeros((B, height, width, D - n_main), device=dev)
    return main, depth, alpha, rest


def rasterize_windows(
    settings: RasterSettings,
    means: torch.Tensor,  # [P, M, 3]
    quats: torch.Tensor,  # [P, M, 4]
    scales: torch.Tensor,  # [P, M, 3]
    opacities: torch.Tensor,  # [P, M]
    viewmats: torch.Tensor,  # [P, 4, 4]
    Ks: torch.Tensor,  # [P, 3, 3]
    width: int,
    height: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """P images of P Gaussian sets, one camera each (packed): (depth, alpha) [P, H, W]."""
    import torch

    P, M = int(means.shape[0]), int(means.shape[1])
    proj = project_packed(
        settings, means, quats, scales, opacities, viewmats[:, None], Ks[:, None], width, height
    )
    _, d, al = rasterize_packed(
        settings, [proj], torch.zeros((M, 0), device=means.device), P, width, height
    )
    return d, al


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
