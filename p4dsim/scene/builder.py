"""Building a :class:`~p4dsim.scene.scene4d.Scene4D` from one :class:`~p4dsim.types.Frame`.

1. Dense depth: LiDAR z-buffered into the image and completed; above the LiDAR's field of
   view, surfaces it sees continued upward through the image, sky only where the image
   says sky (put on a far dome), the rest far in inverse depth
   (:func:`~p4dsim.scene.unsupported.depth_above_lidar`).
2. One Gaussian per pixel (or per ``stride``×``stride`` block), unprojected at its depth,
   flattened along the surface normal and shaped to the pixel's footprint on the surface, so
   that at the source view each projects to an isotropic blob of ``footprint_sigma_px``.
3. Vehicles: each box's pixels are segmented (scene/segment.py: LiDAR seeds inside and
   outside the box, GrabCut on the image); their Gaussians, above the ground, go to that
   actor, in the actor's frame, with constant-velocity motion from the box velocity. Vehicle
   pixels whose depth misses the box (above the LiDAR) continue the vehicle's surface below
   them (or lie on the box's visible face).

The scene's world frame is the source frame's ego frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.geometry import (
    inv_pose,
    rotmat_to_quat,
    transform_points,
)
from p4dsim.scene.depth import (
    complete_depth,
    detect_sky,
    lidar_confidence,
    prior_depth,
    project_lidar,
    ray_box_depths,
)
from p4dsim.scene.footprint import footprint_world, normals_kernel
from p4dsim.scene.gaussians import GaussianSet
from p4dsim.scene.ground import fit_ground_plane, ground_prior, ray_plane_depth
from p4dsim.scene.layers import (
    EDGE_BAND_PX,
    behind_layer,
    border_layer,
    continue_along_length,
    hidden_from_source,
    mirror_actor,
    sky_backdrop,
)
from p4dsim.scene.motion import RigidMotion
from p4dsim.scene.scene4d import Actor, Scene4D
from p4dsim.scene.segment import segment_vehicles
from p4dsim.scene.unsupported import depth_above_lidar
from p4dsim.scene.vehicles import _box_volume, _join_box_pixels, vehicle_depth
from p4dsim.types import DepthSource, Frame


@dataclass(frozen=True)
class BuildConfig:
    """Scene builder settings."""

    stride: int = 1  #: one Gaussian per stride×stride pixels
    footprint_sigma_px: float = 0.49  #: source-view standard deviation of each Gaussian (px)
    thickness_ratio: float = 0.05  #: normal-axis scale relative to the footprint
    opacity: float = 0.999
    sky_depth: float = 1000.0  #: metres; where sky is placed
    max_depth: float = 150.0  #: metres; completed depth is clipped here
    box_grow_m: float = 0.25  #: actor boxes grow by this much on every side
    #: vehicles are exactly their segmented pixels (scene/segment.py); off: every Gaussian
    #: inside the grown box goes with it
    vehicle_masks: bool = True
    ground_clearance_m: float = 0.08  #: Gaussians this close to the ground stay static
    #: ... inside the actual (not grown) box, where the wheels meet the road
    core_clearance_m: float = 0.02
    max_stretch: float = 40.0  #: grazing-angle footprints are stretched at most this much
    #: depth source: "auto" (LiDAR when the frame has it, else the geometric prior),
    #: "lidar", "prior" or "mono" (a monocular depth model from ``mono_model``)
    depth_source: DepthSource = "auto"
    mono_model: str | None = None  #: local path of a transformers depth-estimation model
    prior_far_m: float = 80.0  #: geometric prior: depth of rays that hit nothing
    hidden_layers: bool = True  #: behind layer, border layer and mirrored actors
    #: the behind layer covers each actor's whole mask (off: the road under and behind it and
    #: a band along its boundary)
    behind_actors: bool = False
    #: a vehicle cut off by the source view's border is continued along its box's length in
    #: slabs of this many metres of its side nearest the cut
    continue_slab_m: float = 1.5
    border_frac_x: float = 0.25  #: image extended by this share of its width left and right
    border_frac_y: float = 0.15  #: ... and of its height above and below
    border_stride: int = 2  #: one border Gaussian per border_stride² pixels
    #: border Gaussians' source-view sigma per border_stride pixels (wide enough to leave no gaps)
    border_sigma_px: float = 0.7
    sky_stride: int = 4  #: one sky backdrop Gaussian per sky_stride² pixels
    #: sky backdrop: the sideways move (m) it serves, 0 = none. Off by default: rendered depth
    #: is a weighted mean, so sky showing through the small gaps between Gaussians pulls it far
    #: (KITTI t+1 depth AbsRel 0.10 -> 0.26 with 1 m; toytown PSNR +0.3 dB).
    sky_backdrop_shift_m: float = 0.0
    backing: bool = True  #: backing discs behind the pixel Gaussians (see _backing)
    backing_sigma: float = 0.6  #: their source-view sigma per block width
    backing_opacity: float = 0.85
    backing_gap: float = 0.01  #: relative depth gap behind the surfaces they back
    backing_edge_ratio: float = 1.15  #: none where far/near within 3 px reaches this
    #: confidence of synthesised Gaussians; observed ones have 1, and a render's coverage (the
    #: mean of the rendered confidence) is then the share of observed content
    synth_confidence: float = 0.0


def pixel_grid(width: int, height: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions (u, v) [h, w] at the centres of stride×stride blocks (pixel centres at +0.5)."""
    us = np.arange(0, width - stride + 1, stride) + stride / 2.0
    vs = np.arange(0, height - stride + 1, stride) + stride / 2.0
    return np.meshgrid(us, vs)


