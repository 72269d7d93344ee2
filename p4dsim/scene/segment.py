"""Vehicle masks: which pixels of the source image belong to which 3D box.

A vehicle's Gaussians are exactly its pixels. For each box (nearest first) the pixels whose
camera ray meets the box (grown by ``grow_m``) form its hull; inside the hull the image is
segmented with OpenCV's GrabCut, seeded by geometry:

* foreground: pixels whose nearest LiDAR return lies inside the box, above the ground, unless
  returns on the box at least ``occluder_m`` farther lie on both sides of it along its scan
  line (a pole or a sign's post in front of the vehicle);
* background: pixels whose nearest return lies outside the grown box (in front of it: an
  occluder; behind it: what is seen past the vehicle) or on the ground (under the box only the
  lowest returns: its body reaches down); pixels whose ray meets the ground plane before it
  reaches the box; sky; pixels already taken by a nearer box; and everything outside the hull.

Only the pixels near foreground returns start as probable foreground; GrabCut's colour models
and contrast-sensitive smoothness decide the rest (windows, the gaps between scan lines).
Above the highest foreground return and the LiDAR's upper limit in the image, a vehicle only
continues upward inside its actual (not grown) box while its colour changes smoothly from its
top and stays nearer its own colour than the background's above the hull: a sign, a bridge
or a tree above it stays out, a tanker's upper half stays in. Without enough LiDAR support
(few returns on the box, or no LiDAR at all) a box with a large hull is still segmented from
the hull and the ground rule; a small one falls back to a conservative rule: the pixels whose
ray meets the actual (not grown) box and not first the ground, minus the background seeds.

Each labelled pixel also gets the depth where its ray enters the box (its visible face) and
where it leaves the grown box; the scene builder uses them for vehicle pixels whose measured
depth does not place them on the vehicle. Depth maps are camera z in metres; pixel (i, j) has
its centre at (j + .5, i + .5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from p4dsim.geometry import inv_pose, ray_box_interval, rot_z, transform_points
from p4dsim.scene.ground import ray_plane_depth
from p4dsim.types import Box3D, Camera


@dataclass(frozen=True)
class SegmentConfig:
    """Settings of :func:`segment_vehicles` (metres, pixels)."""

    grow_m: float = 0.25  #: the hull is the projection of the box grown by this much
    inside_margin_m: float = 0.1  #: LiDAR returns this far outside the box still count as in
    cover_cols: int = 20  #: see segment_vehicles: the LiDAR's upper limit per image column
    #: a return with returns on the box at least occluder_m farther on both sides of it
    #: within occluder_px pixels along its scan line is an occluder in front of the vehicle
    occluder_px: int = 15
    occluder_m: float = 1.0
    under_clearance_m: float = 0.04  #: ... and, under the box, lower than this
    clearance_m: float = 0.1  #: returns lower than this above the ground are ground
    min_seeds: int = 15  #: fewer foreground returns than this: not enough LiDAR support
    min_area_px: int = 400  #: hulls smaller than this use the conservative rule
    pad_frac: float = 0.15  #: GrabCut's window: the hull's bounding box grown by this share
    iterations: int = 4  #: GrabCut iterations
    ground_tol: float = 0.03  #: ground before the box: ground depth < (1 - tol) × entry depth
    #: above its highest LiDAR return a vehicle continues while the CIELAB colour changes by
    #: at most this much from one row to the next (and twice this from its top colour)
    max_color_step: float = 12.0


@dataclass
class VehicleMasks:
    """labels: int32 [H, W], the index of the box each pixel belongs to, -1 for none;
    face: float32 [H, W], camera z where a labelled pixel's ray enters its box (0 elsewhere);
    exit: float32 [H, W], camera z where it leaves the grown box (0 elsewhere);
    method: per box, "grabcut", "conservative" or "none" (not in view)."""

    labels: np.ndarray
    face: np.ndarray
    exit: np.ndarray
    method: list[str] = field(default_factory=list)


def _rays(camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Ego-frame ray directions [H*W, 3] (camera z = 1 at t = 1) and the origin [3]."""
    H, W = camera.height, camera.width
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays_c = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3) @ np.linalg.inv(camera.K).T
    T = np.asarray(camera.T_ego_camera, dtype=np.float64)
    return rays_c @ T[:3, :3].T, T[:3, 3]


