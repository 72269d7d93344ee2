"""Hidden layers: content the source view cannot see, placed so that it does not change the
source-view render.

* behind layer: for pixels of actors and pixels on the near side of strong depth edges, a
  second surface behind the first one along the same source ray: the ground plane where the
  ray meets it, otherwise the surrounding background depth (inpainted), coloured from the
  background only (never from anything in front of it);
* border layer: the image extended past its borders (reflected colour, replicated depth),
  seen only when the camera yaws or shifts sideways;
* mirror completion of actors across their long axis;
* sky backdrop: behind every non-sky pixel above the horizon, the sky (its colour inpainted
  from the visible sky) on the sky dome, revealed where a shifted view looks past an edge.

Every synthesised Gaussian lies behind the first observed surface of its source ray (or
outside the source image), so at the source pose it is hidden behind an opaque Gaussian.
Depth maps are camera z in metres [H, W]; pixel (i, j) has its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from p4dsim.scene.gaussians import GaussianSet
from p4dsim.scene.pushpull import pull_level


@dataclass
class PixelLayer:
    """Samples of a synthesised layer: pixel positions u, v [n] (may lie outside the image),
    camera z [n] (m), colours [n, 3] in [0, 1], sky flags [n] and source-view sigma [n] (px)."""

    u: np.ndarray
    v: np.ndarray
    depth: np.ndarray
    colors: np.ndarray
    sky: np.ndarray
    sigma_px: np.ndarray


def _inpaint_small(img: np.ndarray, mask: np.ndarray, factor: int, radius: float) -> np.ndarray:
    """cv2.inpaint (Telea) at 1/factor resolution, upsampled; unmasked pixels are kept."""
    H, W = mask.shape
    if factor > 1:
        w2, h2 = max(W // factor, 1), max(H // factor, 1)
        small = cv2.resize(img, (w2, h2), interpolation=cv2.INTER_AREA)
        m = cv2.resize(mask.astype(np.uint8), (w2, h2), interpolation=cv2.INTER_NEAREST)
        m = cv2.dilate(m, np.ones((3, 3), np.uint8))
        out = cv2.inpaint(small, m, radius, cv2.INPAINT_TELEA)
        out = cv2.resize(out, (W, H), interpolation=cv2.INTER_LINEAR)
    else:
        out = cv2.inpaint(img, mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    if out.ndim < img.ndim:
        out = out[..., None]
    return np.where(mask[..., None] if img.ndim == 3 else mask, out, img)


def _push_pull(img: np.ndarray, w: np.ndarray) -> np.ndarray:
    """float32 [H, W, 3]: plain push-pull interpolation of ``img`` [H, W, 3] from the pixels
    of weight ``w`` [H, W] in [0, 1] (area-averaged pyramid, bilinear pull, each level
    composited over the one below it: c + (1 - w) · coarser)."""
    levels = [(img * w[..., None], w.astype(np.float32))]
    while max(levels[-1][1].shape) > 1:
        c, a = levels[-1]
        h, wd = a.shape
        size = (max(wd // 2, 1), max(h // 2, 1))
        cs = cv2.resize(c, size, interpolation=cv2.INTER_AREA)
        as_ = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        if cs.ndim == 2:
            cs = cs[..., None]
        levels.append((cs, as_))
    c, a = levels[-1]
    val = np.where(a[..., None] > 0, c / np.maximum(a, 1e-12)[..., None], 0.0)
    for c, a in reversed(levels[:-1]):
        h, wd = a.shape
        up = cv2.resize(val.astype(np.float32), (wd, h), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        # Normalised colour where covered, the coarser level over the uncovered share.
        val = pull_level(c, a, up)
    return val.astype(np.float32)


def _push_pull_half(img: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`_push_pull` from half resolution (4 times cheaper; the fill is smooth anyway),
    the sources themselves kept at full resolution."""
    H, W = w.shape
    if min(H, W) < 4:
        return _push_pull(img, w)
    return np.where(w[..., None] > 0, img, _push_pull_half_fill(img, w)).astype(np.float32)