def _normals(P: np.ndarray) -> np.ndarray:
    """Normals [h, w, 3] of an organised point map [h, w, 3] (camera frame), facing the camera.

    Float64 maps of at least 2×2 points go through :func:`~p4dsim.scene.footprint.normals_kernel`
    (the same arithmetic in one compiled pass); the numpy code below is the reference."""
    if P.dtype == np.float64 and P.ndim == 3 and P.shape[0] >= 2 and P.shape[1] >= 2:
        out = np.empty_like(P)
        normals_kernel(np.ascontiguousarray(P), out)
        return out
    dx = np.zeros_like(P)
    dy = np.zeros_like(P)
    dx[:, 1:-1] = P[:, 2:] - P[:, :-2]
    dx[:, 0] = P[:, 1] - P[:, 0]
    dx[:, -1] = P[:, -1] - P[:, -2]
    dy[1:-1] = P[2:] - P[:-2]
    dy[0] = P[1] - P[0]
    dy[-1] = P[-1] - P[-2]
    n = np.cross(dy, dx)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = n / np.maximum(norm, 1e-12)
    view = P / np.maximum(np.linalg.norm(P, axis=-1, keepdims=True), 1e-12)
    flip = np.sum(n * view, axis=-1, keepdims=True) > 0
    n = np.where(flip, -n, n)
    # Depth discontinuities: fall back to a camera-facing normal.
    bad = (norm[..., 0] < 1e-12) | (
        np.maximum(np.abs(dx[..., 2]), np.abs(dy[..., 2])) > 0.25 * P[..., 2]
    )
    n[bad] = -view[bad]
    return n


