"""The last fill of a rendered frame, and its observed mask.

Every rendered frame must leave no pixel without colour and depth, and must say per pixel
whether it shows observed content. Two functions, both pure and independent of the backend:

* :func:`fill_empty` (numpy) and :func:`fill_empty_torch` (torch, any device, batched):
  composite a fill *behind* what was rendered, so that every pixel has colour and depth. The
  fill is a push-pull pyramid over the rendered pixels in which, at every level, only the
  **far side** of a depth edge survives: a coarse cell takes the (alpha-weighted) mean colour
  and inverse depth of those of its children that lie within ``edge_ratio`` of the farthest
  child, and a fine pixel without content takes the bilinear mix of those of its four coarse
  neighbours that lie within ``edge_ratio`` of the farthest one. Holes left by a
  disocclusion thus take the background's colour and depth, never a blend with the
  foreground; holes inside one surface (gaps of a magnified surface) take that surface.
* :func:`observed_mask`: per pixel, whether at least half of its final colour comes from
  observed Gaussians (confidence 1). ``coverage`` is the mean of this mask.

How a caller uses them, per rendered batch (``rgb`` as composited on a black background,
``depth`` as expected depth with ``inf`` on sky and 0 where nothing was hit, ``alpha`` the
accumulated opacity, ``conf`` the composited confidence channel)::

    mask = observed_mask(conf, alpha)        # before or after the fill: it only reads conf
    coverage = float(mask.mean())            # the frame's coverage
    rgb, depth = fill_empty(rgb, depth, alpha)  # or fill_empty_torch on the GPU tensors
    # rgb: no pixel without colour; depth: > 0 everywhere (inf where the fill found only sky)

The fill leaves pixels with ``alpha`` ≥ 1 unchanged; a pixel with partial alpha keeps its
rendered colour and gets ``(1 - alpha)`` times the fill colour added (the fill, interpolated
from the far side of its surroundings, is what lies behind it); its depth is kept when ``alpha`` ≥ ``seed_alpha`` and replaced by the fill's
otherwise. Pixels with ``alpha`` < ``seed_alpha`` are not used as sources of the fill.
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-12


def _check(rgb, depth, alpha) -> None:
    if rgb.shape[:-1] != depth.shape or depth.shape != alpha.shape or rgb.shape[-1] != 3:
        raise ValueError(
            f"fill_empty: rgb {tuple(rgb.shape)} must be [..., H, W, 3] and depth "
            f"{tuple(depth.shape)}, alpha {tuple(alpha.shape)} [..., H, W]"
        )


# ----------------------------------------------------------------------------------------
# numpy


def _np_push(c, q, w, ratio):
    """One coarser level: [B, h, w, 3], [B, h, w], [B, h, w] -> halved (odd sizes padded)."""
    B, h, wd = q.shape
    ph, pw = h % 2, wd % 2
    if ph or pw:
        c = np.pad(c, ((0, 0), (0, ph), (0, pw), (0, 0)))
        q = np.pad(q, ((0, 0), (0, ph), (0, pw)))
        w = np.pad(w, ((0, 0), (0, ph), (0, pw)))
    h2, w2 = q.shape[1] // 2, q.shape[2] // 2
    cb = c.reshape(B, h2, 2, w2, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(B, h2, w2, 4, 3)
    qb = q.reshape(B, h2, 2, w2, 2).transpose(0, 1, 3, 2, 4).reshape(B, h2, w2, 4)
    wb = w.reshape(B, h2, 2, w2, 2).transpose(0, 1, 3, 2, 4).reshape(B, h2, w2, 4)
    has = wb > 0
    qmin = np.where(has, qb, np.inf).min(axis=-1, keepdims=True)
    far = has & (qb <= qmin * ratio + _TINY)
    wf = np.where(far, wb, 0.0)
    sw = wf.sum(axis=-1)
    norm = np.maximum(sw, _TINY)
    cp = (wf[..., None] * cb).sum(axis=-2) / norm[..., None]
    qp = (wf * qb).sum(axis=-1) / norm
    return cp, qp, np.minimum(sw, 1.0)


def _np_pull(cf, qf, wf, cc, qc, ratio):
    """Fill the pixels of a fine level without content (wf == 0) from its filled coarse level."""
    B, h, w = qf.shape
    hc, wc = qc.shape[1:]
    y = (np.arange(h) + 0.5) / 2 - 0.5
    x = (np.arange(w) + 0.5) / 2 - 0.5
    y0 = np.floor(y).astype(np.int64)
    x0 = np.floor(x).astype(np.int64)
    fy, fx = y - y0, x - x0
    ys = [np.clip(y0, 0, hc - 1), np.clip(y0 + 1, 0, hc - 1)]
    xs = [np.clip(x0, 0, wc - 1), np.clip(x0 + 1, 0, wc - 1)]
    wy = [1 - fy, fy]
    wx = [1 - fx, fx]
    qs, cs, bs = [], [], []
    for a in range(2):
        for b in range(2):
            qs.append(qc[:, ys[a]][:, :, xs[b]])
            cs.append(cc[:, ys[a]][:, :, xs[b]])
            bs.append((wy[a][:, None] * wx[b][None, :])[None].repeat(B, axis=0))
    qn = np.stack(qs, -1)
    cn = np.stack(cs, -2)
    bn = np.stack(bs, -1) + 1e-6  # every neighbour may be chosen, even at zero bilinear weight
    qmin = qn.min(axis=-1, keepdims=True)
    bn = np.where(qn <= qmin * ratio + _TINY, bn, 0.0)
    sb = bn.sum(axis=-1)
    q_new = (bn * qn).sum(axis=-1) / sb
    c_new = (bn[..., None] * cn).sum(axis=-2) / sb[..., None]
    empty = wf <= 0
    return np.where(empty[..., None], c_new, cf), np.where(empty, q_new, qf)


def fill_empty(
    rgb: np.ndarray,
    depth: np.ndarray,
    alpha: np.ndarray,
    seed_alpha: float = 0.5,
    edge_ratio: float = 1.1,
    default_depth: float = 1000.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, depth) of a rendered frame with every pixel filled (see the module docstring).

    ``rgb`` float [..., H, W, 3] in [0, 1] (composited on black) or uint8 (returned as
    uint8); ``depth`` [..., H, W] camera z in metres, ``inf`` for sky, 0 or NaN where nothing
    was hit; ``alpha`` [..., H, W] in [0, 1]. Computes in float64 when ``depth`` is
    float64, else in float32. ``edge_ratio``: inverse depths within this
    factor of the farthest count as the same (far) side. ``default_depth``: the depth of a
    frame in which nothing at all was rendered (its colour is then black).
    """
    _check(rgb, depth, alpha)
    lead = depth.shape[:-2]
    H, W = depth.shape[-2:]
    is_u8 = rgb.dtype == np.uint8
    dt = np.float64 if np.asarray(depth).dtype == np.float64 else np.float32
    c_in = rgb.astype(dt) / dt(255.0 if is_u8 else 1.0)
    c_in = c_in.reshape(-1, H, W, 3)
    d = np.asarray(depth, dtype=dt).reshape(-1, H, W)
    a = np.clip(np.asarray(alpha, dtype=dt).reshape(-1, H, W), 0.0, 1.0)
    valid_d = (d > 0) & ~np.isnan(d)
    seed = (a >= seed_alpha) & valid_d
    q0 = np.where(seed, 1.0 / np.where(valid_d, d, 1.0), 0.0)  # inverse depth, sky = 0
    w0 = np.where(seed, a, 0.0)
    c0 = np.where(seed[..., None], c_in / np.maximum(a, _TINY)[..., None], 0.0)
    levels = [(c0, q0, w0)]
    while levels[-1][1].shape[1] > 1 or levels[-1][1].shape[2] > 1:
        levels.append(_np_push(*levels[-1], edge_ratio))
    c, q, w = levels[-1]
    none = w <= 0  # nothing rendered in the whole frame
    c = np.where(none[..., None], 0.0, c)
    q = np.where(none, 1.0 / default_depth, q)
    for i, (cf, qf, wf) in enumerate(reversed(levels[:-1])):
        # At full resolution every pixel takes the fill colour (what lies behind a partly
        # covered pixel is its surroundings' far side, not itself); depth only where empty.
        last = i == len(levels) - 2
        c, q_new = _np_pull(cf, qf, np.zeros_like(wf) if last else wf, c, q, edge_ratio)
        q = np.where(wf > 0, qf, q_new) if last else q_new
    out_c = c_in + (1.0 - a)[..., None] * np.clip(c, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        fill_d = np.where(q > 0, 1.0 / np.maximum(q, _TINY), np.inf)
    out_d = np.where(seed, d, fill_d)
    out_c = out_c.reshape(*lead, H, W, 3)
    out_d = out_d.reshape(*lead, H, W).astype(np.float32)
    if is_u8:
        return np.clip(np.round(out_c * 255.0), 0, 255).astype(np.uint8), out_d
    return out_c.astype(np.float32), out_d


# ----------------------------------------------------------------------------------------
# torch (same algorithm, same arithmetic order; float64 on the CPU reproduces numpy)


def _t_push(c, q, w, ratio):
    import torch.nn.functional as F

    B, h, wd = q.shape
    ph, pw = h % 2, wd % 2
    if ph or pw:
        c = F.pad(c, (0, 0, 0, pw, 0, ph))
        q = F.pad(q, (0, pw, 0, ph))
        w = F.pad(w, (0, pw, 0, ph))
    h2, w2 = q.shape[1] // 2, q.shape[2] // 2
    cb = c.reshape(B, h2, 2, w2, 2, 3).permute(0, 1, 3, 2, 4, 5).reshape(B, h2, w2, 4, 3)
    qb = q.reshape(B, h2, 2, w2, 2).permute(0, 1, 3, 2, 4).reshape(B, h2, w2, 4)
    wb = w.reshape(B, h2, 2, w2, 2).permute(0, 1, 3, 2, 4).reshape(B, h2, w2, 4)
    has = wb > 0
    qmin = qb.masked_fill(~has, float("inf")).amin(dim=-1, keepdim=True)
    far = has & (qb <= qmin * ratio + _TINY)
    wf = wb.where(far, wb.new_zeros(()))
    sw = wf.sum(dim=-1)
    norm = sw.clamp_min(_TINY)
    cp = (wf[..., None] * cb).sum(dim=-2) / norm[..., None]
    qp = (wf * qb).sum(dim=-1) / norm
    return cp, qp, sw.clamp_max(1.0)


def _t_pull(cf, qf, wf, cc, qc, ratio):
    import torch

    B, h, w = qf.shape
    hc, wc = qc.shape[1:]
    dev, dt = qf.device, qf.dtype
    y = (torch.arange(h, device=dev, dtype=dt) + 0.5) / 2 - 0.5
    x = (torch.arange(w, device=dev, dtype=dt) + 0.5) / 2 - 0.5
    y0 = torch.floor(y)
    x0 = torch.floor(x)
    fy, fx = y - y0, x - x0
    y0, x0 = y0.long(), x0.long()
    ys = [y0.clamp(0, hc - 1), (y0 + 1).clamp(0, hc - 1)]
    xs = [x0.clamp(0, wc - 1), (x0 + 1).clamp(0, wc - 1)]
    wy = [1 - fy, fy]
    wx = [1 - fx, fx]
    qs, cs, bs = [], [], []
    for a in range(2):
        for b in range(2):
            qs.append(qc[:, ys[a]][:, :, xs[b]])
            cs.append(cc[:, ys[a]][:, :, xs[b]])
            bs.append((wy[a][:, None] * wx[b][None, :])[None].expand(B, h, w))
    qn = torch.stack(qs, -1)
    cn = torch.stack(cs, -2)
    bn = torch.stack(bs, -1) + 1e-6
    qmin = qn.amin(dim=-1, keepdim=True)
    bn = bn.where(qn <= qmin * ratio + _TINY, bn.new_zeros(()))
    sb = bn.sum(dim=-1)
    q_new = (bn * qn).sum(dim=-1) / sb
    c_new = (bn[..., None] * cn).sum(dim=-2) / sb[..., None]
    empty = wf <= 0
    return torch.where(empty[..., None], c_new, cf), torch.where(empty, q_new, qf)


def fill_empty_torch(
    rgb,
    depth,
    alpha,
    seed_alpha: float = 0.5,
    edge_ratio: float = 1.1,
    default_depth: float = 1000.0,
):
    """:func:`fill_empty` on torch tensors (any device), batched: ``rgb`` [..., H, W, 3] float
    in [0, 1] or uint8, ``depth`` and ``alpha`` [..., H, W]. Returns (rgb, depth) on the same
    device, rgb in the input's dtype (uint8 stays uint8), depth float32. Computes in the
    dtype of ``depth`` when it is float64, else float32."""
    import torch

    _check(rgb, depth, alpha)
    lead = depth.shape[:-2]
    H, W = depth.shape[-2:]
    dt = torch.float64 if depth.dtype == torch.float64 else torch.float32
    is_u8 = rgb.dtype == torch.uint8
    c_in = rgb.to(dt) / (255.0 if is_u8 else 1.0)
    c_in = c_in.reshape(-1, H, W, 3)
    d = depth.to(dt).reshape(-1, H, W)
    a = alpha.to(dt).reshape(-1, H, W).clamp(0.0, 1.0)
    valid_d = (d > 0) & ~torch.isnan(d)
    seed = (a >= seed_alpha) & valid_d
    zero = d.new_zeros(())
    q0 = torch.where(seed, 1.0 / torch.where(valid_d, d, d.new_ones(())), zero)
    w0 = torch.where(seed, a, zero)
    c0 = torch.where(seed[..., None], c_in / a.clamp_min(_TINY)[..., None], zero)
    levels = [(c0, q0, w0)]
    while levels[-1][1].shape[1] > 1 or levels[-1][1].shape[2] > 1:
        levels.append(_t_push(*levels[-1], edge_ratio))
    c, q, w = levels[-1]
    none = w <= 0
    c = torch.where(none[..., None], zero, c)
    q = q.masked_fill(none, 1.0 / default_depth)
    for i, (cf, qf, wf) in enumerate(reversed(levels[:-1])):
        last = i == len(levels) - 2
        c, q_new = _t_pull(cf, qf, torch.zeros_like(wf) if last else wf, c, q, edge_ratio)
        q = torch.where(wf > 0, qf, q_new) if last else q_new
    out_c = c_in + (1.0 - a)[..., None] * c.clamp(0.0, 1.0)
    fill_d = (1.0 / q.clamp_min(_TINY)).masked_fill(~(q > 0), float("inf"))
    out_d = torch.where(seed, d, fill_d)
    out_c = out_c.reshape(*lead, H, W, 3)
    out_d = out_d.reshape(*lead, H, W).to(torch.float32)
    if is_u8:
        return (out_c * 255.0).round().clamp(0, 255).to(torch.uint8), out_d
    return out_c.to(rgb.dtype), out_d


# ----------------------------------------------------------------------------------------


def observed_mask(confidence_channel, alpha, threshold: float = 0.5):
    """Per-pixel observed mask: True where at least ``threshold`` of the pixel's final colour
    comes from observed Gaussians.

    ``confidence_channel`` [..., H, W]: the composited (not normalised) per-Gaussian
    confidence, i.e. Σ wᵢ confᵢ over the Gaussians of the pixel (observed Gaussians have
    confidence 1, synthesised ones 0), as the renderers return it in an extra channel;
    ``alpha`` [..., H, W] the accumulated opacity Σ wᵢ. Whatever :func:`fill_empty` adds
    has no observed share, so the share of observed colour in the final pixel is the
    confidence channel itself. Works on numpy arrays and torch tensors (returns the same
    kind, bool). A frame's ``coverage`` is defined as the mean of this mask.
    """
    if tuple(confidence_channel.shape) != tuple(alpha.shape):
        raise ValueError(
            f"observed_mask: confidence {tuple(confidence_channel.shape)} and alpha "
            f"{tuple(alpha.shape)} must have the same shape [..., H, W]"
        )
    # The confidence share can exceed alpha only by rounding; clip to alpha.
    if isinstance(confidence_channel, np.ndarray):
        conf = np.minimum(confidence_channel, alpha)
    else:
        conf = confidence_channel.minimum(alpha.to(confidence_channel.dtype))
    return conf >= threshold
