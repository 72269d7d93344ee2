"""PSNR, SSIM and depth errors against hand-computed values and a direct reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from p4dsim.eval.metrics import depth_errors, gaussian_window, psnr, ssim, ssim_map

C1 = (0.01 * 255) ** 2  # 6.5025
C2 = (0.03 * 255) ** 2  # 58.5225


def test_psnr_hand_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = np.full((8, 8, 3), 110, np.uint8)
    # MSE = 100 -> 10 log10(65025 / 100) = 28.1308 dB
    assert psnr(a, b) == pytest.approx(28.130803608679102, abs=1e-9)
    # Half the pixels off by 20, half equal: MSE = 200 -> 25.1205 dB
    c = a.copy()
    c[:4] = 120
    assert psnr(a, c) == pytest.approx(10 * math.log10(65025 / 200), abs=1e-9)
    assert psnr(a, c) == pytest.approx(25.12050, abs=1e-4)
    assert psnr(a, a) == math.inf
    # uint8 inputs must not wrap around: 0 vs 255 is the worst case, 0 dB.
    assert psnr(np.zeros((4, 4), np.uint8), np.full((4, 4), 255, np.uint8)) == pytest.approx(0.0)


def test_gaussian_window():
    w = gaussian_window()
    assert w.shape == (11,) and w.sum() == pytest.approx(1.0)
    assert w[5] == w.max() and w[0] == pytest.approx(w[10])
    # σ = 1.5: neighbouring taps in ratio exp(-1/4.5) at the centre
    assert w[6] / w[5] == pytest.approx(math.exp(-1 / 4.5))


def test_ssim_constant_images_hand_value():
    a = np.full((20, 24), 100.0)
    b = np.full((20, 24), 120.0)
    # No variance: SSIM = luminance term = (2·100·120 + C1) / (100² + 120² + C1)
    expect = (24000 + C1) / (10000 + 14400 + C1)
    assert expect == pytest.approx(0.983611, abs=1e-6)
    assert ssim(a, b) == pytest.approx(expect, abs=1e-12)
    m = ssim_map(a, b)
    assert m.shape == (10, 14)
    np.testing.assert_allclose(m, expect, atol=1e-12)


def test_ssim_identical_and_inverted():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    # Inverted noise is anti-correlated: SSIM is negative.
    assert ssim(a, 255 - a) < -0.5


def _ssim_direct(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Window by window with an explicit 2D Gaussian (the textbook definition)."""
    w1 = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(w1, w1)
    w /= w.sum()
    H, W = x.shape
    out = np.zeros((H - 10, W - 10))
    for i in range(H - 10):
        for j in range(W - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            out[i, j] = ((2 * mx * my + C1) * (2 * cxy + C2)) / (
                (mx**2 + my**2 + C1) * (vx + vy + C2)
            )
    return out


def test_ssim_matches_direct_definition():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (17, 23)).astype(np.float64)
    y = np.clip(x * 0.7 + 30 + rng.normal(0, 20, x.shape), 0, 255)
    ref = _ssim_direct(x, y)
    np.testing.assert_allclose(ssim_map(x, y), ref, rtol=1e-9, atol=1e-12)
    # A single 11×11 window: one value, a scaled copy with hand-derivable terms
    x1 = x[:11, :11]
    y1 = 0.5 * x1 + 40
    w1 = gaussian_window()
    w = np.outer(w1, w1)
    mx = (w * x1).sum()
    vx = (w * (x1 - mx) ** 2).sum()
    my, vy, cxy = 0.5 * mx + 40, 0.25 * vx, 0.5 * vx
    expect = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx**2 + my**2 + C1) * (vx + vy + C2))
    assert ssim(x1, y1) == pytest.approx(expect, rel=1e-9)


def test_ssim_rejects_tiny_images():
    with pytest.raises(ValueError, match="window"):
        ssim(np.zeros((5, 30)), np.zeros((5, 30)))


def test_depth_errors():
    gt = np.zeros((4, 5), np.float32)
    gt[0, :] = [5, 10, 20, 40, 100]  # the 100 m return is beyond the 80 m range
    pred = gt * 1.1
    e = depth_errors(pred, gt)
    assert e.n == 4 and e.density == 1.0
    assert e.absrel == pytest.approx(0.1, rel=1e-6)
    assert e.rmse == pytest.approx(0.1 * math.sqrt((25 + 100 + 400 + 1600) / 4), rel=1e-5)
    # Unknown predictions (0) are left out and lower the density; sky (inf) is clipped to 80 m.
    pred2 = gt.copy()
    pred2[0, 0] = 0.0
    pred2[0, 3] = np.inf
    e2 = depth_errors(pred2, gt)
    assert e2.n == 3 and e2.density == pytest.approx(0.75)
    assert e2.absrel == pytest.approx((40 / 40) / 3)
    assert e2.rmse == pytest.approx(math.sqrt(40**2 / 3))
    empty = depth_errors(np.zeros_like(gt), gt)
    assert empty.n == 0 and math.isnan(empty.absrel) and empty.density == 0.0