def box_interval(
    rays_e: np.ndarray, origin: np.ndarray, box: Box3D, grow: float
) -> tuple[np.ndarray, np.ndarray]:
    """(entry [n], exit [n]) camera z where each ego-frame ray ``origin + t * rays_e`` enters
    and leaves ``box`` grown by ``grow``; both 0 where it misses. A camera inside the box
    enters at t = 1e-3."""
    R = rot_z(box.yaw)
    o = R.T @ (np.asarray(origin, dtype=np.float64) - np.asarray(box.center, dtype=np.float64))
    tmin, tmax = ray_box_interval(o, rays_e @ R, np.asarray(box.size, dtype=np.float64) / 2 + grow)
    ok = (tmax >= np.maximum(tmin, 0)) & (tmax > 0)
    return np.where(ok, np.maximum(tmin, 1e-3), 0.0), np.where(ok, tmax, 0.0)


def _nearest_returns(
    lidar: np.ndarray, camera: Camera, min_depth: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel index [m] (v * W + u), ego-frame point [m, 3] and camera z [m] of the nearest
    LiDAR return of every pixel that has one."""
    H, W = camera.height, camera.width
    pts = transform_points(inv_pose(camera.T_ego_camera), lidar)
    z = pts[:, 2]
    keep = z > min_depth
    u = np.floor(camera.K[0, 0] * pts[:, 0] / np.where(keep, z, 1) + camera.K[0, 2])
    v = np.floor(camera.K[1, 1] * pts[:, 1] / np.where(keep, z, 1) + camera.K[1, 2])
    keep &= (u >= 0) & (u < W) & (v >= 0) & (v < H)
    idx = (v[keep] * W + u[keep]).astype(np.int64)
    order = np.lexsort((z[keep], idx))
    idx, sel = idx[order], np.nonzero(keep)[0][order]
    first = np.ones(len(idx), bool)
    first[1:] = idx[1:] != idx[:-1]
    return idx[first], np.asarray(lidar, dtype=np.float64)[sel[first]], z[sel[first]]


def _largest_seeded(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected components of ``mask`` that hold a seed pixel (the largest component when
    no seed lies in the mask)."""
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask
    hit = np.unique(lab[seeds & mask])
    hit = hit[hit > 0]
    if len(hit) == 0:
        counts = np.bincount(lab.ravel(), minlength=n)
        counts[0] = 0
        hit = np.array([int(np.argmax(counts))])
    return np.isin(lab, hit)


def _occluders(z: np.ndarray, reach: int, gap_m: float) -> np.ndarray:
    """bool [h, w]: returns of the sparse depth image ``z`` (0 = none) with returns at least
    ``gap_m`` farther on both their left and their right within ``reach`` pixels (±1 row)."""
    zf = z.astype(np.float32)
    k = np.ones((3, reach + 1), np.uint8)
    right = cv2.dilate(zf, k, anchor=(0, 1))  # max over the reach to the right
    left = cv2.dilate(zf, k, anchor=(reach, 1))  # ... and to the left
    return (z > 0) & (np.minimum(left, right) - z >= gap_m)


def _seed_top(fg: np.ndarray) -> np.ndarray:
    """float [w]: the row of the highest foreground seed of each column (columns without a
    seed interpolate linearly between the nearest seeded ones); [w] of h when there is none."""
    h, w = fg.shape
    has = fg.any(axis=0)
    if not has.any():
        return np.full(w, float(h))
    top = np.argmax(fg, axis=0).astype(np.float64)
    cols = np.nonzero(has)[0]
    return np.interp(np.arange(w), cols, top[cols])


def _above(top: np.ndarray, h: int | None = None) -> np.ndarray:
    """bool [h, w]: pixels above row ``top`` [w] of their column."""
    h = int(np.ceil(top.max())) + 1 if h is None else h
    return np.arange(h)[:, None] < top[None, :]


def _continues_up(
    image: np.ndarray,  # uint8 [h, w, 3]
    mask: np.ndarray,  # bool [h, w]
    top: np.ndarray,  # float [w] first row of the supported part per column
    max_step: float,
    hull: np.ndarray | None = None,  # bool [h, w] where the object may be
) -> np.ndarray:
    """bool [h, w]: in each column, the pixels above ``top`` reached by walking up from it while
    the colour (CIELAB) stays within ``max_step`` of the column's colour at ``top`` and the
    mask holds: the vehicle's surface continuing above its LiDAR returns (a tanker's upper
    half), but not the sign, bridge or tree that starts at a colour edge above it. With
    ``hull``, a pixel must also be nearer in colour to the column's top than to the background
    just above the hull in its column (where the hull does not reach the window's top)."""
    h, w = mask.shape
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab = cv2.GaussianBlur(lab, (3, 3), 0)
    t = np.clip(np.round(top).astype(int), 0, h - 1)
    cols = np.arange(w)
    # reference: the mean colour of the 4 rows at and below the top
    ref = np.zeros((w, 3), np.float32)
    for k in range(4):
        ref += lab[np.clip(t + k, 0, h - 1), cols]
    ref /= 4
    bref = np.full((w, 3), np.nan, np.float32)
    if hull is not None:
        has = hull.any(axis=0)
        htop = np.where(has, np.argmax(hull, axis=0), 0)
        okc = has & (htop >= 3)
        bref[okc] = (lab[htop[okc] - 2, cols[okc]] + lab[htop[okc] - 3, cols[okc]]) / 2
    out = np.zeros((h, w), bool)
    alive = mask[t, cols].copy()
    prev = lab[t, cols]
    for r in range(int(t.max()) - 1, -1, -1):
        act = r < t
        if not act.any():
            continue
        c = lab[r, cols]
        ok = (
            mask[r]
            & (np.linalg.norm(c - ref, axis=1) <= 2 * max_step)
            & (np.linalg.norm(c - prev, axis=1) <= max_step)
        )
        with np.errstate(invalid="ignore"):
            ok &= ~(np.linalg.norm(c - bref, axis=1) < np.linalg.norm(c - ref, axis=1))
        alive = np.where(act, alive & ok, alive)
        out[r] = act & alive
        prev = np.where(act[:, None], c, prev)
    return out


def grabcut_mask(
    image: np.ndarray,  # uint8 [h, w, 3] RGB
    hull: np.ndarray,  # bool [h, w] pixels that may belong to the object
    fg: np.ndarray,  # bool [h, w] sure foreground
    bg: np.ndarray,  # bool [h, w] sure background
    probable_fg: np.ndarray | None = None,  # bool [h, w] start as foreground (default: hull)
    iterations: int = 4,
) -> np.ndarray:
    """bool [h, w]: GrabCut's foreground inside ``hull``, initialised from the seeds (sure
    background outside the hull). Falls back to ``hull & ~bg`` when the window holds no
    background or no foreground to learn colour models from."""
    pf = hull if probable_fg is None else probable_fg & hull
    m = np.full(hull.shape, cv2.GC_BGD, np.uint8)
    m[hull] = cv2.GC_PR_BGD
    m[pf] = cv2.GC_PR_FGD
    m[bg] = cv2.GC_BGD
    m[fg & hull & ~bg] = cv2.GC_FGD
    is_fg = (m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD)
    if is_fg.sum() < 2 or (~is_fg).sum() < 2:
        return hull & ~bg
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    # GrabCut starts its colour models with k-means seeded from OpenCV's global random
    # generator, which every call advances: reset it so that a box's mask depends on the frame
    # alone, not on what this process segmented before (same scene in every worker).
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(
            np.ascontiguousarray(image[..., ::-1]),
            m,
            None,
            bgd,
            fgd,
            iterations,
            cv2.GC_INIT_WITH_MASK,
        )
    except cv2.error:  # degenerate colour models (e.g. a flat image)
        return hull & ~bg
    return ((m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD)) & hull


def segment_vehicles(
    image: np.ndarray,  # uint8 [H, W, 3] RGB
    camera: Camera,
    boxes: list[Box3D],
    lidar: np.ndarray | None = None,  # [N, 3] ego frame
    ground: tuple[np.ndarray, float] | None = None,  # plane n·x + d = 0, ego frame
    sky: np.ndarray | None = None,  # bool [H, W]
    config: SegmentConfig | None = None,
) -> VehicleMasks:
    """Per-pixel vehicle labels of ``boxes`` (see the module docstring). Boxes are processed
    nearest first; a pixel taken by a nearer box is background for the farther ones."""
    cfg = config or SegmentConfig()
    H, W = camera.height, camera.width
    labels = np.full(H * W, -1, np.int32)
    face = np.zeros(H * W, np.float32)
    exit_ = np.zeros(H * W, np.float32)
    methods = ["none"] * len(boxes)
    if not boxes:
        return VehicleMasks(labels.reshape(H, W), face.reshape(H, W), exit_.reshape(H, W), methods)
    rays_e, origin = _rays(camera)
    if ground is not None:
        uu, vv = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
        zg = ray_plane_depth(camera.K, camera.T_ego_camera, ground, uu, vv).reshape(-1)
    else:
        zg = np.zeros(H * W)
    if lidar is not None and len(lidar):
        pix, pts, pz = _nearest_returns(np.asarray(lidar, dtype=np.float64), camera)
        if ground is not None:
            n_g, d_g = ground
            pts_h = pts @ np.asarray(n_g, dtype=np.float64) + float(d_g)
        else:
            pts_h = np.full(len(pts), np.inf)
    else:
        pix, pts, pts_h, pz = np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0), np.zeros(0)
    sky_f = np.zeros(H * W, bool) if sky is None else np.asarray(sky, bool).reshape(-1)
    # the LiDAR's upper limit in the image: per column, the highest row with any return within
    # ±cover_cols columns (rows above it are outside the LiDAR's view)
    lidar_top = np.full(W, float(H))
    if len(pix):
        np.minimum.at(lidar_top, pix % W, (pix // W).astype(np.float64))
        k = np.ones((1, 2 * cfg.cover_cols + 1), np.uint8)
        lidar_top = cv2.erode(lidar_top.astype(np.float32)[None, :], k)[0].astype(np.float64)
    dist = [float(np.hypot(*np.asarray(b.center, dtype=np.float64)[:2])) for b in boxes]
    for bi in np.argsort(dist, kind="stable"):
        box = boxes[bi]
        local_o = rot_z(box.yaw).T @ (origin - np.asarray(box.center, dtype=np.float64))
        if np.all(np.abs(local_o) <= np.asarray(box.size) / 2 + cfg.grow_m):
            continue  # a box around the camera: no view of it to segment
        entry_g, exit_g = box_interval(rays_e, origin, box, cfg.grow_m)
        hull_f = exit_g > 0
        if not hull_f.any():
            continue
        entry_c, _ = box_interval(rays_e, origin, box, 0.0)
        # the window: the hull's bounding box, padded
        hull2 = hull_f.reshape(H, W)
        rows = np.nonzero(hull2.any(axis=1))[0]
        cols = np.nonzero(hull2.any(axis=0))[0]
        pad_v = max(4, int(cfg.pad_frac * (rows[-1] - rows[0] + 1)))
        pad_u = max(4, int(cfg.pad_frac * (cols[-1] - cols[0] + 1)))
        r0, r1 = max(rows[0] - pad_v, 0), min(rows[-1] + pad_v + 1, H)
        c0, c1 = max(cols[0] - pad_u, 0), min(cols[-1] + pad_u + 1, W)
        win = (slice(r0, r1), slice(c0, c1))

        def crop(a: np.ndarray, win=win) -> np.ndarray:
            return a.reshape(H, W)[win]

        # LiDAR seeds on the hull
        fg = np.zeros(H * W, bool)
        bg = np.zeros(H * W, bool)
        on = hull_f[pix]
        if on.any():
            R = rot_z(box.yaw)
            local = (pts[on] - np.asarray(box.center, dtype=np.float64)) @ R
            half = np.asarray(box.size, dtype=np.float64) / 2
            inside = np.all(np.abs(local) <= half + cfg.inside_margin_m, axis=1)
            # ground: low returns; under the box only the very lowest (its body reaches down)
            under = np.all(np.abs(local[:, :2]) <= half[:2] + cfg.inside_margin_m, axis=1)
            low = pts_h[on] < np.where(under, cfg.under_clearance_m, cfg.clearance_m)
            fg[pix[on][inside & ~low]] = True
            # a return well in front of the box's returns on both sides of it along the scan
            # line is an occluder (a pole, a sign's post), not the vehicle
            zf = np.zeros(H * W, np.float32)
            zf[pix[on][inside & ~low]] = pz[on][inside & ~low]
            dip = _occluders(crop(zf), cfg.occluder_px, cfg.occluder_m)
            dwin = np.zeros((H, W), bool)
            dwin[win] = dip
            dip = dwin.reshape(-1)
            fg &= ~dip
            bg |= dip
            outside = ~np.all(np.abs(local) <= half + cfg.grow_m, axis=1)
            bg[pix[on][outside | low]] = True
        # geometry: the ray meets the ground before the box; sky; nearer vehicles
        enter = np.where(entry_c > 0, entry_c, entry_g)
        bg |= hull_f & (zg > 0) & (zg < (1 - cfg.ground_tol) * enter)
        bg |= sky_f | (labels >= 0)
        fg &= ~bg
        n_fg = int(fg.sum())
        area = int((hull_f & ~bg).sum())
        have_lidar = len(pix) > 0
        # half the image-row gap between the LiDAR's scan lines at this box (at least 2 px)
        gap = 2
        core = (entry_c > 0) & ~bg
        if area >= cfg.min_area_px and (n_fg >= cfg.min_seeds or not have_lidar):
            k = np.ones((3, 3), np.uint8)
            fg_w = cv2.dilate(crop(fg).astype(np.uint8), k) > 0
            bg_w = cv2.dilate(crop(bg & ~fg).astype(np.uint8), k) > 0
            bg_w |= crop(bg)
            fg_w &= ~crop(bg)
            pf = crop(core)
            if n_fg:
                # start as vehicle only near its returns (the gaps between scan lines); the rest
                # of the hull must win on colour and contrast
                near = cv2.dilate(crop(fg).astype(np.uint8), np.ones((2 * gap + 1, 5), np.uint8))
                pf = pf & (near > 0)
            m = grabcut_mask(
                image[win],
                crop(hull_f),
                fg_w,
                bg_w,
                probable_fg=pf,
                iterations=cfg.iterations,
            )
            if n_fg:
                m = _largest_seeded(m, fg_w)
                # above the highest return and the LiDAR's view, only what continues the
                # vehicle's top upward, within the actual (not grown) box
                # (from a few rows below the top return: returns at a silhouette's edge fall a
                # few pixels off it when LiDAR and camera are not perfectly aligned)
                top = np.minimum(_seed_top(fg_w), lidar_top[c0:c1] - (r0 + 1)) + 2 * gap
                m &= ~_above(top, m.shape[0]) | _continues_up(
                    image[win], m & crop(entry_c > 0), top, cfg.max_color_step, crop(hull_f)
                )
            mask = np.zeros((H, W), bool)
            mask[win] = m
            mask = mask.reshape(-1) & ~bg
            methods[bi] = "grabcut"
        else:
            drop = cv2.dilate(bg.reshape(H, W).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            mask = core & ~(drop.reshape(-1) & ~fg)
            methods[bi] = "conservative"
        labels[mask] = bi
        face[mask] = np.where(entry_c[mask] > 0, entry_c[mask], entry_g[mask])
        exit_[mask] = exit_g[mask]
    return VehicleMasks(labels.reshape(H, W), face.reshape(H, W), exit_.reshape(H, W), methods)
