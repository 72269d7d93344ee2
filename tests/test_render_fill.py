"""The last fill (no empty pixel, far side only) and the observed mask."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.render.fill import fill_empty, fill_empty_torch, observed_mask


def _step_scene(H=40, W=64, hole=(10, 32)):
    """Near red surface (left, 5 m) | far blue surface (right, 50 m, from column W/2 on); a
    hole of empty columns opens between them (a disocclusion)."""
    rgb = np.zeros((H, W, 3), np.float32)
    depth = np.zeros((H, W), np.float32)
    alpha = np.ones((H, W), np.float32)
    rgb[:, : W // 2] = (1.0, 0.0, 0.0)
    depth[:, : W // 2] = 5.0
    rgb[:, W // 2 :] = (0.0, 0.0, 1.0)
    depth[:, W // 2 :] = 50.0
    a, b = hole
    rgb[:, a:b] = 0
    depth[:, a:b] = 0
    alpha[:, a:b] = 0
    return rgb, depth, alpha


def test_no_empty_pixel_and_observed_kept():
    rng = np.random.default_rng(0)
    H, W = 37, 53  # odd sizes exercise the padding
    rgb = rng.random((H, W, 3)).astype(np.float32)
    depth = (5 + 20 * rng.random((H, W))).astype(np.float32)
    alpha = np.ones((H, W), np.float32)
    holes = rng.random((H, W)) < 0.6
    holes[5:30, 10:40] = True  # a large hole too
    rgb[holes], depth[holes], alpha[holes] = 0, 0, 0
    out, d = fill_empty(rgb, depth, alpha)
    assert np.all(np.isfinite(d)) and np.all(d > 0)
    assert np.all(out[holes].sum(axis=-1) > 0)
    np.testing.assert_allclose(out[~holes], rgb[~holes], atol=1e-6)
    np.testing.assert_array_equal(d[~holes], depth[~holes])
    # Filled depth stays within the range of the rendered depths (no extrapolation).
    assert d.min() >= depth[~holes].min() - 1e-4 and d.max() <= depth[~holes].max() + 1e-4


@pytest.mark.parametrize("hole", [(10, 32), (11, 32), (3, 32), (20, 32), (17, 32)])
def test_hole_at_depth_edge_takes_far_side_only(hole):
    rgb, depth, alpha = _step_scene(hole=hole)
    out, d = fill_empty(rgb, depth, alpha)
    hole = alpha == 0
    # Every filled pixel is the far (blue, 50 m) surface: no red, no depth between 5 and 50.
    assert np.all(out[hole][:, 0] < 1e-6), "foreground colour leaked into the fill"
    np.testing.assert_allclose(out[hole], np.broadcast_to([0, 0, 1.0], out[hole].shape), 1e-6)
    np.testing.assert_allclose(d[hole], 50.0, rtol=1e-5)


def test_gap_inside_a_surface_takes_that_surface():
    rgb, depth, alpha = _step_scene(hole=(0, 0))
    for a, b in ((20, 22), (5, 6)):  # gaps of a magnified near surface, 10+ px from the edge
        rgb[:, a:b], depth[:, a:b], alpha[:, a:b] = 0, 0, 0
    out, d = fill_empty(rgb, depth, alpha)
    hole = alpha == 0
    np.testing.assert_allclose(out[hole], np.broadcast_to([1.0, 0, 0], out[hole].shape), 1e-6)
    np.testing.assert_allclose(d[hole], 5.0, rtol=1e-5)


def test_sky_is_far_side():
    rgb, depth, alpha = _step_scene()
    depth[depth == 50.0] = np.inf  # the far side is sky
    out, d = fill_empty(rgb, depth, alpha)
    hole = alpha == 0
    assert np.all(np.isinf(d[hole]))
    assert np.all(out[hole][:, 0] < 1e-6)


def test_partial_alpha_gets_background_behind_it():
    rgb, depth, alpha = _step_scene()
    # A half-transparent red pixel in the middle of the blue surface: its depth stays, the
    # fill (blue) is composited behind it with the missing weight.
    rgb[20, 50] = (0.5, 0.0, 0.0)
    alpha[20, 50] = 0.5
    depth[20, 50] = 30.0
    out, d = fill_empty(rgb, depth, alpha)
    assert d[20, 50] == 30.0
    np.testing.assert_allclose(out[20, 50], [0.5, 0.0, 0.5], atol=1e-5)


def test_nothing_rendered_gets_default_depth():
    out, d = fill_empty(
        np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.float32), np.zeros((8, 8))
    )
    np.testing.assert_allclose(d, 1000.0, rtol=1e-6)
    assert np.all(out == 0)


def test_uint8_and_batched():
    rgb, depth, alpha = _step_scene()
    batch = np.stack([rgb, rgb[:, ::-1]])
    out, d = fill_empty(
        (batch * 255).astype(np.uint8), np.stack([depth, depth[:, ::-1]]), np.stack([alpha] * 2)
    )
    assert out.dtype == np.uint8 and out.shape == batch.shape
    single, _ = fill_empty((rgb * 255).astype(np.uint8), depth, alpha)
    np.testing.assert_array_equal(out[0], single)


def test_numpy_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    B, H, W = 3, 29, 47
    rgb = rng.random((B, H, W, 3))
    depth = 2 + 60 * rng.random((B, H, W))
    depth[:, :5] = np.inf
    alpha = np.clip(rng.random((B, H, W)) * 1.4, 0, 1)
    holes = rng.random((B, H, W)) < 0.5
    holes[:, 10:25, 5:30] = True
    rgb[holes] *= alpha[holes, None] * 0  # nothing composited there
    alpha[holes] = 0
    depth[holes] = 0
    n_rgb, n_d = fill_empty(rgb, depth, alpha)
    t_rgb, t_d = fill_empty_torch(
        torch.from_numpy(rgb), torch.from_numpy(depth), torch.from_numpy(alpha)
    )
    np.testing.assert_allclose(t_rgb.numpy(), n_rgb, atol=1e-6)
    np.testing.assert_allclose(t_d.numpy(), n_d, rtol=1e-6)
    # float32 (the GPU path's dtype) agrees too, to float32 precision.
    f_rgb, f_d = fill_empty_torch(
        torch.from_numpy(rgb).float(), torch.from_numpy(depth).float(), torch.from_numpy(alpha)
    )
    np.testing.assert_allclose(f_rgb.numpy(), n_rgb, atol=1e-4)
    np.testing.assert_allclose(f_d.numpy(), n_d, rtol=1e-4)


def test_observed_mask_mean_is_coverage_definition():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    alpha = rng.random((2, 16, 24)).astype(np.float32)
    conf = alpha * (rng.random((2, 16, 24)) > 0.3)  # observed share of each pixel
    m = observed_mask(conf, alpha)
    assert m.dtype == bool
    expected = (np.minimum(conf, alpha) >= 0.5).mean()
    assert m.mean() == expected
    mt = observed_mask(torch.from_numpy(conf), torch.from_numpy(alpha))
    np.testing.assert_array_equal(mt.numpy(), m)
    # A pixel half filled by synthesised content is not observed; a fully observed one is.
    assert not observed_mask(np.array([[0.4]]), np.array([[1.0]]))[0, 0]
    assert observed_mask(np.array([[1.0]]), np.array([[1.0]]))[0, 0]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="fill_empty"):
        fill_empty(np.zeros((4, 4, 3)), np.zeros((4, 5)), np.zeros((4, 4)))


def test_torch_fill_on_cuda_equals_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here; the CUDA path is checked where one exists")
    rgb, depth, alpha = _step_scene()
    batch = [torch.from_numpy(np.stack([x, x])) for x in (rgb, depth, alpha)]
    c_rgb, c_d = fill_empty_torch(*batch)
    g_rgb, g_d = fill_empty_torch(*[x.cuda() for x in batch])
    np.testing.assert_allclose(g_rgb.cpu().numpy(), c_rgb.numpy(), atol=1e-5)
    np.testing.assert_allclose(g_d.cpu().numpy(), c_d.numpy(), rtol=1e-5)


def _random_frames(B=3, H=75, W=123, seed=0):
    """Random surfaces at two depths with holes, partial alpha, sky (inf) and odd sizes."""
    rng = np.random.default_rng(seed)
    rgb = rng.uniform(0, 1, (B, H, W, 3)).astype(np.float32)
    depth = np.where(rng.uniform(size=(B, H, W)) < 0.5, 4.0, 40.0).astype(np.float32)
    depth *= rng.uniform(0.9, 1.1, (B, H, W)).astype(np.float32)
    alpha = rng.uniform(0.4, 1.0, (B, H, W)).astype(np.float32)
    alpha[:, 20:30, 40:70] = 0.0  # a hole
    alpha[rng.uniform(size=(B, H, W)) < 0.1] = 0.0  # scattered empty pixels
    depth[:, :8] = np.inf  # sky rows
    depth[alpha == 0] = 0.0
    return rgb * alpha[..., None], depth, alpha


def test_fused_cuda_fill_equals_torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here; the fused kernels are checked where one exists")
    from p4dsim.render.gsplat.fill_kernels import _module, fill_empty_cuda

    if _module() is None:
        pytest.skip("the fill kernels could not be compiled here (no CUDA compiler)")
    for seed, (H, W) in enumerate([(75, 123), (64, 64), (2, 3), (375, 1242)]):
        batch = [torch.from_numpy(x).cuda() for x in _random_frames(2, H, W, seed)]
        r_rgb, r_d = fill_empty_torch(*batch)
        k_rgb, k_d = fill_empty_cuda(*batch)
        np.testing.assert_allclose(k_rgb.cpu().numpy(), r_rgb.cpu().numpy(), atol=2e-5)
        r, k = r_d.cpu().numpy(), k_d.cpu().numpy()
        np.testing.assert_array_equal(np.isinf(k), np.isinf(r))
        fin = np.isfinite(r)
        np.testing.assert_allclose(k[fin], r[fin], rtol=2e-5)
