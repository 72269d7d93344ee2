"""Per-frame actor labels: 2D boxes from rendered visibility, visible fraction, truncation.

* **Visible pixels**: pixels where the actor's rendered mask channel exceeds 0.5 (its
  Gaussians carry most of the pixel's weight) and whose rendered surface lies inside its 3D
  box (grown by :data:`BOX_TOL_M`); the second test drops background Gaussians that the scene
  builder's grown actor boxes took in along the silhouette.
* **2D box**: the pixel bounds [x0, y0, x1, y1] (x1, y1 exclusive) of the visible pixels.
* **Visible fraction**: visible pixels / pixels the actor covers when rendered alone (no
  static world, no other actor), from one extra render per actor in view.
* **Truncation**: the share of the 3D box's projection (convex hull of its corners, clipped at
  the camera's near plane) that falls outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from p4dsim.geometry import BOX_CORNER_SIGNS, box_corners, inv_pose, rot_z, transform_points, yaw_of
from p4dsim.types import Camera

if TYPE_CHECKING:
    from p4dsim.render.base import Renderer

NEAR_M = 0.1
#: a rendered actor pixel counts as visible when its surface lies within this of the box (m)
BOX_TOL_M = 0.05
_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)


def box2d_from_mask(mask: np.ndarray) -> list[float] | None:
    """[x0, y0, x1, y1] pixel bounds of a boolean mask [H, W] (x1, y1 exclusive); None if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def box_iou(a: list[float] | None, b: list[float] | None) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 when either is None)."""
    if a is None or b is None:
        return 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def corners_camera(
    T_cam_world: np.ndarray, T_world_box: np.ndarray, size: np.ndarray
) -> np.ndarray:
    """The 8 box corners [8, 3] in the camera frame (box pose [4, 4] at its centre)."""
    c = box_corners(T_world_box[:3, 3], size, float(yaw_of(T_world_box)))
    return transform_points(T_cam_world, c)


def _clip_candidates(corners_cam: np.ndarray, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate hull points of boxes with corners [..., 8, 3] (camera frame) clipped to
    z >= ``near``: the 8 corners then the 12 edges' near-plane crossings, [..., 20, 3], and
    which of them exist [..., 20] (corners in front; edges that cross the plane)."""
    c = np.asarray(corners_cam, dtype=np.float64)
    a, b = c[..., _EDGES[:, 0], :], c[..., _EDGES[:, 1], :]
    da, db = a[..., 2] - near, b[..., 2] - near
    cross = da * db < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(cross, (near - a[..., 2]) / np.where(cross, b[..., 2] - a[..., 2], 1.0), 0.0)
    pts = np.concatenate([c, a + s[..., None] * (b - a)], axis=-2)
    valid = np.concatenate([c[..., 2] >= near, cross], axis=-1)
    return pts, valid


