"""A 4D scene on the GPU: uploaded once (static world, then every actor's Gaussians in its
own frame), actors posed on the device per time step, B time steps rasterized in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from p4dsim.geometry import BOX_CORNER_SIGNS, rot_z, yaw_of
from p4dsim.labels import BOX_TOL_M, NEAR_M, projected_bounds
from p4dsim.render.base import RasterSettings
from p4dsim.render.gsplat.rasterizer import rasterize_steps
from p4dsim.scene.gaussians import GaussianSet

if TYPE_CHECKING:
    import torch

    from p4dsim.scene.scene4d import Scene4D


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of (w, x, y, z) quaternions, broadcasting over leading dims."""
    import torch

    from p4dsim.geometry import hamilton

    return torch.stack(hamilton(a.unbind(-1), b.unbind(-1)), dim=-1)


@dataclass
class SceneTensors:
    """A 4D scene on the GPU, N = static + all actors' Gaussians (in that order).

    means/quats/scales: [N, 3]/[N, 4]/[N, 3] float32 (static in world, actors in their own
    frame); opacities: [N]; feats: [N, 3 + E] colour then extra channels; spans: per actor
    (start, stop) rows of its Gaussians; track_ids: per actor.
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    feats: torch.Tensor
    spans: list[tuple[int, int]]
    track_ids: list[str]
    #: actor index of every actor Gaussian [N - static] (rows from the first span on)
    actor_index: torch.Tensor | None = None
    #: every actor's Gaussians alone, padded to the largest (padding has zero opacity):
    #: means/quats/scales [A, M, 3/4/3], opacities [A, M]
    actor_means: torch.Tensor | None = None
    actor_quats: torch.Tensor | None = None
    actor_scales: torch.Tensor | None = None
    actor_opacities: torch.Tensor | None = None
    #: box sizes [A, 3] (m), and half sizes grown by the labels' tolerance [A, 3] on the GPU
    box_sizes: np.ndarray | None = None
    half_grown: torch.Tensor | None = None

    @property
    def num_extra(self) -> int:
        return int(self.feats.shape[1]) - 3


@dataclass
class StepsOutput:
    """Renders of B time steps, torch tensors on the GPU: rgb [B, H, W, 3], depth [B, H, W]
    (expected camera z, metres), alpha [B, H, W], extra [B, H, W, E] (the channels before
    the actors'), actors [B, H, W, A] (the one-hot actor channels, composited only where an
    actor can be labelled, zero elsewhere)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    extra: torch.Tensor
    actors: torch.Tensor


def upload_scene(scene: Scene4D, extra: np.ndarray | None, device: torch.device) -> SceneTensors:
    """``scene`` on ``device``: static Gaussians then each actor's (in its own frame).

    extra: [N, E] per-Gaussian channels in that row order (see
    :func:`p4dsim.render.frames.scene_extra`), or None."""
    import torch

    parts = [scene.static] + [a.gaussians for a in scene.actors]
    g = GaussianSet.concat(parts)
    spans, start = [], len(scene.static)
    for a in scene.actors:
        spans.append((start, start + len(a.gaussians)))
        start += len(a.gaussians)
    feats = g.colors if extra is None else np.concatenate([g.colors, extra], axis=1)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=device)

    st = SceneTensors(
        t(g.means),
        t(g.quats),
        t(g.scales),
        t(g.opacities),
        t(feats),
        spans,
        [a.track_id for a in scene.actors],
    )
    A = len(scene.actors)
    if A:
        M = max(1, max(len(a.gaussians) for a in scene.actors))
        pm, pq = np.zeros((A, M, 3)), np.tile([1.0, 0.0, 0.0, 0.0], (A, M, 1))
        ps, po = np.full((A, M, 3), 1e-3), np.zeros((A, M))
        for i, a in enumerate(scene.actors):
            n = len(a.gaussians)
            pm[i, :n], pq[i, :n] = a.gaussians.means, a.gaussians.quats
            ps[i, :n], po[i, :n] = a.gaussians.scales, a.gaussians.opacities
        st.actor_means, st.actor_quats, st.actor_scales = t(pm), t(pq), t(ps)
        st.actor_opacities = t(po)
        st.actor_index = torch.as_tensor(
            np.concatenate([np.full(s1 - s0, a, np.int64) for a, (s0, s1) in enumerate(spans)]),
            device=device,
        )
        st.box_sizes = np.array([a.size for a in scene.actors], dtype=np.float64)
        st.half_grown = t(st.box_sizes / 2 + BOX_TOL_M)
    return st


