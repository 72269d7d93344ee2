"""The label statistics of :mod:`p4dsim.labels`, computed on the GPU for a batch of frames:
visible pixels and 2D boxes per actor (:func:`visible_stats`) and the pixels each actor
covers when rendered alone (:func:`alone_pixels`). Same rules as the CPU path (the actor's
channel exceeds 0.5 and the surface lies inside its box grown by
:data:`~p4dsim.labels.BOX_TOL_M`); :func:`inside_pixels` and :func:`label_stats` are plain
torch and are tested on the CPU against :mod:`p4dsim.labels`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from p4dsim.geometry import rotmat_to_quat
from p4dsim.render.base import RasterSettings
from p4dsim.render.gsplat.rasterizer import rasterize_windows
from p4dsim.render.gsplat.scene import SceneTensors, grown_box_bounds, quat_mul

if TYPE_CHECKING:
    import torch

    from p4dsim.types import Camera


def visible_stats(
    channels: torch.Tensor,  # [B, H, W, A] rendered one-hot actor channels
    depth: torch.Tensor,  # [B, H, W] camera z (inf sky, 0 none)
    K: np.ndarray,
    T_ac: np.ndarray,  # [B, A, 4, 4] T_actor_camera
    st: SceneTensors,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Visible pixels [B, A] and their 2D boxes [B, A, 4] (x0, y0, x1, y1; zeros when
    none) under the rules of :mod:`p4dsim.labels`: the actor's channel exceeds 0.5 (at
    most one actor's can) and the surface lies inside its grown box. One pass over the
    images (each pixel tested against the box of the actor that dominates it), with no
    synchronisation with the host."""
    import torch

    B, H, W, A = channels.shape
    dev = channels.device
    val, aid = channels.max(dim=-1)
    key = aid + A * torch.arange(B, device=dev).view(B, 1, 1)  # [B, H, W]
    T = _pose_tensor(T_ac, dev).reshape(B * A, 4, 4)
    half = st.half_grown.repeat(B, 1)  # [B * A, 3]
    cols = torch.arange(W, device=dev).view(1, 1, W)
    rows = torch.arange(H, device=dev).view(1, H, 1)
    inside = inside_pixels(depth, cols, rows, K, T, half, key)
    vid = torch.where((val > 0.5) & inside, aid, -1)  # visible actor per pixel, -1 none
    return label_stats(vid, A)


def _pose_tensor(T: np.ndarray, device: torch.device) -> torch.Tensor:
    import torch

    return torch.as_tensor(np.asarray(T, np.float32), device=device)


