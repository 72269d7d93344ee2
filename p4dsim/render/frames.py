"""Rendering along a timeline: the frame a renderer hands to the rows, and its rules.

* **Channel layout**: every Gaussian carries extra channels composited like colour
  (:func:`scene_extra`): ``CH_CONFIDENCE`` (observed content, 1, or synthesised, less),
  ``CH_SKY`` (1 for sky Gaussians) and from ``CH_ACTORS`` on one one-hot channel per actor.
* **The depth / sky / alpha rule** (:func:`depth_rule`), one for every backend: a pixel is
  sky (depth ``inf``) where sky Gaussians carry more than :data:`SKY_SHARE` of its alpha, and
  has no rendered surface where its alpha is below :data:`MIN_ALPHA`; elsewhere its depth is
  the rendered expected camera z. The GPU backend applies the same rule to its tensors
  (:mod:`p4dsim.render.gsplat.renderer`), tested against this one.
* **No empty pixel** (:func:`finish_frame`): the last fill of :mod:`p4dsim.render.fill` is
  composited behind every rendered frame, so every pixel has a colour and a depth ``> 0``.
  How sky, empty and filled pixels interact:

  - a pixel with alpha ≥ :data:`MIN_ALPHA` keeps its rendered depth (``inf`` when the rule
    above says sky) and its rendered colour; with alpha < 1 the fill's colour is added behind
    it with the missing weight ``1 - alpha``;
  - a pixel with alpha < :data:`MIN_ALPHA` is *filled*: colour and depth come from the far
    side of its surroundings (the fill never blends across a depth edge). Its colour may be
    the sky's (a hole against the sky shows sky), but its depth never is: the depth comes
    from a second fill in which sky pixels are no source, so it is finite and that of the
    farthest non-sky surface around it (the sky dome's distance is no depth estimate of
    what a hole hides; the fill's default depth when the frame shows nothing but sky).
    ``inf`` thus marks exactly the pixels the rendered sky covers; ``0`` no longer occurs;
  - a frame in which nothing at all was rendered is black at the fill's default depth.
* **The observed mask** (:func:`finish_frame`): a pixel is observed when at least half of its
  final colour comes from observed Gaussians (confidence channel ≥ 0.5,
  :func:`p4dsim.render.fill.observed_mask`) and it is not filled (alpha ≥ :data:`MIN_ALPHA`);
  sky rendered from the source image counts as observed. A frame's ``coverage`` is exactly
  the mean of its mask.
* **Labels** of a rendered frame follow :mod:`p4dsim.labels`: the CPU path hands the actor
  masks on (rows derive the statistics), the GPU path computes the same statistics on the
  device (:mod:`p4dsim.render.gsplat.labels`).

:func:`render_each` is the per-step implementation of
:meth:`~p4dsim.render.base.Renderer.render_steps` every backend inherits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from p4dsim.geometry import inv_pose
from p4dsim.labels import alone_pixels
from p4dsim.render.fill import fill_empty, observed_mask

if TYPE_CHECKING:
    from p4dsim.render.base import Renderer, RenderOutput
    from p4dsim.scenario.timeline import Timeline
    from p4dsim.scene.scene4d import Scene4D

#: extra render channels before the per-actor masks
CH_CONFIDENCE, CH_SKY, CH_ACTORS = 0, 1, 2

#: a pixel is sky when sky Gaussians carry more than this share of its alpha
SKY_SHARE = 0.5
#: a pixel with less alpha than this has no depth (0)
MIN_ALPHA = 0.5


def depth_rule(depth: np.ndarray, alpha: np.ndarray, sky: np.ndarray) -> np.ndarray:
    """The output depth [H, W] (a copy) of rendered expected depth ``depth`` [H, W], alpha
    [H, W] and composited sky channel ``sky`` [H, W]: ``inf`` for sky, ``0`` for no surface."""
    depth = depth.copy()
    sky_share = sky / np.maximum(alpha, 1e-6)
    depth[sky_share > SKY_SHARE] = np.inf
    depth[alpha < MIN_ALPHA] = 0.0
    return depth


@dataclass
class FinishedImages:
    """A rendered frame's images after the last fill: rgb uint8 [H, W, 3], depth float32
    [H, W] (metres, ``inf`` sky, no 0), observed bool [H, W] and coverage (its mean)."""

    rgb: np.ndarray
    depth: np.ndarray
    observed: np.ndarray
    coverage: float


def finish_frame(
    rgb: np.ndarray,  # [H, W, 3] float in [0, 1], composited on black
    depth: np.ndarray,  # [H, W] rendered expected camera z (m)
    alpha: np.ndarray,  # [H, W] accumulated opacity
    sky: np.ndarray,  # [H, W] composited sky channel
    confidence: np.ndarray,  # [H, W] composited confidence channel
) -> FinishedImages:
    """The output images of one render: :func:`depth_rule`, then the last fill
    (:func:`p4dsim.render.fill.fill_empty`) behind it, and the observed mask (see the module
    docstring for how sky, empty and filled pixels interact)."""
    alpha = np.asarray(alpha, dtype=np.float32)
    rgb = np.asarray(rgb, dtype=np.float32)
    depth = np.asarray(depth, dtype=np.float32)
    ruled = depth_rule(depth, alpha, sky)
    filled_rgb, filled_depth = fill_empty(rgb, depth, alpha, seed_alpha=MIN_ALPHA)
    # the depth of filled pixels from non-sky surfaces only
    is_sky = np.isinf(ruled)
    if is_sky.any():
        no_sky = np.where(is_sky, np.float32(0.0), alpha)
        _, filled_depth = fill_empty(rgb, depth, no_sky, seed_alpha=MIN_ALPHA)
    out_depth = np.where(ruled > 0, ruled, filled_depth).astype(np.float32)
    out_rgb = np.clip(np.round(filled_rgb * 255.0), 0, 255).astype(np.uint8)
    observed = observed_mask(confidence, alpha) & (alpha >= MIN_ALPHA)
    return FinishedImages(out_rgb, out_depth, observed, float(observed.mean()))


@dataclass
class RenderedFrame:
    """One rendered frame: rgb uint8 [H, W, 3] and depth float32 [H, W] (inf sky, > 0
    everywhere: no empty pixel; float16 from the GPU when the output asks for it) after the
    last fill (:func:`finish_frame`), alpha float32 [H, W] as rendered (before the fill),
    coverage (the mean of ``observed``), actor_masks float32 [H, W, A], observed bool [H, W]
    (pixels rendered from observed content). The GPU path returns no alpha image and no
    masks (None): it computes their statistics (``alpha_mean``, ``actor_pixels``,
    ``actor_boxes``, ``alone``) on the device instead."""

    index: int
    t: float
    rgb: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray | None
    coverage: float
    actor_masks: np.ndarray | None
    #: [A] pixels each actor covers when rendered alone (for visible_fraction), or None
    alone: np.ndarray | None = None
    #: (format, bytes) when the renderer already encoded the RGB (GPU JPEG), else None
    encoded_rgb: tuple[str, bytes] | None = None
    #: per actor, when the renderer computed them: pixels with mask > 0.5 [A] int64 and their
    #: bounding box [A, 4] (x0, y0, x1, y1), exactly what :func:`actor_rows` derives from masks
    actor_pixels: np.ndarray | None = None
    actor_boxes: np.ndarray | None = None
    #: mean of alpha over the image (when ``alpha`` is None)
    alpha_mean: float | None = None
    #: rendered confidence float32 [H, W] (alpha-weighted: 1 observed, 0 synthesised or
    #: empty), whose mean is ``coverage``; None where the renderer keeps it on the device
    confidence: np.ndarray | None = None
    #: bool [H, W]: pixels rendered from observed content (:func:`finish_frame`); None for
    #: frames not made by a renderer
    observed: np.ndarray | None = None


def render_frame(scene: Scene4D, timeline: Timeline, k: int, renderer: Renderer) -> RenderedFrame:
    """Render time step ``k`` of a timeline."""
    poses = {tid: P[k] for tid, P in timeline.actor_poses.items()}
    g, _ = scene.compose(poses)
    # scene_extra lists static then every actor; compose leaves out actors without a pose.
    present = np.concatenate(
        [np.ones(len(scene.static), bool)]
        + [np.full(len(a.gaussians), a.track_id in poses) for a in scene.actors]
    )
    extra = scene_extra(scene)[present]
    cam = timeline.camera
    viewmat = inv_pose(timeline.T_world_camera[k])
    out: RenderOutput = renderer.render(
        g, viewmat[None], cam.K[None], cam.width, cam.height, extra=extra
    )
    alpha = out.alpha[0]
    ex = out.extra[0]
    im = finish_frame(out.rgb[0], out.depth[0], alpha, ex[..., CH_SKY], ex[..., CH_CONFIDENCE])
    return RenderedFrame(
        k,
        float(timeline.times[k]),
        im.rgb,
        im.depth,
        alpha,
        im.coverage,
        ex[..., CH_ACTORS:],
        observed=im.observed,
        confidence=ex[..., CH_CONFIDENCE],
    )


def scene_extra(scene: Scene4D) -> np.ndarray:
    """Extra render channels [N, CH_ACTORS + A] float32 of every Gaussian of ``scene`` in the
    order static, then each actor's (confidence, sky, one-hot actor), as :func:`render_frame`
    builds them for the composed set."""
    A = len(scene.actors)
    parts = [np.zeros((len(scene.static), CH_ACTORS + A), dtype=np.float32)]
    parts[0][:, CH_CONFIDENCE] = scene.static.confidence
    parts[0][:, CH_SKY] = scene.sky_mask()
    for i, a in enumerate(scene.actors):
        e = np.zeros((len(a.gaussians), CH_ACTORS + A), dtype=np.float32)
        e[:, CH_CONFIDENCE] = a.gaussians.confidence
        e[:, CH_ACTORS + i] = 1.0
        parts.append(e)
    return np.concatenate(parts)


def render_each(
    renderer: Renderer, scene: Scene4D, timeline: Timeline, ks: list[int]
) -> list[RenderedFrame]:
    """Frames of time steps ``ks``, one :func:`render_frame` each, with the pixels each actor
    covers when rendered alone (:func:`p4dsim.labels.alone_pixels`)."""
    frames = []
    for k in ks:
        fr = render_frame(scene, timeline, k, renderer)
        poses = {tid: P[k] for tid, P in timeline.actor_poses.items()}
        fr.alone = alone_pixels(scene, poses, timeline.T_world_camera[k], timeline.camera, renderer)
        frames.append(fr)
    return frames