def _push_pull_half_fill(img: np.ndarray, w: np.ndarray) -> np.ndarray:
    """float32 [H, W, 3]: the interpolated colour of :func:`_push_pull_half` (H, W ≥ 4), what
    it returns at the pixels of weight 0, before the sources are put back."""
    H, W = w.shape
    size = (W // 2, H // 2)
    cw = cv2.resize(img * w[..., None], size, interpolation=cv2.INTER_AREA)
    ws = cv2.resize(w, size, interpolation=cv2.INTER_AREA)
    small = _push_pull(cw / np.maximum(ws, 1e-12)[..., None], ws)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)


def background_fill(
    image: np.ndarray,  # uint8 [H, W, 3]
    depth: np.ndarray,  # float [H, W] depth of every pixel (m), inf = sky
    hole: np.ndarray,  # bool [H, W] pixels to fill (never used as sources)
    target_depth: np.ndarray,  # float [H, W] the depth each hole pixel is filled at (m)
    ratio: float = 1.1,
    step: float = 1.15,
) -> np.ndarray:
    """uint8 [H, W, 3]: ``image`` with the ``hole`` pixels coloured from the background only.

    A hole pixel filled at depth z takes its colour only from source pixels (not in the
    hole) at least as far as ``z / (ratio * step)``: never from a surface in front of it, so
    what a vehicle or the near side of a depth edge covered is never blended with that
    vehicle or that near side. Colour is interpolated by a push-pull pyramid
    (:func:`p4dsim.render.fill.fill_empty`) over the sources at least as far as
    ``g / ratio``, once per depth g of a grid of factor ``step`` over the target depths; each
    target takes the linear blend (in log depth) of the runs of the two grid depths around it
    (both behind it: no seams between steps). A hole pixel with no such source anywhere
    takes the far side of its surroundings.
    """
    from p4dsim.render.fill import fill_empty

    H, W = hole.shape
    out = image.copy()
    if not hole.any():
        return out
    z = np.asarray(depth, dtype=np.float64)
    src = ~hole & (z > 0)
    t = np.asarray(target_depth, dtype=np.float64)[hole]
    t = np.where(np.isfinite(t) & (t > 0), t, np.inf)
    fin = t[np.isfinite(t)]
    lo_all, hi_all = (fin.min(), fin.max()) if len(fin) else (1.0, 1.0)
    n_bins = max(1, int(np.ceil(np.log(max(hi_all / lo_all, 1.0001)) / np.log(step))))
    edges = lo_all * step ** np.arange(n_bins + 1)
    # Position of each target on the log-spaced grid of depths: between runs b and b + 1.
    pos = np.log(np.where(np.isfinite(t), t, 1.0) / lo_all) / np.log(edges[1] / edges[0])
    pos = np.clip(pos, 0.0, n_bins)
    b0 = np.floor(pos).astype(np.int64)
    frac = pos - b0
    b0[~np.isfinite(t)], frac[~np.isfinite(t)] = n_bins + 1, 0.0  # sky: sky sources only
    img = image.astype(np.float32) / 255.0
    col = np.zeros((len(t), 3), np.float32)
    wsum = np.zeros(len(t), np.float32)
    # The hole pixels are never sources (weight 0): a run's colour there is the interpolated
    # one, read at their flat indices without putting the sources back first.
    hole_idx = np.flatnonzero(hole)
    small_image = min(H, W) < 4
    for b in np.unique(np.concatenate([b0, b0 + 1])):
        # Run b: the sources at least as far as edges[b] / ratio, for the targets whose
        # grid position lies within one step of b (linear weights: no seams between runs).
        w_t = np.where(b0 == b, 1.0 - frac, 0.0) + np.where(b0 + 1 == b, frac, 0.0)
        sel = w_t > 0
        if not sel.any():
            continue
        z_lo = edges[min(b, n_bins)] if b <= n_bins else np.inf
        ok = src & (z >= z_lo / ratio)
        if not ok.any():
            continue
        if small_image:
            at_sel = _push_pull_half(img, ok.astype(np.float32))[hole][sel]
        else:
            up = _push_pull_half_fill(img, ok.astype(np.float32))
            at_sel = up.reshape(-1, 3)[hole_idx[sel]]
        col[sel] += w_t[sel, None] * at_sel
        wsum[sel] += w_t[sel]
    done = wsum > 1e-6
    col[done] /= wsum[done, None]
    if not done.all():
        d_src = np.where(src, z, 0)
        filled, _ = fill_empty(img * src[..., None], d_src, src.astype(np.float32))
        col[~done] = filled[hole][~done]
    out[hole] = np.clip(np.round(col * 255.0), 0, 255).astype(np.uint8)
    return out