def alone_pixels(
    settings: RasterSettings,
    st: SceneTensors,
    viewmats: np.ndarray,  # [B, 4, 4]
    cam: Camera,
    poses: np.ndarray,  # [B, A, 4, 4] T_world_actor
    present: np.ndarray,  # [B, A]
    T_ac: np.ndarray,  # [B, A, 4, 4] T_actor_camera
) -> torch.Tensor:
    """Pixels [B, A] each actor covers rendered alone (opacity > 0.5, surface inside its
    box), as :func:`p4dsim.labels.alone_pixels`. Every (step, actor) in view is drawn in
    one gsplat call, each in a window of the image around the projection of its box grown
    as for the inside test (no pixel outside it can count; one window size for all, the
    largest, kept inside the image)."""
    import torch

    dev = st.means.device
    B, A = present.shape
    W, H = cam.width, cam.height
    out = torch.zeros((B, A), dtype=torch.int64, device=dev)
    pb, pa = np.nonzero(present)
    if len(pb) == 0:
        return out
    # the boxes grown as for the inside test, projected into their cameras
    bounds, ok = grown_box_bounds(st.box_sizes[pa], poses[pb, pa], viewmats[pb], cam.K)
    # a pixel counts when its centre's ray meets the box: one pixel of margin
    x0 = np.clip(np.floor(bounds[:, 0]) - 1, 0, W).astype(np.int64)
    y0 = np.clip(np.floor(bounds[:, 1]) - 1, 0, H).astype(np.int64)
    x1 = np.clip(np.ceil(bounds[:, 2]) + 1, 0, W).astype(np.int64)
    y1 = np.clip(np.ceil(bounds[:, 3]) + 1, 0, H).astype(np.int64)
    keep = ok & (x1 > x0) & (y1 > y0)
    if not keep.any():
        return out
    pb, pa, x0, y0, x1, y1 = pb[keep], pa[keep], x0[keep], y0[keep], x1[keep], y1[keep]
    t = int(settings.tile_size)
    # one window size for all pairs (the largest, kept inside the image): one gsplat call
    # (measured: a call per size class cost 4.5x more on the bench scene than one call)
    ww = min(W, -(-int((x1 - x0).max()) // t) * t)
    wh = min(H, -(-int((y1 - y0).max()) // t) * t)
    x0, y0 = np.minimum(x0, W - ww), np.minimum(y0, H - wh)
    T_ac_t = _pose_tensor(T_ac, dev).reshape(B * A, 4, 4)
    chunk = max(1, (64 << 20) // (ww * wh))  # pairs per call: at most ~64M window pixels
    for c0 in range(0, len(pb), chunk):
        sl = slice(c0, c0 + chunk)
        n = _alone_counts(
            settings, st, viewmats, cam, poses, T_ac_t, pb[sl], pa[sl], x0[sl], y0[sl], ww, wh
        )
        out.view(-1).index_add_(0, torch.as_tensor(pb[sl] * A + pa[sl], device=dev), n)
    return out


def _alone_counts(
    settings: RasterSettings,
    st: SceneTensors,
    viewmats: np.ndarray,  # [B, 4, 4]
    cam: Camera,
    poses: np.ndarray,  # [B, A, 4, 4]
    T_ac: torch.Tensor,  # [B * A, 4, 4] T_actor_camera
    cb: np.ndarray,  # [P] step of each pair
    ca: np.ndarray,  # [P] actor of each pair
    x0: np.ndarray,  # [P] window origins (pixels)
    y0: np.ndarray,
    ww: int,
    wh: int,
) -> torch.Tensor:
    """Pixels [P] each (step, actor) pair covers alone in its ww×wh window."""
    import torch

    dev = st.means.device
    A = poses.shape[1]
    P = len(cb)
    Pw = poses[cb, ca]
    R = _pose_tensor(Pw[:, :3, :3], dev)
    tr = _pose_tensor(Pw[:, :3, 3], dev)
    q = _pose_tensor(rotmat_to_quat(Pw[:, :3, :3]), dev)
    ia = torch.as_tensor(ca, device=dev)
    means = torch.einsum("pij,pnj->pni", R, st.actor_means[ia]) + tr[:, None]
    quats = quat_mul(q[:, None, :], st.actor_quats[ia])
    Ks = np.tile(np.asarray(cam.K, np.float64), (P, 1, 1))
    Ks[:, 0, 2] -= x0
    Ks[:, 1, 2] -= y0
    d, al = rasterize_windows(
        settings,
        means,
        quats,
        st.actor_scales[ia],
        st.actor_opacities[ia],
        _pose_tensor(viewmats[cb], dev),
        _pose_tensor(Ks, dev),
        ww,
        wh,
    )
    inside = inside_pixels(
        d,
        torch.arange(ww, device=dev).view(1, 1, ww) + torch.as_tensor(x0, device=dev).view(P, 1, 1),
        torch.arange(wh, device=dev).view(1, wh, 1) + torch.as_tensor(y0, device=dev).view(P, 1, 1),
        cam.K,
        T_ac[torch.as_tensor(cb * A + ca, device=dev)],
        st.half_grown[ia],
        torch.arange(P, device=dev).view(P, 1, 1),
    )
    return ((al > 0.5) & inside).sum(dim=(1, 2))


def inside_pixels(
    z: torch.Tensor,  # [I, H, W] camera z (m)
    cols: torch.Tensor,  # pixel columns, broadcastable to [I, H, W]
    rows: torch.Tensor,  # pixel rows, broadcastable to [I, H, W]
    K: np.ndarray,
    T_box_cam: torch.Tensor,  # [G, 4, 4] per box
    half: torch.Tensor,  # [G, 3] half sizes (m), grown
    box: torch.Tensor,  # box index in [0, G) per pixel, broadcastable to [I, H, W]
) -> torch.Tensor:
    """bool [I, H, W]: whether each pixel's surface (depth ``z`` through the pixel centre)
    lies inside box ``box`` of the pixel, as :func:`p4dsim.labels.inside_box_mask` (float32
    here). The ray of pixel (col, row) in the box frame is separable:
    ``R[:, 0] u + R[:, 1] v + R[:, 2]`` with u, v the normalised image coordinates."""
    import torch

    ok = torch.isfinite(z) & (z > 0)
    z = torch.where(ok, z, 0.0)
    u = (cols.to(torch.float32) + 0.5 - float(K[0, 2])) / float(K[0, 0])
    v = (rows.to(torch.float32) + 0.5 - float(K[1, 2])) / float(K[1, 1])
    for i in range(3):
        R = T_box_cam[:, i, :3]
        loc = (R[:, 0][box] * u + R[:, 1][box] * v + R[:, 2][box]) * z + T_box_cam[:, i, 3][box]
        ok &= loc.abs() <= half[:, i][box]
    return ok


def label_stats(vid: torch.Tensor, A: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel counts [I, A] int64 and bounding boxes [I, A, 4] float64 (x0, y0, x1, y1; max
    exclusive; zeros when empty) of each actor's pixels in images of actor indices
    ``vid`` [I, H, W] (-1: none). Reductions per actor, fixed shapes: nothing waits for the
    device and no atomics pile up on one counter."""
    import torch

    I, H, W = vid.shape
    counts, boxes = [], []
    for a in range(A):
        m = vid == a
        counts.append(m.sum(dim=(1, 2)))
        cols = m.any(dim=1).to(torch.uint8)  # [I, W]
        rows = m.any(dim=2).to(torch.uint8)  # [I, H]
        box = torch.stack(
            (
                cols.argmax(dim=-1),
                rows.argmax(dim=-1),
                W - cols.flip(-1).argmax(dim=-1),
                H - rows.flip(-1).argmax(dim=-1),
            ),
            dim=-1,
        ).to(torch.float64)
        boxes.append(torch.where(counts[-1][:, None] > 0, box, 0.0))
    return torch.stack(counts, dim=1), torch.stack(boxes, dim=1)
