"""The GPU backend's frame assembly, run on the CPU: everything of
:meth:`~p4dsim.render.gsplat.GsplatRenderer.render_steps` except gsplat's kernels (the scene
upload, actors posed with torch, the depth/sky/alpha rule, the label statistics, the windows
of the alone renders, the copies to the host), with gsplat's rasterization replaced by
p4dsim's CPU rasterizer. Its frames (after the last fill), observed masks and labels must
match the CPU path's frame-by-frame replay (:func:`p4dsim.render.frames.render_each`)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

W, H = 96, 30


def _cpu_rasterize(settings, means, quats, scales, opacities, feats, viewmats, Ks, w, h, bgs):
    """``p4dsim.render.gsplat.rasterizer.rasterize`` (same shapes) through the CPU renderer."""
    from p4dsim.render.cpu import CpuRenderer
    from p4dsim.scene.gaussians import GaussianSet

    cpu = CpuRenderer(settings)
    batch, N, D = tuple(means.shape[:-2]), int(means.shape[-2]), int(feats.shape[-1])
    C = int(viewmats.shape[-3])

    def flat(t, *tail):
        return np.ascontiguousarray(t.detach().cpu().numpy()).reshape((-1,) + tail)

    mu, q, s = flat(means, N, 3), flat(quats, N, 4), flat(scales, N, 3)
    op, f = flat(opacities, N), flat(feats, N, D)
    vm, K = flat(viewmats, C, 4, 4), flat(Ks, C, 3, 3)
    bg = None if bgs is None else flat(bgs, C, D)
    outs, depths, alphas = [], [], []
    for b in range(len(mu)):
        colors = np.zeros((N, 3), np.float32)
        colors[:, : min(D, 3)] = f[b, :, : min(D, 3)]
        g = GaussianSet(mu[b], q[b], s[b], op[b], colors, np.ones(N, np.float32))
        out = cpu.render(
            g,
            vm[b],
            K[b],
            w,
            h,
            None if bg is None else bg[b, 0, :3],
            f[b, :, 3:] if D > 3 else None,
        )
        feat = np.concatenate([out.rgb] + ([out.extra] if D > 3 else []), axis=-1)[..., :D]
        outs.append(feat)
        depths.append(out.depth)
        alphas.append(out.alpha)

    def back(a, *tail):
        return torch.as_tensor(np.stack(a)).reshape(batch + (C, h, w) + tail)

    return back(outs, D), back(depths), back(alphas)


def _cpu_rasterize_steps(
    settings, static, actors, feats, n_main, viewmats, Ks, w, h, mask, *_, **__
):
    """``p4dsim.render.gsplat.rasterizer.rasterize_steps`` through the CPU renderer: each
    step's Gaussians composed (static, then that step's actors) and drawn whole; the
    channels after ``n_main`` kept only on the tiles of ``mask``."""
    B = int(viewmats.shape[0])
    parts = []
    if static is not None:
        parts.append([x.expand(B, *x.shape) for x in static])
    if actors is not None:
        parts.append(list(actors))
    g = [torch.cat(x, dim=1) for x in zip(*parts, strict=True)]
    fb = feats.expand(B, *feats.shape)
    f, d, a = _cpu_rasterize(settings, *g, fb, viewmats[:, None], Ks[:, None], w, h, None)
    f, d, a = f[:, 0], d[:, 0], a[:, 0]
    rest = None
    if feats.shape[-1] > n_main:
        rest = f[..., n_main:]
        if mask is not None:
            t = int(settings.tile_size)
            px = mask.repeat_interleave(t, 1).repeat_interleave(t, 2)[:, :h, :w]
            rest = rest * px[..., None]
    return f[..., :n_main], d, a, rest


def _cpu_rasterize_windows(settings, means, quats, scales, opacities, viewmats, Ks, w, h):
    """``p4dsim.render.gsplat.rasterizer.rasterize_windows`` through the CPU renderer."""
    P, M = means.shape[:2]
    feats = torch.zeros((P, M, 1))
    _, d, a = _cpu_rasterize(
        settings, means, quats, scales, opacities, feats, viewmats[:, None], Ks[:, None], w, h, None
    )
    return d[:, 0], a[:, 0]


@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_gpu_frame_assembly_matches_the_cpu_path(monkeypatch, packed):
    import p4dsim.render.gsplat.labels as glabels
    import p4dsim.render.gsplat.renderer as grenderer
    import p4dsim.render.gsplat.scene as gscene
    from p4dsim.io.rows import actor_rows
    from p4dsim.render import get_renderer
    from p4dsim.render.base import RasterSettings
    from p4dsim.render.frames import MIN_ALPHA, render_each
    from p4dsim.scenario.model import Scenario
    from p4dsim.scenario.timeline import make_timeline
    from p4dsim.scene.builder import build_scene
    from p4dsim.source import SourceSpec

    monkeypatch.setattr(gscene, "rasterize_steps", _cpu_rasterize_steps)
    monkeypatch.setattr(glabels, "rasterize_windows", _cpu_rasterize_windows)
    monkeypatch.setattr(
        grenderer, "to_host", lambda *ts: [t.detach().cpu().numpy().copy() for t in ts]
    )
    gpu = object.__new__(grenderer.GsplatRenderer)  # no CUDA here: set what __init__ sets
    gpu.settings, gpu.device, gpu.batch_size, gpu.gpu_jpeg = RasterSettings(), "cpu", 4, False
    gpu.packed = packed
    gpu._local, gpu._upload_lock, gpu._cached = threading.local(), threading.Lock(), []

    log = SourceSpec.parse(f"toytown:?width={W}&height={H}").open()
    scene = build_scene(log.frame(0))
    sc = Scenario.model_validate(
        {
            "source": {"adapter": "toytown"},
            "duration_s": 0.5,
            "fps": 6,
            "ego": {"base": "log", "perturbations": [{"type": "lateral_offset", "offset_m": 1.0}]},
        }
    )
    tl = make_timeline(sc, scene, log, "test")
    removed = scene.actors[0].track_id
    del tl.actor_poses[removed]
    ks = list(range(len(tl.times)))
    st = gpu.upload_scene(scene, grenderer.scene_extra(scene))
    got = gpu._render_frames(scene, tl, ks, st, None, None)
    ref = render_each(get_renderer("cpu"), scene, tl, ks)
    checked = filled = 0
    for a, b in zip(ref, got, strict=True):
        assert b.alpha is None and b.actor_masks is None  # statistics only
        np.testing.assert_allclose(b.rgb.astype(float), a.rgb.astype(float), atol=2)
        # no empty pixel on either path; the same fill (colour above, depth here) on both
        assert (a.depth > 0).all() and (b.depth > 0).all() and not np.isnan(b.depth).any()
        fin = np.isfinite(a.depth) & np.isfinite(b.depth)
        assert np.mean(np.isinf(a.depth) == np.isinf(b.depth)) > 0.999
        np.testing.assert_allclose(b.depth[fin], a.depth[fin], rtol=1e-3, atol=1e-3)
        hole = a.alpha < MIN_ALPHA
        filled += int(hole.sum())
        assert np.isfinite(b.depth[hole]).all()
        # the observed mask, computed on the device and copied back as packed bits
        assert b.observed.dtype == bool and b.observed.shape == a.observed.shape
        assert np.mean(b.observed == a.observed) > 0.999
        assert not b.observed[hole].any()
        assert b.coverage == pytest.approx(float(b.observed.mean()), abs=1e-6)
        assert b.coverage == pytest.approx(a.coverage, abs=1e-3)
        assert b.alpha_mean == pytest.approx(float(a.alpha.mean()), abs=1e-4)
        r_ref = {r["track_id"]: r for r in actor_rows(scene, tl, a, {}, a.alone)}
        r_got = {r["track_id"]: r for r in actor_rows(scene, tl, b, {}, b.alone)}
        assert removed not in r_got and r_got.keys() == r_ref.keys()
        for tid, r in r_ref.items():
            g = r_got[tid]
            n = max(r["visible_pixels"], 1)
            assert abs(g["visible_pixels"] - r["visible_pixels"]) <= max(2, 0.02 * n), tid
            if r["visible_pixels"] >= 10:
                np.testing.assert_allclose(g["box2d"], r["box2d"], atol=1.0)
                assert g["visible_fraction"] == pytest.approx(r["visible_fraction"], abs=0.02)
                checked += 1
    assert checked >= 3
    assert filled > 0  # the fill had holes to fill


@pytest.mark.parametrize("shape", [(2, 5, 7), (1, 8, 8), (3, 1, 1)])
def test_packed_bits_match_numpy(shape):
    from p4dsim.render.gsplat.renderer import pack_bits_torch

    m = np.random.default_rng(0).random(shape) < 0.5
    got = pack_bits_torch(torch.as_tensor(m)).numpy()
    for i in range(shape[0]):
        np.testing.assert_array_equal(got[i], np.packbits(m[i]))
        n = shape[1] * shape[2]
        np.testing.assert_array_equal(np.unpackbits(got[i], count=n).reshape(m[i].shape), m[i])


def test_upload_cache_keeps_the_most_recent_scenes():
    """Shards rendered at once from several threads each find their scene uploaded: the
    renderer keeps the last MAX_SCENES uploads, and frees the oldest beyond that."""
    import p4dsim.render.gsplat.renderer as grenderer
    from p4dsim.render.base import RasterSettings
    from p4dsim.scene.builder import build_scene
    from p4dsim.source import SourceSpec

    gpu = object.__new__(grenderer.GsplatRenderer)
    gpu.settings, gpu.device, gpu._cached = RasterSettings(), "cpu", []
    log = SourceSpec.parse("toytown:?width=48&height=16").open()
    scenes = [build_scene(log.frame(i)) for i in range(grenderer.MAX_SCENES + 1)]
    ups = [gpu.upload_scene(s, grenderer.scene_extra(s)) for s in scenes]
    assert len(gpu._cached) == grenderer.MAX_SCENES
    for s, st in zip(scenes[1:], ups[1:], strict=True):  # cached: the same tensors back
        assert gpu.upload_scene(s, grenderer.scene_extra(s)) is st
    assert gpu._cache_hit(scenes[0]) is None  # the oldest was freed
