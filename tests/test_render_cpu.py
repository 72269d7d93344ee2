"""CPU rasterizer: against the plain reference, analytic values and gsplat's own projection."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.errors import ConfigError
from p4dsim.render.base import RasterSettings
from p4dsim.render.cpu import CpuRenderer
from p4dsim.render.projection import project_gaussians
from p4dsim.render.reference import render_reference
from p4dsim.scene.gaussians import GaussianSet

W, H = 64, 48
K = np.array([[52.0, 0.0, 31.3], [0.0, 47.0, 24.6], [0.0, 0.0, 1.0]])
BG = np.array([0.2, 0.3, 0.4])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _cameras() -> tuple[np.ndarray, np.ndarray]:
    V = np.stack([np.eye(4), np.eye(4)])
    V[1, :3, :3] = _rot_y(np.deg2rad(12.0))
    V[1, :3, 3] = [0.4, -0.2, 0.6]
    return V, np.stack([K, K * [[1.1], [1.0], [1.0]]])


def _random_scene(n: int, seed: int) -> tuple[GaussianSet, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = np.c_[rng.uniform(-4, 4, n), rng.uniform(-3, 3, n), rng.uniform(-2, 14, n)]
    # a few on exactly equal depths to exercise the tie order
    means[:20, 2] = 5.0
    scales = np.exp(rng.uniform(np.log(0.01), np.log(0.3), (n, 3)))
    g = GaussianSet(
        means=means,
        quats=rng.normal(size=(n, 4)),
        scales=scales,
        opacities=rng.uniform(0.0, 1.0, n),
        colors=rng.uniform(0.0, 1.0, (n, 3)),
        confidence=rng.uniform(0.0, 1.0, n),
    )
    extra = np.c_[g.confidence, rng.integers(0, 4, n)].astype(np.float32)
    return g, extra


def _single(mean, scale, opacity=0.8, color=(1.0, 0.5, 0.25)) -> GaussianSet:
    return GaussianSet(
        means=np.asarray([mean], dtype=np.float64),
        quats=np.array([[1.0, 0.0, 0.0, 0.0]]),
        scales=np.full((1, 3), scale),
        opacities=np.array([opacity]),
        colors=np.asarray([color]),
        confidence=np.ones(1),
    )


@pytest.mark.parametrize(
    "settings",
    [
        RasterSettings(),
        # coarse tiles off, a high stop threshold so early termination happens a lot
        RasterSettings(tile_size=8, min_transmittance=0.05, eps2d=0.5, max_alpha=0.99),
    ],
    ids=["gsplat-defaults", "tile8-early-stop"],
)
def test_matches_reference(settings: RasterSettings) -> None:
    g, extra = _random_scene(400, seed=3)
    V, Ks = _cameras()
    out = CpuRenderer(settings).render(g, V, Ks, W, H, BG, extra)
    ref = render_reference(g, V, Ks, W, H, BG, extra, settings)

    assert out.rgb.shape == (2, H, W, 3) and out.rgb.dtype == np.float32
    assert out.depth.shape == (2, H, W) and out.alpha.shape == (2, H, W)
    assert out.extra is not None and out.extra.shape == (2, H, W, 2)
    # the scene covers most pixels but not all, and some pixels are opaque
    assert 0.3 < (ref.alpha > 0).mean() < 1.0
    assert ref.alpha.max() > 0.9
    for key in ("rgb", "alpha", "depth", "extra"):
        err = np.abs(getattr(out, key) - getattr(ref, key)).max()
        assert err <= 1e-4, f"{key}: max abs error {err}"


def test_single_gaussian_analytic() -> None:
    s, z, op = 0.15, 4.0, 0.8
    g = _single([0.0, 0.0, z], s, op)
    out = CpuRenderer().render(g, np.eye(4)[None], K[None], W, H, BG)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    eps = RasterSettings().eps2d
    # on the optical axis J = diag(fx/z, fy/z) and the 3D covariance is s² I
    sxx = (fx * s / z) ** 2 + eps
    syy = (fy * s / z) ** 2 + eps
    for i, j in [(24, 31), (26, 33), (22, 29)]:
        dx, dy = j + 0.5 - cx, i + 0.5 - cy
        a = op * np.exp(-0.5 * (dx * dx / sxx + dy * dy / syy))
        assert out.alpha[0, i, j] == pytest.approx(a, abs=1e-6)
        expect_rgb = np.array([1.0, 0.5, 0.25]) * a + (1 - a) * BG
        np.testing.assert_allclose(out.rgb[0, i, j], expect_rgb, atol=1e-6)
        assert out.depth[0, i, j] == pytest.approx(z, abs=1e-5)
    # far from the centre nothing is drawn
    assert out.alpha[0, 0, 0] == 0.0 and out.depth[0, 0, 0] == 0.0
    np.testing.assert_allclose(out.rgb[0, 0, 0], BG, atol=1e-7)


def test_off_axis_jacobian_clamped_to_fov() -> None:
    """Beyond 1.3x the half field of view the Jacobian uses the clamped x/z (gsplat's rule)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    z, s, op = 2.0, 1.2, 0.9
    lim_x_pos = (W - cx) / fx + 0.3 * (0.5 * W / fx)
    x = 1.6 * lim_x_pos * z  # right of the image, clamped
    g = _single([x, 0.0, z], s, op)
    out = CpuRenderer().render(g, np.eye(4)[None], K[None], W, H)
    tx = z * lim_x_pos
    J = np.array([[fx / z, 0.0, -fx * tx / z**2], [0.0, fy / z, 0.0]])
    cov = s * s * J @ J.T + RasterSettings().eps2d * np.eye(2)
    u = fx * x / z + cx
    i, j = 20, W - 1
    d = np.array([j + 0.5 - u, i + 0.5 - cy])
    a = op * np.exp(-0.5 * d @ np.linalg.solve(cov, d))
    assert a > 0.05  # the check is meaningful: the Gaussian reaches into the image
    assert out.alpha[0, i, j] == pytest.approx(a, abs=1e-6)


def test_nearer_gaussian_dominates_regardless_of_order() -> None:
    near = ([0.0, 0.0, 2.0], [1.0, 0.0, 0.0])
    far = ([0.0, 0.0, 5.0], [0.0, 0.0, 1.0])
    outs = []
    for pair in ([near, far], [far, near]):
        g = GaussianSet.concat([_single(m, 0.04 * m[2], opacity=0.98, color=c) for m, c in pair])
        outs.append(CpuRenderer().render(g, np.eye(4)[None], K[None], W, H))
    for out in outs:
        rgb = out.rgb[0, 24, 31]
        assert rgb[0] > 0.9 and rgb[2] < 0.1
        assert out.depth[0, 24, 31] == pytest.approx(2.0, abs=0.1)
    np.testing.assert_array_equal(outs[0].rgb, outs[1].rgb)
    np.testing.assert_array_equal(outs[0].depth, outs[1].depth)


def test_equal_depths_keep_array_order() -> None:
    """Ties in depth composite in array order, as gsplat's stable sort does."""
    red = _single([0.0, 0.0, 3.0], 0.1, opacity=0.9, color=(1.0, 0.0, 0.0))
    blue = _single([0.0, 0.0, 3.0], 0.1, opacity=0.9, color=(0.0, 0.0, 1.0))
    first_red = CpuRenderer().render(
        GaussianSet.concat([red, blue]), np.eye(4)[None], K[None], W, H
    )
    first_blue = CpuRenderer().render(
        GaussianSet.concat([blue, red]), np.eye(4)[None], K[None], W, H
    )
    assert first_red.rgb[0, 24, 31, 0] > 5 * first_red.rgb[0, 24, 31, 2]
    assert first_blue.rgb[0, 24, 31, 2] > 5 * first_blue.rgb[0, 24, 31, 0]


def test_gaussians_behind_camera_or_before_near_plane_are_culled() -> None:
    behind = _single([0.0, 0.0, -2.0], 1.0, opacity=1.0)
    too_near = _single([0.0, 0.0, 0.005], 0.01, opacity=1.0)
    visible = _single([0.0, 0.0, 3.0], 0.05, opacity=1.0)
    r = CpuRenderer()
    out = r.render(GaussianSet.concat([behind, too_near]), np.eye(4)[None], K[None], W, H, BG)
    assert np.all(out.alpha == 0.0) and np.all(out.depth == 0.0)
    np.testing.assert_allclose(out.rgb, np.broadcast_to(BG, out.rgb.shape), atol=1e-7)
    # the same Gaussians in front of a visible one change nothing
    both = r.render(GaussianSet.concat([behind, too_near, visible]), np.eye(4)[None], K[None], W, H)
    alone = r.render(visible, np.eye(4)[None], K[None], W, H)
    np.testing.assert_array_equal(both.rgb, alone.rgb)
    assert alone.alpha.max() > 0.5


def test_empty_set_renders_background() -> None:
    V, Ks = _cameras()
    out = CpuRenderer().render(GaussianSet.empty(), V, Ks, W, H, BG, np.zeros((0, 2)))
    np.testing.assert_allclose(out.rgb, np.broadcast_to(BG, (2, H, W, 3)), atol=1e-7)
    assert np.all(out.alpha == 0.0) and np.all(out.depth == 0.0)
    assert out.extra is not None and out.extra.shape == (2, H, W, 2) and np.all(out.extra == 0)
    black = CpuRenderer().render(GaussianSet.empty(), V, Ks, W, H)
    assert np.all(black.rgb == 0.0) and black.extra is None


def test_bad_inputs_raise_config_error() -> None:
    g, extra = _random_scene(10, seed=0)
    V, Ks = _cameras()
    r = CpuRenderer()
    with pytest.raises(ConfigError, match="Ks"):
        r.render(g, V, Ks[:1], W, H)
    with pytest.raises(ConfigError, match="extra"):
        r.render(g, V, Ks, W, H, extra=extra[:5])
    with pytest.raises(ConfigError, match="background"):
        r.render(g, V, Ks, W, H, background=np.zeros(4))


def test_projection_matches_gsplat_torch_implementation() -> None:
    """The reference projection agrees with gsplat's pure-torch projection (float32)."""
    torch = pytest.importorskip("torch")
    impl = pytest.importorskip("gsplat.cuda._torch_impl")
    g, _ = _random_scene(300, seed=5)
    V, Ks = _cameras()
    covars = g.covariances()
    _, means2d, depths, conics, _ = impl._fully_fused_projection(
        torch.from_numpy(g.means),
        torch.from_numpy(covars.astype(np.float32)),
        torch.from_numpy(V.astype(np.float32)),
        torch.from_numpy(Ks.astype(np.float32)),
        W,
        H,
        eps2d=RasterSettings().eps2d,
    )
    for c in range(2):
        p = project_gaussians(g, V[c], Ks[c], W, H)
        v = p.valid
        assert v.sum() > 50
        np.testing.assert_allclose(p.depths[v], depths[c].numpy()[v], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(p.means2d[v], means2d[c].numpy()[v], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(p.conics[v], conics[c].numpy()[v], rtol=2e-3, atol=1e-5)