def footprint_gaussians(
    depth: np.ndarray,  # [h, w] camera z (m) at the sample positions
    u: np.ndarray,  # [h, w]
    v: np.ndarray,  # [h, w]
    K: np.ndarray,
    sigma_px: float,
    thickness_ratio: float,
    max_stretch: float,
    normals: np.ndarray | None = None,  # [h, w, 3] camera frame, or None to estimate
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame means [n, 3], quats [n, 4] and scales [n, 3] of pixel-footprint Gaussians.

    Each Gaussian's covariance is σ²(a aᵀ + b bᵀ) + (t σ_n)² n nᵀ, where a, b are the
    derivatives of the surface point with respect to the pixel coordinates u, v (the pixel's
    footprint on the tangent plane) and n the normal: projected back into the source view it
    is an isotropic blob of σ = ``sigma_px`` pixels.
    """
    Kinv = np.linalg.inv(K)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ Kinv.T  # z = 1
    P = rays * depth[..., None]
    n = _normals(P) if normals is None else normals
    ru = Kinv[:, 0]
    rv = Kinv[:, 1]
    ndr = np.sum(n * rays, axis=-1)
    min_cos = 1.0 / max_stretch
    ray_len = np.linalg.norm(rays, axis=-1)
    ndr = np.where(np.abs(ndr) < min_cos * ray_len, -min_cos * ray_len, ndr)
    # Points on the tangent plane: p(u, v) = r(u, v) * (n·P) / (n·r(u, v)).
    c = np.sum(n * P, axis=-1)
    a = (ru * (c / ndr)[..., None]) - rays * (c * (n @ ru) / ndr**2)[..., None]
    b = (rv * (c / ndr)[..., None]) - rays * (c * (n @ rv) / ndr**2)[..., None]
    a = a.reshape(-1, 3)
    b = b.reshape(-1, 3)
    nn = n.reshape(-1, 3)
    s2 = sigma_px**2
    thick = (
        thickness_ratio * sigma_px * np.sqrt(0.5 * (np.sum(a * a, axis=1) + np.sum(b * b, axis=1)))
    )
    cov = s2 * (a[:, :, None] * a[:, None, :] + b[:, :, None] * b[:, None, :])
    cov += (thick**2)[:, None, None] * nn[:, :, None] * nn[:, None, :]
    evals, evecs = np.linalg.eigh(cov)
    det = np.linalg.det(evecs)
    evecs[:, :, 0] *= np.sign(det)[:, None]
    scales = np.sqrt(np.maximum(evals, 1e-12))
    quats = rotmat_to_quat(evecs)
    return P.reshape(-1, 3), quats, scales


def _dense_depth(frame: Frame, cfg: BuildConfig):
    """(dense depth [H, W], sky [H, W], sparse [H, W], ground plane, depth confidence [H, W])."""
    cam = frame.camera
    H, W = cam.height, cam.width
    has_lidar = frame.lidar is not None and len(frame.lidar) > 0
    source = cfg.depth_source
    if source == "auto":
        source = "lidar" if has_lidar else "prior"
    if source == "lidar" and not has_lidar:
        raise ConfigError(
            f"depth source 'lidar' was asked for but frame {frame.source.frame_index} of "
            f"{frame.source.log_id} has no LiDAR; use depth source 'auto', 'prior' or 'mono'"
        )
    if source not in ("lidar", "prior", "mono"):
        raise ConfigError(
            f"unknown depth source '{cfg.depth_source}' (use auto, lidar, prior or mono)"
        )
    ground = fit_ground_plane(frame.lidar) if has_lidar else None
    if ground is None:
        ground = ground_prior(frame.boxes)
    if source == "lidar":
        sparse = project_lidar(frame.lidar, cam)
        dense = complete_depth(sparse, cfg.max_depth, image=frame.image)
        # Above the LiDAR's field of view: surfaces continued, sky only where the image
        # says sky, unsupported structure far in inverse depth.
        dense, sky, _ = depth_above_lidar(
            dense, sparse, frame.image, cfg.max_depth, camera=cam, boxes=frame.boxes
        )
        conf = lidar_confidence(sparse, 4.0 * W / 1242.0)
        return dense, sky, sparse, ground, conf
    prior, hit = prior_depth(cam, ground, frame.boxes, cfg.prior_far_m)
    sky = detect_sky(frame.image, np.where(hit, prior, 0.0).astype(np.float32))
    if source == "mono":
        from p4dsim.scene.mono import mono_depth

        ref = project_lidar(frame.lidar, cam) if has_lidar else np.where(hit, prior, 0.0)
        dense = mono_depth(frame.image, cfg.mono_model, ref, cfg.max_depth)
    else:
        dense = prior
    conf = np.full((H, W), 0.3, np.float32)
    return dense.astype(np.float32), sky, np.zeros((H, W), np.float32), ground, conf


def _gaussians(
    P_cam: np.ndarray,
    normals: np.ndarray,
    colors: np.ndarray,
    sigma: np.ndarray | float,
    confidence: np.ndarray | float,
    cam,
    cfg: BuildConfig,
) -> GaussianSet:
    means, quats, scales = footprint_world(
        P_cam, normals, cam.K, sigma, cfg.thickness_ratio, cfg.max_stretch, cam.T_ego_camera
    )
    n = len(means)
    return GaussianSet(
        means=means,
        quats=quats,
        scales=scales,
        opacities=np.full(n, cfg.opacity, np.float32),
        colors=colors.reshape(-1, 3),
        confidence=np.broadcast_to(np.asarray(confidence, np.float32).reshape(-1), (n,)),
    )


def build_scene(frame: Frame, config: BuildConfig | None = None) -> Scene4D:
    """Build the 4D Gaussian scene of one frame (see module docstring)."""
    cfg = config or BuildConfig()
    cam = frame.camera
    H, W = cam.height, cam.width
    s = cfg.stride
    dense, sky, sparse, ground, depth_conf = _dense_depth(frame, cfg)
    unknown = (dense <= 0) & ~sky
    dense = np.where(
        sky, cfg.sky_depth, np.where(unknown, cfg.max_depth, np.minimum(dense, cfg.max_depth))
    ).astype(np.float32)
    seg = None
    if frame.boxes and cfg.vehicle_masks:
        seg = segment_vehicles(frame.image, cam, frame.boxes, frame.lidar, ground, sky)
        _join_box_pixels(seg, dense, cam, frame.boxes, ground, sky, cfg.core_clearance_m)
        dense = vehicle_depth(dense, seg, depth_conf)

    u, v = pixel_grid(W, H, s)
    iu = np.minimum((u - s / 2).astype(int) + s // 2, W - 1)
    iv = np.minimum((v - s / 2).astype(int) + s // 2, H - 1)
    d = dense[iv, iu]
    sky_s = sky[iv, iu]
    img = frame.image.astype(np.float32) / 255.0
    if s > 1:
        h2, w2 = u.shape
        colors = img[: h2 * s, : w2 * s].reshape(h2, s, w2, s, 3).mean(axis=(1, 3))
    else:
        colors = img
    Kinv = np.linalg.inv(cam.K)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ Kinv.T
    P = rays * d[..., None]
    g = _gaussians(
        P,
        _normals(P),
        colors,
        cfg.footprint_sigma_px * s,
        1.0,  # observed (even where the depth is a guess)
        cam,
        cfg,
    )
    is_sky = sky_s.reshape(-1)
    n_grid = len(g)
    anchor = np.zeros(0, np.int64)
    if cfg.backing:
        gb, anchor = _backing(img, dense, sky, cam, cfg)
        if seg is not None and len(gb):
            # a disc across a vehicle's boundary goes with the vehicle: left in the static
            # scene it would stay behind, with the vehicle's colour, when the vehicle moves
            k = np.ones((4 * s + 1, 4 * s + 1), np.uint8)
            near_vehicle = cv2.dilate(seg.labels.astype(np.float32), k)
            a_v, a_u = iv.reshape(-1)[anchor], iu.reshape(-1)[anchor]
            disc_label = near_vehicle[a_v, a_u].astype(np.int32)
        g = GaussianSet.concat([g, gb])
        is_sky = np.concatenate([is_sky, np.zeros(len(gb), bool)])

    actors: list[Actor] = []
    taken = np.zeros(len(g), dtype=bool)
    T_cam_ego = inv_pose(cam.T_ego_camera)
    n_g, d_g = ground
    height_above = g.means.astype(np.float64) @ n_g + d_g
    lab_g = np.full(len(g), -1, np.int32)
    if seg is not None:
        lab_g[:n_grid] = seg.labels[iv, iu].reshape(-1)
        if len(g) > n_grid:  # backing discs go where the pixel they back went ...
            lab_g[n_grid:] = lab_g[:n_grid][anchor]
            lab_g[n_grid:] = np.maximum(lab_g[n_grid:], disc_label)  # ... or with a vehicle
    for bi, box in enumerate(frame.boxes):
        T_wa = box.pose()
        if seg is not None:
            # the box's pixels (their depth already on the box), without the ground under it
            inside = (lab_g == bi) & (height_above > cfg.core_clearance_m) & ~taken & ~is_sky
        else:
            inside = _box_volume(g, box, cam, cfg, height_above, taken, is_sky, n_grid, anchor)
        taken |= inside
        # (indices: a vehicle holds few of the Gaussians; gathering them beats masking all)
        ga = g.subset(np.flatnonzero(inside)).transformed(inv_pose(T_wa))
        # Mirror completion needs the box's far side: LiDAR-detected boxes extend what the
        # sweep did not see with size priors, so their mirrored side could float beside them.
        mirror = box.label in ("vehicle", "car", "truck", "bus") and box.source != "auto"
        if cfg.hidden_layers and len(ga) and mirror:
            core = np.all(np.abs(ga.means) <= np.asarray(box.size) / 2, axis=1)
            mir = mirror_actor(ga.subset(core), cfg.synth_confidence)
            if len(mir):
                m_cam = transform_points(T_cam_ego @ T_wa, mir.means)
                mir = mir.subset(hidden_from_source(m_cam, dense, cam.K))
                ga = GaussianSet.concat([ga, mir])
        if cfg.hidden_layers and len(ga):
            ga = GaussianSet.concat([ga, _continued(ga, box, T_cam_ego @ T_wa, cam, cfg)])
        vel = box.velocity if box.velocity is not None else np.zeros(3)
        motion = RigidMotion.from_velocity(T_wa, vel, None, None)
        actors.append(
            Actor(
                track_id=box.track_id,
                label=box.label,
                size=np.asarray(box.size, dtype=np.float64),
                gaussians=ga,
                motion=motion,
                source=box.source,
                confidence=box.confidence,
            )
        )
    static_parts = [g.subset(~taken)]
    sky_parts = [is_sky[~taken]]
    if cfg.hidden_layers:
        for layer, layer_sky in _hidden_layers(
            frame, cfg, dense, sky, ground, taken[:n_grid], u.shape
        ):
            static_parts.append(layer)
            sky_parts.append(layer_sky)
    return Scene4D(
        static=GaussianSet.concat(static_parts),
        actors=actors,
        camera=cam,
        T_log_scene=np.asarray(frame.T_world_ego, dtype=np.float64),
        source=frame.source,
        timestamp_us=int(frame.timestamp_us),
        ground=(np.asarray(n_g, dtype=np.float64), float(d_g)),
        sky_depth=cfg.sky_depth,
        is_sky=np.concatenate(sky_parts),
        boxes=frame.boxes,
        ego_velocity=np.asarray(frame.ego_velocity),
        depth_confidence=depth_conf,
    )


def _in_view(P_cam: np.ndarray, cam) -> np.ndarray:
    """bool [n]: camera-frame points [n, 3] in front of the camera and inside its image."""
    z = np.maximum(P_cam[:, 2], 0.1)
    u = cam.K[0, 0] * P_cam[:, 0] / z + cam.K[0, 2]
    v = cam.K[1, 1] * P_cam[:, 1] / z + cam.K[1, 2]
    return (P_cam[:, 2] > 0.1) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)


def _continued(ga: GaussianSet, box, T_cam_actor: np.ndarray, cam, cfg) -> GaussianSet:
    """Synthesised Gaussians that continue an actor's side (``ga``, actor frame) towards each
    end of its box that lies outside the source view (behind the camera or past the image's
    border; :func:`~p4dsim.scene.layers.continue_along_length`), kept only where the source
    view does not see them."""
    half = float(box.size[0]) / 2
    mid = np.median(ga.means[:, 1:], axis=0).astype(np.float64)
    out = []
    for end in (-1, 1):
        # the end of the box at the height and side of the actor's Gaussians
        p = np.array([[end * half, mid[0], mid[1]]])
        if _in_view(transform_points(T_cam_actor, p), cam)[0]:
            continue  # in view: what is not seen there is hidden, not cut off
        c = continue_along_length(ga, half, end, cfg.continue_slab_m, cfg.synth_confidence)
        if len(c):
            out.append(c.subset(~_in_view(transform_points(T_cam_actor, c.means), cam)))
    return GaussianSet.concat(out) if out else GaussianSet.empty()


def _backing(img, dense, sky, cam, cfg) -> tuple[GaussianSet, np.ndarray]:
    """Backing discs: one surface-aligned Gaussian per 2s×2s block (s = stride), ``backing_sigma``
    times the block wide, with the block's mean colour, pushed just behind every first surface
    its footprint reaches so that the source view is unchanged. When a novel view magnifies a
    surface, the pixel Gaussians in front part and these fill the gaps between them; none at
    depth edges (far/near ≥ ``backing_edge_ratio`` within 3 pixels) or on the sky. Returns
    the discs and, per disc, the index of the pixel Gaussian (stride grid) at its block's
    centre."""
    H, W = dense.shape
    b = 2 * cfg.stride
    d = np.where(sky, 0.0, dense).astype(np.float32)
    k = np.ones((7, 7), np.uint8)
    hi = cv2.dilate(d, k)
    d_sky = np.where(sky, np.float32(cfg.sky_depth), d)
    lo = cv2.erode(d_sky, k)
    hi_sky = cv2.dilate(d_sky, k)
    u, v = pixel_grid(W, H, b)
    iu = np.minimum((u - b / 2).astype(int) + b // 2, W - 1)
    iv = np.minimum((v - b / 2).astype(int) + b // 2, H - 1)
    ok = (hi_sky[iv, iu] < cfg.backing_edge_ratio * lo[iv, iu]) & (lo[iv, iu] > 0)
    # The discs sit at ``hi`` (sky counted as 0 there): a block whose neighbourhood is all sky
    # passes the edge test on sky-as-sky_depth but would get depth 0, at the camera centre.
    ok &= ~sky[iv, iu] & (hi[iv, iu] > 0)
    if not ok.any():
        return GaussianSet.empty(), np.zeros(0, np.int64)
    h2, w2 = u.shape
    colors = img[: h2 * b, : w2 * b].reshape(h2, b, w2, b, 3).mean(axis=(1, 3))
    Kinv = np.linalg.inv(cam.K)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ Kinv.T
    P = rays * (dense[iv, iu] * (1.0 + cfg.backing_gap))[..., None]
    N = _normals(P)
    P = rays * (hi[iv, iu] * (1.0 + cfg.backing_gap))[..., None]
    gb = _gaussians(P[ok], N[ok], colors[ok], cfg.backing_sigma * b, 1.0, cam, cfg)
    # Below 0.9: a renderer skips a Gaussian that would drop the transmittance under 1e-4, so
    # an opaque pixel Gaussian behind a nearly opaque disc would be lost.
    gb.opacities[:] = cfg.backing_opacity
    s = cfg.stride
    w_grid = (W - s) // s + 1
    anchor = (np.minimum(iv // s, (H - s) // s) * w_grid + np.minimum(iu // s, w_grid - 1))[ok]
    return gb, anchor.astype(np.int64)


def _hidden_layers(frame, cfg, dense, sky, ground, taken, grid_shape):
    """The behind layer and the border layer as (GaussianSet, is_sky) pairs (static, world)."""
    cam = frame.camera
    H, W = cam.height, cam.width
    s = cfg.stride
    sigma = cfg.footprint_sigma_px * s
    Kinv = np.linalg.inv(cam.K)
    uu, vv = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    zg = ray_plane_depth(cam.K, cam.T_ego_camera, ground, uu, vv).astype(np.float32)
    h2, w2 = grid_shape
    amask = np.zeros((H, W), bool)
    t2 = taken.reshape(h2, w2)
    amask[: h2 * s, : w2 * s] = np.repeat(np.repeat(t2, s, axis=0), s, axis=1)
    _, exit_d = ray_box_depths(cam, frame.boxes, cfg.box_grow_m)
    bdepth, bcol, keep = behind_layer(
        frame.image, dense, sky, amask, zg, cfg.max_depth, exit_depth=exit_d
    )
    out = []
    u, v = pixel_grid(W, H, s)
    iu = np.minimum((u - s / 2).astype(int) + s // 2, W - 1)
    iv = np.minimum((v - s / 2).astype(int) + s // 2, H - 1)
    emit = keep
    if not cfg.behind_actors:
        # Inside an actor's mask, farther than the edge band from its boundary, only the road
        # under and behind it (where the behind depth is the ground plane's) is kept; the
        # inpainted curtain above it is a guess: what the actor's moving reveals there is
        # filled in the view where it opens, from the far side of the depth edge
        # (render/fill.py). The band keeps the thin reveals along the actor's boundary.
        b = 2 * EDGE_BAND_PX + 1
        inner = cv2.erode(amask.astype(np.uint8), np.ones((b, b), np.uint8)) > 0
        # (the ground plane, pushed behind its neighbours by at most 10 %)
        road = (zg > 0) & (bdepth >= 0.999 * zg) & (bdepth <= 1.1 * zg)
        emit = keep & (~inner | road)
    sel = emit[iv, iu]
    if sel.any():
        full = np.where(keep, bdepth, dense)
        rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ Kinv.T
        P = rays * full[iv, iu][..., None]
        N = _normals(P)
        col = bcol[iv, iu].astype(np.float32) / 255.0
        g = _gaussians(P[sel], N[sel], col[sel], sigma, cfg.synth_confidence, cam, cfg)
        # At most 0.99: a renderer skips a Gaussian that would drop the transmittance under
        # 1e-4, so behind a few partly transparent footprints (a vehicle's boundary after it
        # moved) a 0.999 layer would be skipped and leave the pixel partly empty.
        g.opacities[:] = np.minimum(g.opacities, 0.99)
        out.append((g, np.zeros(len(g), bool)))
    # The image extended past its borders continues the background only: a vehicle or the
    # near side of an edge at the border is replaced by what the behind layer puts behind it
    # (reflected, it would show as a second copy once the view moves sideways).
    bl = border_layer(
        np.where(keep[..., None], bcol, frame.image),
        np.where(keep, bdepth, dense).astype(np.float32),
        sky,
        cfg.border_frac_x,
        cfg.border_frac_y,
        cfg.border_stride * s,
        cfg.border_sigma_px,
    )
    if len(bl.u):
        # Camera-facing discs: isotropic footprints in the source view, so none reaches in.
        rays = np.stack([bl.u, bl.v, np.ones_like(bl.u)], axis=-1) @ Kinv.T
        P = rays * bl.depth[:, None]
        N = -P / np.linalg.norm(P, axis=1, keepdims=True)
        g = _gaussians(P, N, bl.colors, bl.sigma_px, cfg.synth_confidence, cam, cfg)
        out.append((g, bl.sky.astype(bool)))
    # Sky can show behind a surface only as far from the visible sky as the largest sideways
    # move (sky_backdrop_shift_m) shifts that surface in the image.
    near_sky = cv2.distanceTransform((~sky).astype(np.uint8), cv2.DIST_L2, 3)
    reach = cam.K[0, 0] * cfg.sky_backdrop_shift_m / np.maximum(dense, 1e-3)
    where = (zg <= 0) & (near_sky <= reach) & (cfg.sky_backdrop_shift_m > 0)
    sb = sky_backdrop(frame.image, sky, where, cfg.sky_stride * s, cfg.border_sigma_px)
    if len(sb.u):
        rays = np.stack([sb.u, sb.v, np.ones_like(sb.u)], axis=-1) @ Kinv.T
        P = rays * (cfg.sky_depth * 1.05)  # behind the sky dome
        N = -P / np.linalg.norm(P, axis=1, keepdims=True)
        g = _gaussians(P, N, sb.colors, sb.sigma_px, cfg.synth_confidence, cam, cfg)
        out.append((g, np.ones(len(g), bool)))
    return out
