"""Scoring predictions of one target view: whole-image metrics, depth consistency and the
error anatomy per region, for every method alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from p4dsim.eval.baselines import Prediction
from p4dsim.eval.consistency import consistency_absrel
from p4dsim.eval.metrics import depth_errors, psnr, ssim
from p4dsim.eval.regions import region_scores


def score(pred: Prediction, rgb: np.ndarray, depth: np.ndarray) -> dict[str, float | None]:
    """Whole-image metrics of one prediction against a target image uint8 [H, W, 3] and its
    sparse reference depth [H, W]."""
    d = depth_errors(pred.depth, depth)
    return {
        "psnr": psnr(pred.rgb, rgb),
        "ssim": ssim(pred.rgb, rgb),
        "absrel": d.absrel,
        "rmse": d.rmse,
        "depth_density": d.density,
        "coverage": pred.coverage,
    }


def score_all(
    preds: Mapping[str, Prediction],
    rgb: np.ndarray,
    depth: np.ndarray,
    consistency_ref: np.ndarray | None,
    regions: np.ndarray | None,
) -> dict[str, dict[str, Any]]:
    """Metrics of every method's prediction of one target: :func:`score`, ``consistency``
    (AbsRel against the reprojected static source LiDAR ``consistency_ref`` [H, W]) and
    ``regions`` (per class of the region map [H, W], :func:`~p4dsim.eval.regions.
    region_scores`)."""
    out = {}
    for method, pred in preds.items():
        s: dict[str, Any] = score(pred, rgb, depth)
        if consistency_ref is not None:
            s["consistency"] = consistency_absrel(pred.depth, consistency_ref)
        if regions is not None:
            s["regions"] = region_scores(regions, pred.rgb, pred.depth, rgb, depth, consistency_ref)
        out[method] = s
    return out
