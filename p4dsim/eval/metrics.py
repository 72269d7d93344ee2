"""Image and depth metrics.

Images are uint8 (or float in 0..255) [H, W, 3] RGB or [H, W] grey; depth maps are float
[H, W] camera z in metres with 0 = unknown and ``inf`` = sky / nothing within range.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: SSIM window: Gaussian, 11 taps, σ = 1.5 (Wang et al. 2004)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
#: depth evaluation range (m), as in the KITTI depth benchmarks
DEPTH_MIN, DEPTH_MAX = 1e-3, 80.0


def _as_float(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {a.shape} vs {b.shape}")


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel and channel (same units as the inputs)."""
    _check_pair(a, b, "mse")
    d = _as_float(a) - _as_float(b)
    return float(np.mean(d * d))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range² / MSE); ``inf`` for equal images."""
    m = mse(a, b)
    if m == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range * data_range / m))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1D Gaussian [size] centred on the middle tap."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    w = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return w / w.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable weighted window sums of x [H, W] over windows fully inside the image:
    [H - n + 1, W - n + 1]."""
    n = len(w)
    r = n // 2
    out = cv2.sepFilter2D(x, cv2.CV_64F, w, w, borderType=cv2.BORDER_REFLECT)
    return out[r : x.shape[0] - (n - 1 - r), r : x.shape[1] - (n - 1 - r)]


def ssim_map(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float = 255.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> np.ndarray:
    """Local SSIM of two grey images [H, W] over every Gaussian window fully inside the image
    (Wang et al. 2004: weighted means, variances and covariance; C1 = (0.01 L)², C2 = (0.03 L)²).
    Returns [H - window + 1, W - window + 1]."""
    _check_pair(a, b, "ssim")
    if a.ndim != 2:
        raise ValueError(f"ssim_map: expected grey images [H, W], got shape {a.shape}")
    if min(a.shape) < window:
        raise ValueError(f"ssim: image {a.shape} is smaller than the {window}-pixel window")
    x, y = _as_float(a), _as_float(b)
    w = gaussian_window(window, sigma)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mx, my = _filter_valid(x, w), _filter_valid(y, w)
    sxx = _filter_valid(x * x, w) - mx * mx
    syy = _filter_valid(y * y, w) - my * my
    sxy = _filter_valid(x * y, w) - mx * my
    num = (2.0 * mx * my + c1) * (2.0 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return num / den


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM; colour images [H, W, C] average the per-channel SSIM."""
    _check_pair(a, b, "ssim")
    if a.ndim == 2:
        return float(np.mean(ssim_map(a, b, data_range)))
    return float(
        np.mean([np.mean(ssim_map(a[..., c], b[..., c], data_range)) for c in range(a.shape[2])])
    )


@dataclass
class DepthErrors:
    """Depth errors on the pixels where both maps have depth.

    absrel: mean |pred - gt| / gt; rmse: metres; n: pixels compared; density: n / pixels
    with reference depth (how much of the reference the prediction covers).
    """

    absrel: float
    rmse: float
    n: int
    density: float


def depth_errors(pred: np.ndarray, gt: np.ndarray, max_depth: float = DEPTH_MAX) -> DepthErrors:
    """Compare predicted depth [H, W] with reference depth [H, W] (e.g. projected LiDAR).

    Reference pixels count where 0 < gt <= max_depth. Predictions of 0 (unknown) or NaN are
    left out (and lower ``density``); ``inf`` (sky) and anything beyond ``max_depth`` is
    clipped to ``max_depth``, as in the KITTI depth benchmarks.
    """
    _check_pair(pred, gt, "depth_errors")
    g = _as_float(gt)
    p = _as_float(pred)
    ref = np.isfinite(g) & (g > 0) & (g <= max_depth)
    has = ref & ~np.isnan(p) & (p > 0)
    n_ref = int(ref.sum())
    n = int(has.sum())
    if n == 0:
        return DepthErrors(float("nan"), float("nan"), 0, 0.0 if n_ref else float("nan"))
    pp = np.clip(p[has], DEPTH_MIN, max_depth)
    gg = g[has]
    absrel = float(np.mean(np.abs(pp - gg) / gg))
    rmse = float(np.sqrt(np.mean((pp - gg) ** 2)))
    return DepthErrors(absrel, rmse, n, n / n_ref)