def _project(P: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points [..., 3] to pixels [..., 2]."""
    z = np.where(P[..., 2] == 0, 1.0, P[..., 2])
    return np.stack([K[0, 0] * P[..., 0] / z + K[0, 2], K[1, 1] * P[..., 1] / z + K[1, 2]], -1)


def clipped_projection(corners_cam: np.ndarray, K: np.ndarray, near: float = NEAR_M) -> np.ndarray:
    """Pixel points [M, 2] whose convex hull is the projection of the box with corners [8, 3]
    (camera frame) clipped to z ≥ ``near``: projected corners in front plus the points where
    box edges cross the near plane. Empty [0, 2] when the box is entirely behind it."""
    pts, valid = _clip_candidates(corners_cam, near)
    return _project(pts[valid], K)


def projected_bounds(
    corners_cam: np.ndarray, K: np.ndarray, near: float = NEAR_M
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel bounds [M, 4] (u_min, v_min, u_max, v_max) of the projections of boxes with
    corners [M, 8, 3] (camera frame) clipped to z >= ``near``, and which boxes project to
    anything [M] bool (at least 3 points in front)."""
    pts, valid = _clip_candidates(corners_cam, near)
    ok = valid.sum(axis=-1) >= 3
    uv = _project(pts, K)
    lo = np.where(valid[..., None], uv, np.inf).min(axis=-2)
    hi = np.where(valid[..., None], uv, -np.inf).max(axis=-2)
    return np.concatenate([lo, hi], axis=-1), ok


def truncations(corners_cam: np.ndarray, cam: Camera, near: float = NEAR_M) -> np.ndarray:
    """Share (0..1) of each box's projected area outside the image, for boxes with corners
    [M, 8, 3] in the camera frame; NaN where a box lies entirely behind the camera or
    projects to nothing. Vectorised (shapely array functions)."""
    import shapely

    pts, valid = _clip_candidates(corners_cam, near)
    M = pts.shape[0]
    out = np.full(M, np.nan)
    ok = valid.sum(axis=1) >= 3
    if not ok.any():
        return out
    uv = _project(pts[ok], cam.K)
    v = valid[ok]
    # absent candidates repeat the first present point: the hull stays the same
    first = uv[np.arange(len(uv)), np.argmax(v, axis=1)]
    uv = np.where(v[..., None], uv, first[:, None, :])
    hull = shapely.convex_hull(shapely.multipoints(uv))
    area = shapely.area(hull)
    inside = shapely.area(
        shapely.intersection(hull, shapely.box(0.0, 0.0, float(cam.width), float(cam.height)))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(area > 0, 1.0 - inside / np.where(area > 0, area, 1.0), np.nan)
    frac = np.where(frac < 1e-9, 0.0, np.minimum(frac, 1.0))
    out[ok] = frac
    return out


def truncation(corners_cam: np.ndarray, cam: Camera) -> float | None:
    """Share (0..1) of the box's projected area outside the image; None when the box is
    entirely behind the camera or projects to nothing."""
    f = float(truncations(np.asarray(corners_cam)[None], cam)[0])
    return None if np.isnan(f) else f


@dataclass
class LabelGeometry:
    """Label values that follow from poses alone, for time steps ``ks`` [K] of a timeline and
    every actor of the scene [A] (computed at once, vectorised):

    present [K, A] bool (the actor has a pose; removed actors do not); center_world [K, A, 3]
    m and yaw_world [K, A] rad (its pose; zeros when absent); center_camera [K, A, 3] m;
    yaw_camera [K, A] rad (heading about the camera's up axis from +x); distance_m [K, A];
    truncation [K, A] (NaN: none); speed [K, A] m/s (ground plane); velocity_world and
    acceleration_world [K, A, 3] m/s and m/s² from the motion model (zeros when absent)."""

    ks: np.ndarray
    present: np.ndarray
    center_world: np.ndarray
    yaw_world: np.ndarray
    center_camera: np.ndarray
    yaw_camera: np.ndarray
    distance_m: np.ndarray
    truncation: np.ndarray
    speed: np.ndarray
    velocity_world: np.ndarray | None = None
    acceleration_world: np.ndarray | None = None

    def row_of(self, k: int) -> int:
        """Row of time step ``k`` in the arrays."""
        i = int(np.searchsorted(self.ks, k))
        if i >= len(self.ks) or self.ks[i] != k:
            raise KeyError(f"time step {k} is not in this label geometry")
        return i


def label_geometry(scene, timeline, ks: np.ndarray | list[int] | None = None) -> LabelGeometry:
    """:class:`LabelGeometry` of ``timeline`` (a :class:`p4dsim.replay.Timeline`) at time steps
    ``ks`` (default: all, ascending) for every actor of ``scene``."""
    n = len(timeline.times)
    ks = np.arange(n) if ks is None else np.asarray(sorted(ks), dtype=np.int64)
    K, A = len(ks), len(scene.actors)
    present = np.zeros((K, A), dtype=bool)
    T = np.tile(np.eye(4), (K, A, 1, 1))
    speed = np.zeros((K, A))
    vel_w, acc_w = np.zeros((K, A, 3)), np.zeros((K, A, 3))
    accs = timeline.actor_acceleration
    for i, actor in enumerate(scene.actors):
        P = timeline.actor_poses.get(actor.track_id)
        if P is None:
            continue
        present[:, i] = True
        T[:, i] = P[ks]
        v = timeline.actor_velocity.get(actor.track_id)
        if v is not None:
            speed[:, i] = np.linalg.norm(v[ks, :2], axis=-1)
            vel_w[:, i] = v[ks]
        if accs.get(actor.track_id) is not None:
            acc_w[:, i] = accs[actor.track_id][ks]
        elif n > 1:
            k2 = np.minimum(ks + 1, n - 1)
            k1 = np.maximum(k2 - 1, 0)
            dtk = np.maximum(timeline.times[k2] - timeline.times[k1], 1e-2)
            speed[:, i] = np.linalg.norm(P[k2, :2, 3] - P[k1, :2, 3], axis=-1) / dtk
    T_cam_world = inv_pose(timeline.T_world_camera[ks])  # [K, 4, 4]
    c_cam = (
        np.einsum("kij,kaj->kai", T_cam_world[:, :3, :3], T[..., :3, 3])
        + T_cam_world[:, None, :3, 3]
    )
    fwd = np.einsum("kij,kaj->kai", T_cam_world[:, :3, :3], T[..., :3, 0])
    sizes = np.array([a.size for a in scene.actors], dtype=np.float64).reshape(A, 3)
    # box corners in the world (upright boxes: yaw only), then in the camera
    local = BOX_CORNER_SIGNS[None] * sizes[:, None, :] / 2  # [A, 8, 3]
    yaw = yaw_of(T)  # [K, A]
    cw = np.einsum("kaij,anj->kani", rot_z(yaw), local) + T[..., None, :3, 3]
    cc = np.einsum("kij,kanj->kani", T_cam_world[:, :3, :3], cw) + T_cam_world[:, None, None, :3, 3]
    trunc = np.full((K, A), np.nan)
    if present.any():
        trunc[present] = truncations(cc[present], timeline.camera)
    return LabelGeometry(
        ks=ks,
        present=present,
        center_world=T[..., :3, 3],
        yaw_world=yaw,
        center_camera=c_cam,
        yaw_camera=np.arctan2(-fwd[..., 2], fwd[..., 0]),
        distance_m=np.linalg.norm(c_cam, axis=-1),
        truncation=trunc,
        speed=speed,
        velocity_world=vel_w,
        acceleration_world=acc_w,
    )


def alone_pixels(
    scene,
    actor_poses: dict[str, np.ndarray],
    T_world_camera: np.ndarray,
    cam: Camera,
    renderer: Renderer,
) -> np.ndarray:
    """Pixels [A] (int) each actor of ``scene.actors`` covers when rendered alone at its pose
    (rendered opacity > 0.5, surface inside its box as for visible pixels); 0 for actors absent from ``actor_poses`` (removed), without
    Gaussians, or whose box lies entirely outside the view.

    Each actor is rendered only in the window its box (grown by 1 m on every side) projects
    to: the same pixels, with the principal point shifted by the window's integer origin."""
    out = np.zeros(len(scene.actors), dtype=np.int64)
    T_cam_world = inv_pose(T_world_camera)
    viewmat = T_cam_world[None]
    for i, actor in enumerate(scene.actors):
        T = actor_poses.get(actor.track_id)
        if T is None or len(actor.gaussians) == 0:
            continue
        uv = clipped_projection(corners_camera(T_cam_world, T, actor.size + 2.0), cam.K)
        if len(uv) < 3:
            continue
        W, H = cam.width, cam.height
        x0 = int(np.clip(np.floor(uv[:, 0].min()), -W, 2 * W))
        x1 = int(np.clip(np.ceil(uv[:, 0].max()), -W, 2 * W))
        y0 = int(np.clip(np.floor(uv[:, 1].min()), -H, 2 * H))
        y1 = int(np.clip(np.ceil(uv[:, 1].max()), -H, 2 * H))
        if x1 <= max(x0, 0) or y1 <= max(y0, 0) or x0 >= W or y0 >= H:
            continue
        # The window may reach beyond the image so that the renderer's frustum culling keeps
        # every Gaussian of the actor that touches the image; only image pixels are counted.
        K = cam.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        g = actor.gaussians.transformed(T)
        r = renderer.render(g, viewmat, K[None], x1 - x0, y1 - y0)
        inside = inside_box_mask(r.depth[0], cam.K, T_world_camera, T, actor.size, x0=x0, y0=y0)
        covered = (r.alpha[0] > 0.5) & inside
        covered = covered[max(-y0, 0) : H - y0, max(-x0, 0) : W - x0]
        out[i] = int(np.count_nonzero(covered))
    return out


def inside_box_mask(
    depth: np.ndarray,
    K: np.ndarray,
    T_world_camera: np.ndarray,
    T_world_box: np.ndarray,
    size: np.ndarray,
    tol_m: float = BOX_TOL_M,
    x0: int = 0,
    y0: int = 0,
) -> np.ndarray:
    """bool [H, W]: pixels whose rendered surface (camera-z ``depth`` [H, W], m, of an image
    window whose top-left pixel is (x0, y0) in the image with intrinsics K) lies inside the box
    (pose [4, 4] at its centre, size [3]) grown by ``tol_m`` on every side."""
    Hh, Ww = depth.shape
    jj, ii = np.meshgrid(np.arange(Ww) + x0 + 0.5, np.arange(Hh) + y0 + 0.5)
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float64)
    pc = np.stack([(jj - K[0, 2]) / K[0, 0] * z, (ii - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    T = inv_pose(T_world_box) @ T_world_camera
    loc = pc.reshape(-1, 3) @ T[:3, :3].T + T[:3, 3]
    with np.errstate(invalid="ignore"):
        ok = np.all(np.abs(loc) <= np.asarray(size) / 2 + tol_m, axis=1)
    return ok.reshape(Hh, Ww)
