"""The CUDA backend: gsplat 1.5.3's kernels, batched over cameras and time steps.

Same pictures as :class:`~p4dsim.render.cpu.CpuRenderer` (render_mode "RGB+ED", packed=False,
rasterize_mode "classic", pinhole, the settings' ``eps2d``/near/far/tile size); extra
per-Gaussian channels are concatenated to the colours and composited with them (background
``[bg, 0, ...]``).

Two entry points, both of the :class:`~p4dsim.render.base.Renderer` interface:

* :meth:`GsplatRenderer.render` — numpy in, numpy out, one Gaussian set seen by C cameras;
* :meth:`GsplatRenderer.render_steps` — a 4D scene at B time steps in one call: the scene is
  uploaded once (:mod:`p4dsim.render.gsplat.scene`), actors are posed on the GPU, the depth /
  sky / alpha rule, the last fill and the observed mask of :mod:`p4dsim.render.frames`
  (:func:`finish_frames_torch`) and the label statistics (:mod:`p4dsim.render.gsplat.labels`)
  are applied on the device, and only what the rows need comes back to the host (the
  observed masks as packed bits).

gsplat compiles its CUDA kernels on first use (about a minute); that is logged once
(:func:`~p4dsim.render.gsplat.rasterizer.load_kernels`).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

import numpy as np

from p4dsim.errors import BackendUnavailableError
from p4dsim.geometry import inv_pose
from p4dsim.render.base import RasterSettings, Renderer, RenderOutput, check_inputs
from p4dsim.render.fill import observed_mask
from p4dsim.render.frames import (
    CH_CONFIDENCE,
    CH_SKY,
    MIN_ALPHA,
    SKY_SHARE,
    RenderedFrame,
    scene_extra,
)
from p4dsim.render.gsplat.fill_kernels import fill_empty_cuda
from p4dsim.render.gsplat.jpeg import encode_jpeg_gpu
from p4dsim.render.gsplat.labels import alone_pixels, visible_stats
from p4dsim.render.gsplat.rasterizer import load_kernels, rasterize, to_host
from p4dsim.render.gsplat.scene import SceneTensors, StepsOutput, render_scene_steps, upload_scene
from p4dsim.scene.gaussians import GaussianSet

if TYPE_CHECKING:
    import torch

    from p4dsim.scenario.model import OutputModel
    from p4dsim.scenario.timeline import Timeline
    from p4dsim.scene.scene4d import Scene4D


#: scenes kept uploaded per renderer (the most recent ones)
MAX_SCENES = 4
#: batches a renderer works on at once on the device (each holds a few GB at 1242×375)
GPU_BATCHES = 3


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
        packed: bool | None = None,
    ) -> None:
        super().__init__(settings)
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError("the gsplat backend needs a CUDA GPU; use --device cpu")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        #: encode JPEG on the GPU (torchvision/nvJPEG) in :meth:`render_steps`; off by default:
        #: on an H200 with 16 cores the thread pool's OpenCV encoder keeps up better
        self.gpu_jpeg = bool(gpu_jpeg)
        #: packed projection (rows only for Gaussians in view, the static scene shared by a
        #: batch's cameras: least GPU memory) or dense (one row per Gaussian and step, fewer
        #: host synchronisations); default from ``$P4DSIM_GSPLAT_PACKED`` (1/0), else dense
        if packed is None:
            packed = os.environ.get("P4DSIM_GSPLAT_PACKED", "0").strip() not in ("", "0")
        self.packed = bool(packed)
        self._local = threading.local()
        self._upload_lock = threading.Lock()
        # batches in flight on the device at once, whatever the number of calling threads
        # (shards rendered at once each run their own rendering threads): bounds GPU memory
        self._gpu_slots = threading.BoundedSemaphore(GPU_BATCHES)
        # the most recent uploads, newest last: (weak reference to its scene, tensors); a few,
        # so that shards rendered at once from several threads do not evict each other
        self._cached: list[tuple[weakref.ref, SceneTensors]] = []
        load_kernels()

    @property
    def device_name(self) -> str:
        import torch

        return f"{torch.cuda.get_device_name(self.device)} (gsplat)"

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

        viewmats, Ks, bg, extra = check_inputs(
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
            f, depth, alpha = rasterize(
                self.settings,
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
        """``scene`` on this renderer's device (:func:`~p4dsim.render.gsplat.scene.upload_scene`);
        the last :data:`MAX_SCENES` scenes uploaded stay cached (pass the same ``extra`` layout
        for a given scene object)."""
        hit = self._cache_hit(scene)
        if hit is not None:
            return hit
        # free dead scenes' tensors, and the oldest beyond the limit, before uploading
        live = [(r, st) for r, st in self._cached if r() is not None]
        self._cached = live[-(MAX_SCENES - 1) :] if MAX_SCENES > 1 else []
        st = upload_scene(scene, extra, self.device)
        self._cached.append((weakref.ref(scene), st))
        return st

    def _cache_hit(self, scene: Scene4D) -> SceneTensors | None:
        for ref, st in self._cached:
            if ref() is scene:
                return st
        return None

    def render_tensors(
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
        """B time steps of an uploaded scene, results left on the GPU
        (:func:`~p4dsim.render.gsplat.scene.render_scene_steps`)."""
        return render_scene_steps(
            self.settings,
            st,
            viewmats,
            K,
            width,
            height,
            actor_poses,
            actor_present,
            background,
            self.packed,
        )

    def render_steps(
        self,
        scene: Scene4D,
        timeline: Timeline,
        ks: list[int],
        output: OutputModel | None = None,
    ) -> list[RenderedFrame]:
        """The replay's frames for time steps ``ks``, computed on the GPU; only what the
        dataset rows need comes back to the host: RGB (or, when ``output`` asks for JPEG and
        ``gpu_jpeg`` is set, its JPEG bytes encoded on the GPU through torchvision), depth
        (float16 when ``output.depth`` is "float16"), the observed mask (packed bits on the
        way), the mean alpha, coverage, and per actor
        the visible pixel count, 2D box and pixels covered alone (the label rules of
        :mod:`p4dsim.labels`). Frames carry no alpha image and no actor masks. Safe to call
        from several threads."""
        import torch

        jpeg_quality = output.jpeg_quality if output is not None and output.rgb == "jpeg" else None
        depth_format = output.depth if output is not None else None
        with self._upload_lock:
            st = self._cache_hit(scene) or self.upload_scene(scene, scene_extra(scene))
        # one CUDA stream per calling thread, so that batches rendered from several threads
        # overlap their host copies with each other's kernels
        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.default_stream(self.device))
        with self._gpu_slots, torch.cuda.stream(stream):
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

        B, A = len(ks), len(scene.actors)
        poses, present = timeline.pose_array([a.track_id for a in scene.actors], ks)
        cam = timeline.camera
        T_world_cam = timeline.T_world_camera[ks]
        viewmats = inv_pose(T_world_cam)
        out = self.render_tensors(st, viewmats, cam.K, cam.width, cam.height, poses, present)
        with torch.no_grad():
            alpha = out.alpha
            ex = out.extra
            rgb, depth, observed, coverage = finish_frames_torch(
                out.rgb, out.depth, alpha, ex[..., CH_SKY], ex[..., CH_CONFIDENCE]
            )
            observed_bits = pack_bits_torch(observed)
            alpha_mean = alpha.mean(dim=(1, 2))
            if A:
                T_ac = inv_pose(poses) @ T_world_cam[:, None]  # T_actor_camera [B, A, 4, 4]
                pixels, boxes = visible_stats(out.actors, depth, cam.K, T_ac, st)
                alone = alone_pixels(self.settings, st, viewmats, cam, poses, present, T_ac)
            else:
                pixels = torch.zeros((B, 0), dtype=torch.int64, device=self.device)
                boxes = torch.zeros((B, 0, 4), dtype=torch.float64, device=self.device)
                alone = pixels
            if depth_format == "float16":
                depth = depth.half()
            jpegs = encode_jpeg_gpu(rgb, jpeg_quality) if jpeg_quality and self.gpu_jpeg else None
            if jpegs is not None:  # the JPEG bytes are all the rows need of the picture
                rgb = rgb[:, :0, :0]
            bgr = rgb.flip(-1)  # OpenCV's channel order: encoded without a conversion
            bgr_h, depth_h, obs_h, am_h, cov_h, pix_h, box_h, alone_h = to_host(
                bgr, depth, observed_bits, alpha_mean, coverage, pixels, boxes, alone
            )
        frames = []
        n_px = cam.height * cam.width
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
                observed=np.unpackbits(obs_h[i], count=n_px)
                .reshape(cam.height, cam.width)
                .view(bool),
            )
            if jpegs is not None:
                fr.encoded_rgb = ("jpeg", jpegs[i])
            frames.append(fr)
        return frames


def depth_rule_torch(
    depth: torch.Tensor,  # [..., H, W] expected camera z (m)
    alpha: torch.Tensor,  # [..., H, W]
    sky: torch.Tensor,  # [..., H, W] composited sky channel
) -> torch.Tensor:
    """:func:`p4dsim.render.frames.depth_rule` on tensors (on the device): ``inf`` where sky
    carries more than :data:`~p4dsim.render.frames.SKY_SHARE` of the alpha, ``0`` where the
    alpha is below :data:`~p4dsim.render.frames.MIN_ALPHA` (the share compared by
    multiplication rather than division: equal up to float rounding at the threshold)."""
    import torch

    is_sky = sky > SKY_SHARE * alpha.clamp(min=1e-6)
    depth = torch.where(is_sky, float("inf"), depth)
    return torch.where(alpha < MIN_ALPHA, 0.0, depth)


def finish_frames_torch(
    rgb: torch.Tensor,  # [B, H, W, 3] float in [0, 1], composited on black
    depth: torch.Tensor,  # [B, H, W] rendered expected camera z (m)
    alpha: torch.Tensor,  # [B, H, W]
    sky: torch.Tensor,  # [B, H, W] composited sky channel
    confidence: torch.Tensor,  # [B, H, W] composited confidence channel
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`p4dsim.render.frames.finish_frame` on the device, batched, without a host
    synchronisation: (rgb uint8 [B, H, W, 3], depth float32 [B, H, W] with no empty pixel,
    observed bool [B, H, W], coverage float32 [B] = the mean of ``observed``)."""
    import torch

    rgb, depth, alpha = rgb.float(), depth.float(), alpha.float()
    ruled = depth_rule_torch(depth, alpha, sky)
    filled_rgb, _ = fill_empty_cuda(rgb, depth, alpha, seed_alpha=MIN_ALPHA)
    # the depth of filled pixels from non-sky surfaces only (two calls: half the peak memory)
    no_sky = alpha.masked_fill(torch.isinf(ruled), 0.0)
    _, filled_depth = fill_empty_cuda(rgb, depth, no_sky, seed_alpha=MIN_ALPHA)
    out_depth = torch.where(ruled > 0, ruled, filled_depth)
    out_rgb = torch.round(filled_rgb * 255.0).clamp(0, 255).to(torch.uint8)
    observed = observed_mask(confidence, alpha) & (alpha >= MIN_ALPHA)
    coverage = observed.float().mean(dim=(-2, -1))
    return out_rgb, out_depth, observed, coverage


def pack_bits_torch(mask: torch.Tensor) -> torch.Tensor:
    """bool [B, H, W] -> uint8 [B, ceil(H*W / 8)]: row-major bits, the first pixel in the
    most significant bit, as :func:`numpy.packbits` packs them (``numpy.unpackbits(row,
    count=H*W)`` restores the mask); an eighth of the bytes to copy to the host."""
    import torch

    B = mask.shape[0]
    flat = mask.reshape(B, -1).to(torch.uint8)
    pad = (-flat.shape[1]) % 8
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    # shifts made on the device (a tensor built from a list would be a synchronising copy)
    shifts = torch.arange(7, -1, -1, device=mask.device).to(torch.uint8)
    return (flat.reshape(B, -1, 8) << shifts).sum(dim=-1, dtype=torch.uint8)