def render_scene_steps(
    settings: RasterSettings,
    st: SceneTensors,
    viewmats: np.ndarray,  # [B, 4, 4] T_camera_world per step
    K: np.ndarray,  # [3, 3]
    width: int,
    height: int,
    actor_poses: np.ndarray,  # [B, A, 4, 4] T_world_actor per step and actor
    actor_present: np.ndarray,  # [B, A] bool; absent actors are not drawn
    background: np.ndarray | None = None,  # [3]
    packed: bool = True,
) -> StepsOutput:
    """Render B time steps of an uploaded scene, one camera each, in one gsplat pass
    (:func:`~p4dsim.render.gsplat.rasterizer.rasterize_steps`, ``packed`` or dense): the
    actors' Gaussians are posed on the GPU per step (means rotated and translated,
    quaternions rotated; absent actors get zero opacity), projected with the static ones into
    their step's camera and composited together, which draws exactly what rendering the
    composed set of each step draws. Packed, the actor channels are composited only on the
    tiles where an actor can be labelled."""
    import torch

    from p4dsim.geometry import rotmat_to_quat

    dev = st.means.device
    B = int(viewmats.shape[0])
    A = len(st.spans)
    N = int(st.means.shape[0])
    s0 = st.spans[0][0] if A else N  # rows of the static Gaussians: [0, s0)
    poses = np.asarray(actor_poses, dtype=np.float64).reshape(B, A, 4, 4)
    with torch.no_grad():
        vm = torch.as_tensor(np.asarray(viewmats, np.float32), device=dev).reshape(B, 4, 4)
        Ks = torch.as_tensor(np.asarray(K, np.float32), device=dev).expand(B, 3, 3).contiguous()
        static = None
        if s0 > 0:
            static = (st.means[:s0], st.quats[:s0], st.scales[:s0], st.opacities[:s0])
        actors, mask = None, None
        if A and N > s0:
            R = torch.as_tensor(poses[..., :3, :3], dtype=torch.float32, device=dev)
            tr = torch.as_tensor(poses[..., :3, 3], dtype=torch.float32, device=dev)
            q = rotmat_to_quat(poses[..., :3, :3].reshape(-1, 3, 3)).reshape(B, A, 4)
            q = torch.as_tensor(q, dtype=torch.float32, device=dev)
            present = torch.as_tensor(np.asarray(actor_present, np.float32), device=dev)
            means = torch.empty((B, N - s0, 3), device=dev)
            for a, (g0, g1) in enumerate(st.spans):  # one small matrix product per actor
                local = st.means[g0:g1]
                means[:, g0 - s0 : g1 - s0] = local @ R[:, a].transpose(1, 2) + tr[:, a, None]
            ia = st.actor_index  # actor of every actor Gaussian (rows s0: onwards)
            quats = quat_mul(q[:, ia], st.quats[None, s0:])
            opac = st.opacities[None, s0:] * present[:, ia]
            actors = (means, quats, st.scales[None, s0:].expand(B, N - s0, 3), opac)
            if packed:
                # packed: the actor channels only on tiles where an actor can be labelled
                # (inside the projection of its grown box), same weights; dense: every
                # channel in one pass (measured faster there than a second, masked pass)
                tiles = actor_tile_mask(
                    st.box_sizes,
                    poses,
                    actor_present,
                    viewmats,
                    K,
                    width,
                    height,
                    int(settings.tile_size),
                    min(NEAR_M, settings.near),
                )
                mask = torch.as_tensor(tiles, device=dev)
        n_main = int(st.feats.shape[1]) - A  # colour and the extra channels before the actors'
        f, depth, alpha, labels = rasterize_steps(
            settings,
            static,
            actors,
            st.feats,
            n_main,
            vm,
            Ks,
            width,
            height,
            mask,
            packed,
        )
        rgb = f[..., :3]
        if background is not None:
            bg = torch.as_tensor(np.asarray(background, np.float32), device=dev)
            rgb = rgb + (1.0 - alpha)[..., None] * bg
        if labels is None:
            labels = torch.zeros((B, height, width, 0), device=dev)
    return StepsOutput(rgb, depth, alpha, f[..., 3:], labels)


def grown_box_bounds(
    box_sizes: np.ndarray,  # [P, 3] (m)
    T_world_actor: np.ndarray,  # [P, 4, 4]
    viewmats: np.ndarray,  # [P, 4, 4] T_camera_world
    K: np.ndarray,
    near: float = NEAR_M,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel bounds [P, 4] (u_min, v_min, u_max, v_max) of actor boxes grown by the labels'
    tolerance (:data:`~p4dsim.labels.BOX_TOL_M`, yaw only, as the label rules use them) in
    their cameras, and which project to anything [P] (:func:`p4dsim.labels.projected_bounds`)."""
    local = BOX_CORNER_SIGNS[None] * (box_sizes + 2 * BOX_TOL_M)[:, None, :] / 2
    cw = np.einsum("pij,pnj->pni", rot_z(yaw_of(T_world_actor)), local)
    cw = cw + T_world_actor[:, None, :3, 3]
    corners = np.einsum("pij,pnj->pni", viewmats[:, :3, :3], cw) + viewmats[:, None, :3, 3]
    return projected_bounds(corners, K, near)


def actor_tile_mask(
    box_sizes: np.ndarray,  # [A, 3]
    poses: np.ndarray,  # [B, A, 4, 4] T_world_actor
    present: np.ndarray,  # [B, A]
    viewmats: np.ndarray,  # [B, 4, 4]
    K: np.ndarray,
    width: int,
    height: int,
    tile: int,
    near: float,
) -> np.ndarray:
    """bool [B, tiles high, tiles wide]: the tiles of each step's image that the projection
    of a present actor's grown box touches (one pixel of margin), the only tiles where a
    pixel can be labelled with an actor."""
    B = int(viewmats.shape[0])
    th, tw = -(-int(height) // tile), -(-int(width) // tile)
    mask = np.zeros((B, th, tw), dtype=bool)
    pb, pa = np.nonzero(np.asarray(present, bool))
    if len(pb) == 0:
        return mask
    bounds, ok = grown_box_bounds(
        np.asarray(box_sizes, np.float64)[pa], poses[pb, pa], viewmats[pb], K, near
    )
    x0 = np.clip(np.floor(bounds[:, 0]) - 1, 0, width) // tile
    y0 = np.clip(np.floor(bounds[:, 1]) - 1, 0, height) // tile
    x1 = -(-np.clip(np.ceil(bounds[:, 2]) + 1, 0, width) // tile)
    y1 = -(-np.clip(np.ceil(bounds[:, 3]) + 1, 0, height) // tile)
    for b, a0, b0, a1, b1 in zip(pb[ok], x0[ok], y0[ok], x1[ok], y1[ok], strict=True):
        mask[b, int(b0) : int(b1), int(a0) : int(a1)] = True
    return mask
