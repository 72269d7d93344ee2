"""gsplat backend against the CPU renderer: same scene, same cameras, same pictures.

PSNR >= 40 dB on RGB and depth within 1 % where alpha > 0.5, for the Renderer interface and
for the replay's batched 4D path (actors moved on the GPU). Needs CUDA and gsplat."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.render import cuda_available

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU with gsplat"),
]

W, H = 160, 96
K = np.array([[120.0, 0.0, 79.3], [0.0, 118.0, 47.6], [0.0, 0.0, 1.0]])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, 1e-20))


def _random_scene(n: int, seed: int):
    from p4dsim.scene.gaussians import GaussianSet

    rng = np.random.default_rng(seed)
    means = np.c_[rng.uniform(-4, 4, n), rng.uniform(-3, 3, n), rng.uniform(1, 14, n)]
    g = GaussianSet(
        means=means,
        quats=rng.normal(size=(n, 4)),
        scales=np.exp(rng.uniform(np.log(0.02), np.log(0.3), (n, 3))),
        opacities=rng.uniform(0.05, 1.0, n),
        colors=rng.uniform(0.0, 1.0, (n, 3)),
        confidence=rng.uniform(0.0, 1.0, n),
    )
    return g, np.c_[g.confidence, rng.integers(0, 2, n)].astype(np.float32)


def _check(rgb_a, rgb_b, depth_a, depth_b, alpha_a, tag: str) -> None:
    p = psnr(rgb_a, rgb_b)
    m = alpha_a > 0.5
    rel = np.abs(depth_a[m] - depth_b[m]) / depth_a[m]
    print(
        f"{tag}: RGB PSNR {p:.1f} dB, depth rel. error p99 {np.quantile(rel, 0.99):.2e} "
        f"max {rel.max():.2e} on {m.mean():.0%} of pixels"
    )
    assert m.mean() > 0.3
    assert p >= 40.0, tag
    assert np.mean(rel <= 0.01) >= 0.999, tag


def test_render_matches_cpu() -> None:
    from p4dsim.render.cpu import CpuRenderer
    from p4dsim.render.gsplat import GsplatRenderer

    g, extra = _random_scene(3000, seed=1)
    V = np.stack([np.eye(4), np.eye(4)])
    c, s = np.cos(0.2), np.sin(0.2)
    V[1, :3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    V[1, :3, 3] = [0.3, -0.1, 0.5]
    Ks = np.stack([K, K])
    bg = np.array([0.2, 0.3, 0.4])
    a = CpuRenderer().render(g, V, Ks, W, H, bg, extra)
    b = GsplatRenderer().render(g, V, Ks, W, H, bg, extra)
    assert b.rgb.shape == a.rgb.shape and b.extra.shape == a.extra.shape
    for c_ in range(2):
        _check(a.rgb[c_], b.rgb[c_], a.depth[c_], b.depth[c_], a.alpha[c_], f"camera {c_}")
    np.testing.assert_allclose(b.alpha, a.alpha, atol=2e-2)
    assert np.mean(np.abs(b.extra - a.extra) < 1e-2) > 0.999


@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_batched_replay_frames_match_cpu(packed: bool) -> None:
    """The GPU's batched 4D path (actors posed on the GPU, one removed) equals the CPU's
    frame-by-frame replay on toytown: pictures, coverage, and the labels it computes on the
    device (visible pixels, 2D boxes, visible fractions)."""
    from p4dsim.io.rows import actor_rows
    from p4dsim.labels import alone_pixels
    from p4dsim.render import get_renderer
    from p4dsim.render.frames import render_frame
    from p4dsim.scenario.model import Scenario
    from p4dsim.scenario.timeline import make_timeline
    from p4dsim.scene.builder import build_scene
    from p4dsim.source import SourceSpec

    log = SourceSpec.parse(f"toytown:?width={W * 2}&height={H}").open()
    scene = build_scene(log.frame(0))
    sc = Scenario.model_validate(
        {
            "source": {"adapter": "toytown"},
            "duration_s": 1.0,
            "fps": 4,
            "ego": {
                "base": "log",
                "perturbations": [{"type": "lateral_offset", "offset_m": 1.0, "ramp_s": 0.5}],
            },
        }
    )
    tl = make_timeline(sc, scene, log, "test")
    removed = scene.actors[0].track_id
    del tl.actor_poses[removed]
    ks = list(range(len(tl.times)))
    from p4dsim.render.gsplat import GsplatRenderer

    gpu = GsplatRenderer(packed=packed).render_steps(scene, tl, ks)
    cpu = get_renderer("cpu")
    checked = 0
    for k in ks:
        a = render_frame(scene, tl, k, cpu)
        b = gpu[k]
        fin = np.isfinite(a.depth) & np.isfinite(b.depth)
        _check(
            a.rgb / 255.0,
            b.rgb / 255.0,
            np.where(fin, a.depth, 0),
            np.where(fin, b.depth, 0),
            np.where(fin, a.alpha, 0),
            f"toytown step {k}",
        )
        assert np.mean(np.isinf(a.depth) == np.isinf(b.depth)) > 0.999
        assert abs(a.coverage - b.coverage) < 1e-3
        assert abs(float(a.alpha.mean()) - b.alpha_mean) < 1e-3
        assert b.actor_masks is None and b.alpha is None  # statistics only
        # labels computed on the GPU against the CPU's (same rules, float rounding apart)
        poses = {tid: P[k] for tid, P in tl.actor_poses.items()}
        alone = alone_pixels(scene, poses, tl.T_world_camera[k], tl.camera, cpu)
        ref = {r["track_id"]: r for r in actor_rows(scene, tl, a, {}, alone)}
        got = {r["track_id"]: r for r in actor_rows(scene, tl, b, {}, b.alone)}
        assert removed not in got and b.actor_pixels[0] == 0 and b.alone[0] == 0
        assert got.keys() == ref.keys()
        for tid, r in ref.items():
            g = got[tid]
            n = max(r["visible_pixels"], 1)
            assert abs(g["visible_pixels"] - r["visible_pixels"]) <= max(3, 0.02 * n), tid
            if r["visible_pixels"] >= 20:
                np.testing.assert_allclose(g["box2d"], r["box2d"], atol=1.0)
                assert g["visible_fraction"] == pytest.approx(r["visible_fraction"], abs=0.02)
                checked += 1
    assert checked >= 4


def test_gpu_jpeg_decodes_to_the_frame() -> None:
    pytest.importorskip("torchvision")
    import torch

    from p4dsim.io.codecs import decode_rgb
    from p4dsim.render.gsplat.jpeg import encode_jpeg_gpu

    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(128, 20, (2, 48, 64, 3)), 0, 255).astype(np.uint8)
    out = encode_jpeg_gpu(torch.as_tensor(img, device="cuda"), 95)
    if out is None:
        pytest.skip("torchvision has no GPU JPEG encoder here")
    for i in range(2):
        assert psnr(decode_rgb(out[i]) / 255.0, img[i] / 255.0) > 30.0
