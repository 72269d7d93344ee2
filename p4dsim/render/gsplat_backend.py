"""The CUDA backend: gsplat 1.5.3's kernels (the steps of its ``rasterization``, see
:meth:`GsplatRenderer.rasterize`), batched over cameras and time steps.

Same pictures as :class:`~p4dsim.render.cpu.CpuRenderer` (render_mode "RGB+ED", packed=False,
rasterize_mode "classic", pinhole, the settings' ``eps2d``/near/far/tile size); extra
per-Gaussian channels are concatenated to the colours and composited with them (background
``[bg, 0, ...]``).

Two entry points:

* :meth:`GsplatRenderer.render` — the :class:`~p4dsim.render.base.Renderer` interface
  (numpy in, numpy out), one Gaussian set seen by C cameras;
* :meth:`GsplatRenderer.render_steps` — a 4D scene at B time steps in one call: the static
  world and every actor's Gaussians (in actor frames) are uploaded once per scene
  (:class:`SceneTensors`), actors are moved on the GPU with their per-step poses, and the
  results stay on the GPU (torch tensors). :meth:`GsplatRenderer.render_frames` builds the
  replay's frames from it (see :func:`p4dsim.replay.render_frames`).

gsplat compiles its CUDA kernels on first use (about a minute); that is logged once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from p4dsim.errors import BackendUnavailableError
from p4dsim.labels import BOX_TOL_M
from p4dsim.render.base import RasterSettings, Renderer, RenderOutput
from p4dsim.scene.gaussians import GaussianSet

if TYPE_CHECKING:
    import torch

    from p4dsim.replay import RenderedFrame, Timeline
    from p4dsim.scene.scene4d import Scene4D

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


def _quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
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


class GsplatRenderer(Renderer):
    """gsplat on one CUDA device; ``batch_size`` time steps per :meth:`render_steps` call in
    the replay."""

    name = "gsplat"

    def __init__(
        self,
        settings: RasterSettings | None = None,
        device: str = "cuda",
        batch_size: int = 32,
        gpu_jpeg: bool = False,
    ) -> None:
        super().__init__(settings)
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError("the gsplat backend needs a CUDA GPU; use --device cpu")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        #: encode JPEG on the GPU (torchvision/nvJPEG) in :meth:`render_frames`; off by default:
        #: on an H200 with 16 cores the thread pool's OpenCV encoder keeps up better
        self.gpu_jpeg = bool(gpu_jpeg)
        self._local = threading.local()
        self._upload_lock = threading.Lock()
        # the most recent upload: (weak reference to its scene, tensors)
        self._cached: tuple[weakref.ref, SceneTensors] | None = None
        load_kernels()

    @property
    def device_name(self) -> str:
        import torch

        return f"{torch.cuda.get_device_name(self.device)} (gsplat)"

    # -- the core call -------------------------------------------------------------------
    def rasterize(
        self,
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
        """gsplat with p4dsim's settings; returns (feats [..., C, H, W, D], depth [..., C, H, W],
        alpha [..., C, H, W]).

        The steps of gsplat's ``rasterization`` (render_mode "RGB+ED", non-packed, classic,
        pinhole) called one by one, for two reasons: the host waits for the projection with
        the interpreter lock released (gsplat's tile intersection synchronises inside its C++
        call, holding the lock, which stalls every other thread of a replay), and colour,
        extra channels and depth are written into one buffer already padded to a channel
        count the kernel supports (``rasterization`` concatenates, then pads: two copies of
        [..., C, N, channels])."""
        import torch
        from gsplat.cuda._wrapper import (
            fully_fused_projection,
            isect_offset_encode,
            isect_tiles,
            rasterize_to_pixels,
        )

        s = self.settings
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
        _wait_for_stream()
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

    # -- Renderer interface ----------------------------------------------------------------
    def render(
        self,
        gaussians: GaussianSet,
        viewmats: np.ndarray,
        Ks: np.ndarray,
        width: int,
        height: int,
        background: np.ndarray | None = None,
        extra: np.ndarray | None = None,
    ) -> RenderOutput:
        """Render C cameras; arguments and outputs as :class:`~p4dsim.render.base.Renderer`."""
        import torch

        from p4dsim.render.cpu import _check_inputs

        viewmats, Ks, bg, extra = _check_inputs(
            gaussians, viewmats, Ks, width, height, background, extra
        )
        n_extra = 0 if extra is None else extra.shape[1]
        C = viewmats.shape[0]
        dev = self.device

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=dev)

        feats = gaussians.colors if extra is None else np.concatenate([gaussians.colors, extra], 1)
        bgs = np.zeros((C, 3 + n_extra), dtype=np.float32)
        bgs[:, :3] = bg
        with torch.no_grad():
            f, depth, alpha = self.rasterize(
                t(gaussians.means),
                t(gaussians.quats),
                t(gaussians.scales),
                t(gaussians.opacities),
                t(feats),
                t(viewmats),
                t(Ks),
                width,
                height,
                t(bgs),
            )
        f = f.cpu().numpy()
        return RenderOutput(
            rgb=np.ascontiguousarray(f[..., :3]),
            depth=depth.cpu().numpy(),
            alpha=alpha.cpu().numpy(),
            extra=np.ascontiguousarray(f[..., 3:]) if extra is not None else None,
        )

    # -- 4D scenes -------------------------------------------------------------------------
    def upload_scene(self, scene: Scene4D, extra: np.ndarray | None = None) -> SceneTensors:
        """Upload ``scene`` once: static Gaussians then each actor's (in its own frame).

        extra: [N, E] per-Gaussian channels in that row order (see
        :func:`p4dsim.replay.scene_extra`), or None. The last scene uploaded stays cached (pass
        the same ``extra`` layout for a given scene object)."""
        import torch

        if self._cached is not None and self._cached[0]() is scene:
            return self._cached[1]
        self._cached = None  # free the previous scene's tensors first
        parts = [scene.static] + [a.gaussians for a in scene.actors]
        g = GaussianSet.concat(parts)
        spans, start = [], len(scene.static)
        for a in scene.actors:
            spans.append((start, start + len(a.gaussians)))
            start += len(a.gaussians)
        feats = g.colors if extra is None else np.concatenate([g.colors, extra], axis=1)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=self.device)

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
                device=self.device,
            )
            st.box_sizes = np.array([a.size for a in scene.actors], dtype=np.float64)
            st.half_grown = t(st.box_sizes / 2 + BOX_TOL_M)
        self._cached = (weakref.ref(scene), st)
        return st

    def render_steps(
        self,
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

        dev = self.device
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
                quats[:, s0:] = _quat_mul(q[:, ia], st.quats[None, s0:])
                opac[:, s0:] *= present[:, ia]
            D = st.feats.shape[1]
            bgs = torch.zeros((B, 1, D), device=dev)
            if background is not None:
                bgs[..., :3] = torch.as_tensor(np.asarray(background, np.float32), device=dev)
            vm = torch.as_tensor(np.asarray(viewmats, np.float32), device=dev).reshape(B, 1, 4, 4)
            Ks = torch.as_tensor(np.asarray(K, np.float32), device=dev).expand(B, 1, 3, 3)
            f, depth, alpha = self.rasterize(
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

    def render_frames(
        self,
        scene: Scene4D,
        timeline: Timeline,
        ks: list[int],
        jpeg_quality: int | None = None,
        depth_format: str | None = None,
    ) -> list[RenderedFrame]:
        """The replay's frames for time steps ``ks``, computed on the GPU; only what the
        dataset rows need comes back to the host: RGB (or, with ``jpeg_quality`` and
        ``gpu_jpeg`` set, its JPEG bytes encoded on the GPU through torchvision), depth
        (float16 when ``depth_format`` is "float16"), the mean alpha, coverage, and per actor
        the visible pixel count, 2D box and pixels covered alone (the label rules of
        :mod:`p4dsim.labels`). Frames carry no alpha image and no actor masks. Safe to call
        from several threads."""
        import torch

        from p4dsim.replay import scene_extra

        with self._upload_lock:
            hit = self._cached is not None and self._cached[0]() is scene
            st = self._cached[1] if hit else self.upload_scene(scene, scene_extra(scene))
        # one CUDA stream per calling thread, so that batches rendered from several threads
        # overlap their host copies with each other's kernels
        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.default_stream(self.device))
        with torch.cuda.stream(stream):
            return self._render_frames(scene, timeline, list(ks), st, jpeg_quality, depth_format)

    def _render_frames(
        self,
        scene: Scene4D,
        timeline: Timeline,
        ks: list[int],
        st: SceneTensors,
        jpeg_quality: int | None,
        depth_format: str | None,
    ) -> list[RenderedFrame]:
        import torch

        from p4dsim.geometry import inv_pose
        from p4dsim.replay import CH_ACTORS, CH_CONFIDENCE, CH_SKY, RenderedFrame

        B, A = len(ks), len(scene.actors)
        poses = np.tile(np.eye(4), (B, A, 1, 1))
        present = np.zeros((B, A), dtype=bool)
        for a, actor in enumerate(scene.actors):
            P = timeline.actor_poses.get(actor.track_id)
            if P is not None:
                poses[:, a] = P[ks]
                present[:, a] = True
        cam = timeline.camera
        T_world_cam = timeline.T_world_camera[ks]
        viewmats = inv_pose(T_world_cam)
        out = self.render_steps(st, viewmats, cam.K, cam.width, cam.height, poses, present)
        with torch.no_grad():
            alpha = out.alpha
            ex = out.extra
            depth = out.depth
            sky = ex[..., CH_SKY] > 0.5 * alpha.clamp(min=1e-6)
            depth = torch.where(sky, float("inf"), depth)
            depth = torch.where(alpha < 0.5, 0.0, depth)
            rgb = torch.round(out.rgb * 255.0).clamp(0, 255).to(torch.uint8)
            coverage = ex[..., CH_CONFIDENCE].mean(dim=(1, 2))
            alpha_mean = alpha.mean(dim=(1, 2))
            if A:
                T_ac = inv_pose(poses) @ T_world_cam[:, None]  # T_actor_camera [B, A, 4, 4]
                pixels, boxes = self._visible_stats(ex[..., CH_ACTORS:], depth, cam.K, T_ac, st)
                alone = self._alone_pixels(st, viewmats, cam, poses, present, T_ac)
            else:
                pixels = torch.zeros((B, 0), dtype=torch.int64, device=self.device)
                boxes = torch.zeros((B, 0, 4), dtype=torch.float64, device=self.device)
                alone = pixels
            if depth_format == "float16":
                depth = depth.half()
            jpegs = _encode_jpeg_gpu(rgb, jpeg_quality) if jpeg_quality and self.gpu_jpeg else None
            if jpegs is not None:  # the JPEG bytes are all the rows need of the picture
                rgb = rgb[:, :0, :0]
            bgr = rgb.flip(-1)  # OpenCV's channel order: encoded without a conversion
            bgr_h, depth_h, am_h, cov_h, pix_h, box_h, alone_h = _to_host(
                bgr, depth, alpha_mean, coverage, pixels, boxes, alone
            )
        frames = []
        for i, k in enumerate(ks):
            fr = RenderedFrame(
                k,
                float(timeline.times[k]),
                bgr_h[i][..., ::-1],  # an RGB view
                depth_h[i],
                None,
                float(cov_h[i]),
                None,
                alone=alone_h[i],
                actor_pixels=pix_h[i],
                actor_boxes=box_h[i],
                alpha_mean=float(am_h[i]),
            )
            if jpegs is not None:
                fr.encoded_rgb = ("jpeg", jpegs[i])
            frames.append(fr)
        return frames

    def _visible_stats(
        self,
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
        T = self._pose_tensor(T_ac).reshape(B * A, 4, 4)
        half = st.half_grown.repeat(B, 1)  # [B * A, 3]
        cols = torch.arange(W, device=dev).view(1, 1, W)
        rows = torch.arange(H, device=dev).view(1, H, 1)
        inside = _inside_pixels(depth, cols, rows, K, T, half, key)
        vid = torch.where((val > 0.5) & inside, aid, -1)  # visible actor per pixel, -1 none
        return _label_stats(vid, A)

    def _pose_tensor(self, T: np.ndarray) -> torch.Tensor:
        import torch

        return torch.as_tensor(np.asarray(T, np.float32), device=self.device)

    def _alone_pixels(
        self,
        st: SceneTensors,
        viewmats: np.ndarray,  # [B, 4, 4]
        cam,
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

        from p4dsim.geometry import BOX_CORNER_SIGNS, rot_z, rotmat_to_quat, yaw_of
        from p4dsim.labels import projected_bounds

        dev = self.device
        B, A = present.shape
        W, H = cam.width, cam.height
        out = torch.zeros((B, A), dtype=torch.int64, device=dev)
        pb, pa = np.nonzero(present)
        if len(pb) == 0:
            return out
        # the boxes grown as for the inside test, in the camera: [pairs, 8, 3]
        local = BOX_CORNER_SIGNS[None] * (st.box_sizes[pa] + 2 * BOX_TOL_M)[:, None, :] / 2
        Tw = poses[pb, pa]
        cw = np.einsum("pij,pnj->pni", rot_z(yaw_of(Tw)), local) + Tw[:, None, :3, 3]
        V = viewmats[pb]
        corners = np.einsum("pij,pnj->pni", V[:, :3, :3], cw) + V[:, None, :3, 3]
        bounds, ok = projected_bounds(corners, cam.K)
        # a pixel counts when its centre's ray meets the box: one pixel of margin
        x0 = np.clip(np.floor(bounds[:, 0]) - 1, 0, W).astype(np.int64)
        y0 = np.clip(np.floor(bounds[:, 1]) - 1, 0, H).astype(np.int64)
        x1 = np.clip(np.ceil(bounds[:, 2]) + 1, 0, W).astype(np.int64)
        y1 = np.clip(np.ceil(bounds[:, 3]) + 1, 0, H).astype(np.int64)
        keep = ok & (x1 > x0) & (y1 > y0)
        if not keep.any():
            return out
        pb, pa, x0, y0, x1, y1 = pb[keep], pa[keep], x0[keep], y0[keep], x1[keep], y1[keep]
        t = int(self.settings.tile_size)
        ww = min(W, -(-int((x1 - x0).max()) // t) * t)
        wh = min(H, -(-int((y1 - y0).max()) // t) * t)
        x0, y0 = np.minimum(x0, W - ww), np.minimum(y0, H - wh)
        M = int(st.actor_means.shape[1])
        # pairs in chunks of at most ~64M window pixels
        chunk = max(1, (64 << 20) // (ww * wh))
        T_ac_t = self._pose_tensor(T_ac)
        for s0 in range(0, len(pb), chunk):
            sl = slice(s0, s0 + chunk)
            cb, ca = pb[sl], pa[sl]
            P = len(cb)
            Pw = poses[cb, ca]
            R = self._pose_tensor(Pw[:, :3, :3])
            tr = self._pose_tensor(Pw[:, :3, 3])
            q = self._pose_tensor(rotmat_to_quat(Pw[:, :3, :3]))
            ia = torch.as_tensor(ca, device=dev)
            means = torch.einsum("pij,pnj->pni", R, st.actor_means[ia]) + tr[:, None]
            quats = _quat_mul(q[:, None, :], st.actor_quats[ia])
            xo = torch.as_tensor(x0[sl], device=dev)
            yo = torch.as_tensor(y0[sl], device=dev)
            Ks = np.tile(np.asarray(cam.K, np.float64), (P, 1, 1))
            Ks[:, 0, 2] -= x0[sl]
            Ks[:, 1, 2] -= y0[sl]
            _, d, al = self.rasterize(
                means,
                quats,
                st.actor_scales[ia],
                st.actor_opacities[ia],
                torch.zeros((P, M, 1), device=dev),
                self._pose_tensor(viewmats[cb])[:, None],
                self._pose_tensor(Ks)[:, None],
                ww,
                wh,
                None,
            )
            key = torch.as_tensor(cb * A + ca, device=dev)
            inside = _inside_pixels(
                d[:, 0],
                torch.arange(ww, device=dev).view(1, 1, ww) + xo.view(P, 1, 1),
                torch.arange(wh, device=dev).view(1, wh, 1) + yo.view(P, 1, 1),
                cam.K,
                T_ac_t.reshape(B * A, 4, 4)[key],
                st.half_grown[ia],
                torch.arange(P, device=dev).view(P, 1, 1),
            )
            n = ((al[:, 0] > 0.5) & inside).sum(dim=(1, 2))
            out.view(-1).index_add_(0, key, n)
        return out


def _inside_pixels(
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


def _label_stats(vid: torch.Tensor, A: int) -> tuple[torch.Tensor, torch.Tensor]:
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


def _wait_for_stream() -> None:
    """Block until the current CUDA stream's work is done, sleeping with the interpreter lock
    released (a blocking event: no spinning core)."""
    import torch

    done = torch.cuda.Event(blocking=True)
    done.record()
    done.synchronize()


def _to_host(*tensors: torch.Tensor) -> list[np.ndarray]:
    """Copy CUDA tensors to fresh pinned host memory (torch's caching host allocator reuses
    blocks once the arrays are gone) with one synchronisation; numpy views of them."""
    import torch

    host = []
    for t in tensors:
        h = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        h.copy_(t, non_blocking=True)
        host.append(h)
    _wait_for_stream()
    return [h.numpy() for h in host]


def _encode_jpeg_gpu(rgb: torch.Tensor, quality: int) -> list[bytes] | None:
    """JPEG bytes of uint8 [B, H, W, 3] CUDA images through torchvision (nvJPEG), or None when
    torchvision cannot encode on the GPU here."""
    import torch

    try:
        from torchvision.io import encode_jpeg
    except Exception:
        return None
    try:
        chw = [im.permute(2, 0, 1).contiguous() for im in rgb]
        encoded = encode_jpeg(chw, quality=int(quality))
    except Exception as exc:  # no nvJPEG in this build
        log.info("GPU JPEG encoding unavailable (%s); encoding on the CPU", exc)
        return None
    # one copy to the host for the whole batch
    flat = torch.cat([e.reshape(-1) for e in encoded]).cpu().numpy()
    ends = np.cumsum([0] + [int(e.numel()) for e in encoded])
    return [flat[a:b].tobytes() for a, b in zip(ends[:-1], ends[1:], strict=True)]
