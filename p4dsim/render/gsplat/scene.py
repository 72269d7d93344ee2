"""A 4D scene on the GPU: uploaded once (static world, then every actor's Gaussians in its
own frame), actors posed on the device per time step, B time steps rasterized in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from p4dsim.labels import BOX_TOL_M
from p4dsim.render.base import RasterSettings
from p4dsim.render.gsplat.rasterizer import rasterize
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
    (expected camera z, metres), alpha [B, H, W], extra [B, H, W, E]."""

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    extra: torch.Tensor


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
) -> StepsOutput:
    """Render B time steps of an uploaded scene, one camera each; actors are moved on the
    GPU (means rotated and translated, quaternions rotated) and absent ones get zero
    opacity, which draws exactly what rendering the composed set without them draws."""
    import torch

    from p4dsim.geometry import rotmat_to_quat

    dev = st.means.device
    B = int(viewmats.shape[0])
    A = len(st.spans)
    N = int(st.means.shape[0])
    poses = np.asarray(actor_poses, dtype=np.float64).reshape(B, A, 4, 4)
    with torch.no_grad():
        means = st.means.unsqueeze(0).repeat(B, 1, 1)
        quats = st.quats.unsqueeze(0).repeat(B, 1, 1)
        opac = st.opacities.unsqueeze(0).repeat(B, 1)
        if A:
            R = torch.as_tensor(poses[..., :3, :3], dtype=torch.float32, device=dev)
            tr = torch.as_tensor(poses[..., :3, 3], dtype=torch.float32, device=dev)
            q = rotmat_to_quat(poses[..., :3, :3].reshape(-1, 3, 3)).reshape(B, A, 4)
            q = torch.as_tensor(q, dtype=torch.float32, device=dev)
            present = torch.as_tensor(np.asarray(actor_present, np.float32), device=dev)
            # every actor Gaussian at once, each with its actor's pose (rows s0: onwards)
            s0 = st.spans[0][0]
            ia = st.actor_index
            means[:, s0:] = torch.einsum("bnij,nj->bni", R[:, ia], st.means[s0:]) + tr[:, ia]
            quats[:, s0:] = quat_mul(q[:, ia], st.quats[None, s0:])
            opac[:, s0:] *= present[:, ia]
        D = st.feats.shape[1]
        bgs = torch.zeros((B, 1, D), device=dev)
        if background is not None:
            bgs[..., :3] = torch.as_tensor(np.asarray(background, np.float32), device=dev)
        vm = torch.as_tensor(np.asarray(viewmats, np.float32), device=dev).reshape(B, 1, 4, 4)
        Ks = torch.as_tensor(np.asarray(K, np.float32), device=dev).expand(B, 1, 3, 3)
        f, depth, alpha = rasterize(
            settings,
            means,
            quats,
            st.scales.expand(B, N, 3),
            opac,
            st.feats.expand(B, N, D),
            vm,
            Ks.contiguous(),
            width,
            height,
            bgs,
        )
    return StepsOutput(f[:, 0, ..., :3], depth[:, 0], alpha[:, 0], f[:, 0, ..., 3:])
