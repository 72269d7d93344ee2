"""Monocular depth through a local ``transformers`` depth-estimation model.

The model (e.g. a DPT or Depth Anything checkpoint the user has downloaded) is loaded from a
local folder with ``AutoModelForDepthEstimation``; nothing is downloaded. Its prediction is
resized to the image and aligned to metric depth by a robust scale fitted against reference
depths (LiDAR returns, or the geometric prior's ground and box depths).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from p4dsim.errors import ConfigError

_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


@lru_cache(maxsize=2)
def load_mono_model(path: str):
    """(model, image size) of the depth model in the local folder ``path``."""
    if not path:
        raise ConfigError(
            "depth source 'mono' needs a model: set scene.depth.model (or --mono-model) to a "
            "local folder holding a transformers depth-estimation model (config.json + weights)"
        )
    p = Path(path)
    if not (p / "config.json").exists():
        raise ConfigError(
            f"scene.depth.model: '{p}' holds no config.json; point it at a local folder with a "
            "transformers depth-estimation model (e.g. saved with save_pretrained)"
        )
    try:
        from transformers import AutoModelForDepthEstimation
    except ImportError:
        raise ConfigError(
            "depth source 'mono' needs the 'transformers' package (pip install 'p4dsim[mono]')"
        ) from None
    try:
        model = AutoModelForDepthEstimation.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"scene.depth.model: could not load a depth model from '{p}' (are the weights "
            f"there?): {exc}"
        ) from None
    model.eval()
    size = getattr(model.config, "image_size", None) or 384
    if isinstance(size, list | tuple):
        size = size[0]
    return model, int(size)


def predict_relative(image: np.ndarray, path: str) -> np.ndarray:
    """The model's raw prediction [H, W] float32 for an RGB uint8 image [H, W, 3]."""
    import torch

    model, size = load_mono_model(path)
    H, W = image.shape[:2]
    patch = 14 if "dinov2" in str(getattr(model.config, "backbone_config", "")).lower() else 32
    side = max(patch, int(round(size / patch)) * patch)
    x = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = (x - _MEAN) / _STD
    t = torch.from_numpy(x.transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        pred = model(pixel_values=t).predicted_depth
    pred = pred.reshape(pred.shape[-2], pred.shape[-1]).float().numpy()
    return cv2.resize(pred, (W, H), interpolation=cv2.INTER_LINEAR)


def mono_depth(
    image: np.ndarray, path: str | None, reference: np.ndarray, max_depth: float
) -> np.ndarray:
    """Metric depth [H, W] (m) from the model at ``path``, scaled so that its median ratio
    to ``reference`` (depth [H, W], 0 = none) is 1. When the prediction anti-correlates with
    the reference (a disparity-like output), it is inverted first."""
    pred = predict_relative(image, path or "")
    ref_ok = reference > 0
    p = pred - pred.min() + 1e-3
    if ref_ok.sum() >= 10:
        corr = np.corrcoef(p[ref_ok], reference[ref_ok])[0, 1]
        if np.isfinite(corr) and corr < 0:
            p = 1.0 / p
        scale = np.median(reference[ref_ok] / p[ref_ok])
    else:
        scale = 10.0 / max(float(np.median(p)), 1e-6)
    return np.clip(p * scale, 0.5, max_depth).astype(np.float32)