#: pixels on the near side of a depth edge that get a behind layer (see behind_layer)
EDGE_BAND_PX = 6


def behind_layer(
    image: np.ndarray,  # uint8 [H, W, 3]
    dense: np.ndarray,  # float32 [H, W] first-surface depth (m)
    sky: np.ndarray,  # bool [H, W]
    actor_mask: np.ndarray,  # bool [H, W] pixels whose first surface belongs to an actor
    ground_depth: np.ndarray,  # float32 [H, W] ground-plane depth along each ray, 0 = none
    max_depth: float,
    edge_ratio: float = 1.25,
    band_px: int = EDGE_BAND_PX,
    min_gap: float = 0.03,
    exit_depth: np.ndarray | None = None,  # [H, W] where each ray leaves the actor boxes, 0 = none
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Second-surface depth [H, W] (0 where none), its colour [H, W, 3] uint8 and the mask
    [H, W] of pixels that get one.

    The mask holds actor pixels and, near strong depth edges (far/near ratio ≥ ``edge_ratio``
    within ``band_px`` pixels), the near side. Behind-depth is the inpainted surrounding depth
    (near-side pixels excluded), replaced by the ground-plane depth where that is nearer, and
    pushed to at least ``1 + min_gap`` times the farthest first surface within two pixels (so
    it never lies in front of a neighbour's Gaussian); pixels next to sky get none. Colour
    comes from the background only (:func:`background_fill`).
    """
    H, W = dense.shape
    d = np.where(sky, max_depth, np.minimum(dense, max_depth)).astype(np.float32)
    k = 2 * band_px + 1
    far = cv2.dilate(d, np.ones((k, k), np.uint8))
    band = (far >= edge_ratio * d) & ~sky
    grown = cv2.dilate(actor_mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    mask = (grown | band) & ~sky
    if not mask.any():
        return np.zeros((H, W), np.float32), image.copy(), mask
    factor = 3 if W > 900 else (2 if W > 400 else 1)
    fill = _inpaint_small(d, mask, factor, 5.0)
    # Near-side pixels of edges: the far side is what the dilation saw.
    fill = np.where(band & ~grown, np.maximum(fill, far), fill)
    g = ground_depth
    if exit_depth is not None:
        # Behind an actor: the ground under it where the ray meets the ground inside its box,
        # otherwise no nearer than where the ray leaves the box (so that an actor driving
        # away is not hidden behind its own background).
        fill = np.maximum(fill, exit_depth)
        under = (g > 0) & (exit_depth > 0) & (g <= exit_depth)
        fill = np.where(under, g, fill)
    fill = np.where((g > 0) & (g < fill), g, fill)
    # Behind every first surface this Gaussian's footprint can reach (2 px): otherwise it would
    # be composited before a neighbour's own Gaussian and show at the source view.
    reach = cv2.dilate(np.where(sky, np.inf, dense).astype(np.float32), np.ones((5, 5), np.uint8))
    fill = np.maximum(fill, reach * (1 + min_gap))
    keep = mask & np.isfinite(fill) & (fill <= 1.2 * max_depth)
    # Colour: only from what lies at least as far as each pixel's behind-depth.
    colour = background_fill(image, np.where(sky, np.inf, d), mask, np.where(keep, fill, d))
    return np.where(keep, fill, 0).astype(np.float32), colour, keep


def border_layer(
    image: np.ndarray,  # uint8 [H, W, 3]
    dense: np.ndarray,  # float32 [H, W]
    sky: np.ndarray,  # bool [H, W]
    frac_x: float,
    frac_y: float,
    stride: int,
    sigma_px: float,
    push_back: float = 0.03,
) -> PixelLayer:
    """The image extended by ``frac_x`` of its width left and right and ``frac_y`` of its
    height above and below, sampled every ``stride`` pixels outside the source image. The
    scene builder passes the image and depth with vehicles and the near sides of depth
    edges replaced by the behind layer, so that the extension continues the background only.

    Colour is the reflected image (slightly blurred), sky reflects with it; depth replicates
    the border depth (for a flat road with no roll, camera z depends only on the row, so
    replicated road depth is the road), taken as the farthest within two pixels and pushed back
    by ``push_back`` so that a border Gaussian never lies in front of a source pixel it reaches.
    """
    H, W = dense.shape
    px = int(np.ceil(frac_x * W / stride)) * stride
    py = int(np.ceil(frac_y * H / stride)) * stride
    img = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REFLECT_101)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    sk = cv2.copyMakeBorder(sky.astype(np.uint8), py, py, px, px, cv2.BORDER_REFLECT_101) > 0
    # Behind every edge pixel a border footprint can reach (about two pixels).
    reach = cv2.dilate(dense.astype(np.float32), np.ones((5, 5), np.uint8))
    dep = cv2.copyMakeBorder(reach, py, py, px, px, cv2.BORDER_REPLICATE)
    ii, jj = np.mgrid[0 : H + 2 * py : stride, 0 : W + 2 * px : stride]
    ci = np.minimum(ii + stride // 2, H + 2 * py - 1)
    cj = np.minimum(jj + stride // 2, W + 2 * px - 1)
    i0, j0 = ii - py, jj - px  # block origin in source pixels
    outside = (i0 + stride <= 0) | (i0 >= H) | (j0 + stride <= 0) | (j0 >= W)
    ci, cj, i0, j0 = ci[outside], cj[outside], i0[outside], j0[outside]
    u = j0 + stride / 2.0
    v = i0 + stride / 2.0
    depth = dep[ci, cj] * (1 + push_back)
    return PixelLayer(
        u=u.astype(np.float64),
        v=v.astype(np.float64),
        depth=depth.astype(np.float64),
        colors=img[ci, cj].astype(np.float32) / 255.0,
        sky=sk[ci, cj],
        sigma_px=np.full(len(u), sigma_px * stride),
    )


def hidden_from_source(
    means_cam: np.ndarray,  # [n, 3] camera frame of the source view
    dense: np.ndarray,  # [H, W] first-surface depth
    K: np.ndarray,
    margin: float = 0.05,
) -> np.ndarray:
    """bool [n]: True where a point lies behind the first surface of its source pixel by at
    least ``margin`` (relative), or outside the source image / behind the camera."""
    H, W = dense.shape
    z = means_cam[:, 2]
    ok = z > 1e-3
    u = np.floor(K[0, 0] * means_cam[:, 0] / np.where(ok, z, 1) + K[0, 2]).astype(np.int64)
    v = np.floor(K[1, 1] * means_cam[:, 1] / np.where(ok, z, 1) + K[1, 2]).astype(np.int64)
    inside = ok & (u >= -1) & (u <= W) & (v >= -1) & (v <= H)
    uc, vc = np.clip(u, 0, W - 1), np.clip(v, 0, H - 1)
    # Behind the farthest first surface among the pixel and its neighbours (footprints
    # reach about two pixels).
    far = cv2.dilate(dense.astype(np.float32), np.ones((5, 5), np.uint8))
    behind = z >= far[vc, uc] * (1 + margin)
    return ~inside | behind


def mirror_actor(
    g: GaussianSet,  # actor frame: x along the heading, y left, z up
    confidence: float,
    min_offset: float = 0.15,
) -> GaussianSet:
    """Gaussians reflected across the actor's long axis (y → -y), for those at least
    ``min_offset`` metres off the axis; rotations are reflected too (a reflection conjugated
    back into a proper rotation), colours kept, confidence set to ``confidence``."""
    keep = np.abs(g.means[:, 1]) >= min_offset
    m = g.subset(keep)
    means = m.means.copy()
    means[:, 1] *= -1
    # Reflection S = diag(1, -1, 1): S R S is a rotation; its quaternion is (w, -x, y, -z).
    q = m.quats.copy()
    q[:, 1] *= -1
    q[:, 3] *= -1
    return GaussianSet(
        means, q, m.scales, m.opacities, m.colors, np.full(len(m), confidence, np.float32)
    )


def sky_backdrop(
    image: np.ndarray,  # uint8 [H, W, 3]
    sky: np.ndarray,  # bool [H, W]
    above_horizon: np.ndarray,  # bool [H, W] rays that do not meet the ground plane
    stride: int,
    sigma_px: float,
) -> PixelLayer:
    """Sky samples every ``stride`` pixels behind non-sky pixels above the horizon, coloured
    by inpainting the sky over the rest of the image (Telea, at 1/4 resolution); empty when the
    image shows no sky. Depth is left 0: the caller puts the samples on the sky dome."""
    H, W = sky.shape
    ii, jj = np.mgrid[stride // 2 : H : stride, stride // 2 : W : stride]
    sel = above_horizon[ii, jj] & ~sky[ii, jj]
    if not sky.any() or not sel.any():
        z = np.zeros(0)
        return PixelLayer(z, z, z, np.zeros((0, 3), np.float32), z.astype(bool), z)
    col = _inpaint_small(image, ~sky, 4, 3.0)
    ii, jj = ii[sel], jj[sel]
    n = len(ii)
    return PixelLayer(
        u=(jj + 0.5).astype(np.float64),
        v=(ii + 0.5).astype(np.float64),
        depth=np.zeros(n),
        colors=col[ii, jj].astype(np.float32) / 255.0,
        sky=np.ones(n, bool),
        sigma_px=np.full(n, sigma_px * stride),
    )


def continue_along_length(
    g: GaussianSet,  # actor frame: x along the length, y left, z up
    half_length: float,
    end: int,  # -1: towards -x (the rear), +1: towards +x (the front)
    slab_m: float,
    confidence: float,
) -> GaussianSet:
    """A vehicle's side continued towards one end of its box: the slab of ``slab_m`` metres of
    its Gaussians nearest that end (where the source view's image border cut it) copied
    along its length, slab after slab, up to ``half_length``; confidence set to
    ``confidence``. Empty when the Gaussians reach that end already. The part of a long
    vehicle that lay outside the image (a tanker's rear beside the ego) then shows its side
    when the vehicle moves forward, instead of what the background layer puts there."""
    if len(g) == 0:
        return GaussianSet.empty()
    x = g.means[:, 0].astype(np.float64) * end
    edge = float(np.percentile(x, 99))  # the observed end, robust to a few stray samples
    gap = half_length - edge
    slab = g.subset((x <= edge) & (x > edge - slab_m))
    if gap < 0.25 * slab_m or len(slab) == 0:
        return GaussianSet.empty()
    out = []
    for k in range(1, int(np.ceil(gap / slab_m)) + 1):
        means = slab.means.copy()
        means[:, 0] += np.float32(end * k * slab_m)
        inside = means[:, 0] * end <= half_length
        if not inside.any():
            break
        out.append(
            GaussianSet(
                means[inside],
                slab.quats[inside],
                slab.scales[inside],
                slab.opacities[inside],
                slab.colors[inside],
                np.full(int(inside.sum()), confidence, np.float32),
            )
        )
    return GaussianSet.concat(out) if out else GaussianSet.empty()
