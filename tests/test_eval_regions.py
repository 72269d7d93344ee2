"""Error anatomy: region classes of a target view (synthetic, exact answers)."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.eval.regions import (
    REGION_ID,
    REGIONS,
    box_masks,
    lidar_support,
    region_map,
    region_scores,
    scan_gap_px,
    synthesised_mask,
)
from p4dsim.types import Box3D, Camera

H, W = 60, 80


def _sparse(first: int = 30, last: int = 56, step: int = 4) -> np.ndarray:
    """Scan lines every ``step`` rows from ``first`` to ``last`` with a return in every column."""
    d = np.zeros((H, W), np.float32)
    d[first : last + 1 : step] = 10.0
    return d


def _image() -> np.ndarray:
    """Smooth light-blue sky over the top rows, textured grey below."""
    rng = np.random.default_rng(0)
    img = (rng.random((H, W, 3)) * 120).astype(np.uint8)
    img[:15] = (150, 190, 235)
    return img


def test_scan_gap_and_support():
    sp = _sparse()
    assert scan_gap_px(sp) == 4.0
    sup = lidar_support(sp)
    # between the first and last scan line everything is supported, far above nothing
    assert sup[30:57].all()
    assert not sup[:25].any()
    # a 12-row hole without returns (e.g. glass, beyond range) is not supported in its middle
    sp[38:51, 20:40] = 0
    sup = lidar_support(sp)
    assert not sup[44, 30] and sup[44, 5]


def test_regions_partition_the_image():
    sp = _sparse()
    vehicles = np.zeros((H, W), bool)
    vehicles[35:50, 10:25] = True
    synth = np.zeros((H, W), bool)
    synth[40:55, 20:35] = True  # overlaps the vehicle: the vehicle wins there
    reg = region_map(sp, _image(), vehicles, synth)
    assert reg.shape == (H, W) and reg.max() < len(REGIONS)
    masks = [reg == REGION_ID[r] for r in REGIONS]
    total = np.sum(masks, axis=0)
    assert (total == 1).all()  # every pixel in exactly one class
    assert (reg[vehicles] == REGION_ID["vehicle"]).all()
    assert (reg[synth & ~vehicles] == REGION_ID["synthesised"]).all()
    assert (reg[:12] == REGION_ID["sky"]).all()  # sky-coloured, smooth, touches the top
    assert (reg[16:25] == REGION_ID["no_depth"]).all()  # textured, above the LiDAR
    assert reg[45, 60] == REGION_ID["lidar"]
    scores = region_scores(reg, _image(), np.full((H, W), 10.0), _image(), sp)
    assert abs(sum(s["share"] for s in scores.values()) - 1.0) < 1e-12
    # without an image there is no sky class; without masks only lidar / no_depth remain
    reg2 = region_map(sp)
    assert set(np.unique(reg2)) == {REGION_ID["lidar"], REGION_ID["no_depth"]}


def test_region_scores_localise_errors():
    sp = _sparse()
    reg = region_map(sp, _image())
    target = _image()
    pred = target.copy()
    nd = reg == REGION_ID["no_depth"]
    pred[nd] = 255 - pred[nd]  # wrong only above the LiDAR
    depth = np.where(reg == REGION_ID["lidar"], 11.0, 10.0)  # 10 % too far on the LiDAR
    s = region_scores(reg, pred, depth, target, sp)
    assert s["lidar"]["psnr"] == float("inf") and s["sky"]["psnr"] == float("inf")
    assert np.isfinite(s["no_depth"]["psnr"]) and s["no_depth"]["psnr"] < 15
    assert abs(s["lidar"]["absrel"] - 0.1) < 1e-9
    assert s["no_depth"]["absrel"] is None  # no reference depth there
    assert s["vehicle"]["psnr"] is None and s["vehicle"]["share"] == 0.0


def test_synthesised_from_confidence():
    conf = np.array([[1.0, 0.0, 0.3, 0.5]])
    alpha = np.array([[1.0, 1.0, 0.4, 0.6]])
    # observed, synthesised, not rendered, 0.5 / 0.6 = 0.83 observed
    assert synthesised_mask(conf, alpha).tolist() == [[False, True, True, False]]


def test_box_masks_project_the_box():
    K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])
    # camera looking along ego +x (OpenCV axes: x right = -y ego, y down = -z ego)
    T = np.eye(4)
    T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
    cam = Camera(K, W, H, T)
    box = Box3D("a", "vehicle", np.array([10.0, 0, 0]), np.array([2.0, 2.0, 2.0]), 0.0)
    m = box_masks([box], cam)
    # front face at x = 9: ±1 m -> ±5.6 px; back face at x = 11: ±4.5 px; hull = front face
    cols = np.flatnonzero(m.any(axis=0))
    rows = np.flatnonzero(m.any(axis=1))
    assert abs(cols[0] - (W / 2 - 50 / 9)) <= 1 and abs(cols[-1] + 1 - (W / 2 + 50 / 9)) <= 1
    assert abs(rows[0] - (H / 2 - 50 / 9)) <= 1 and abs(rows[-1] + 1 - (H / 2 + 50 / 9)) <= 1
    sign = Box3D("s", "sign", np.array([10.0, 0, 0]), np.array([2.0, 2.0, 2.0]), 0.0)
    assert not box_masks([sign], cam).any()
    behind = Box3D("b", "vehicle", np.array([-10.0, 0, 0]), np.array([2.0, 2.0, 2.0]), 0.0)
    assert not box_masks([behind], cam).any()


def test_future_protocol_reports_regions_and_consistency():
    """On toytown (labelled cars, exact LiDAR) every sample carries the anatomy and the
    depth consistency; the scene's own depth agrees with the static LiDAR better than copying
    frame t does once the ego has moved."""
    from p4dsim.eval.future import evaluate_future
    from p4dsim.source import SourceSpec

    log = SourceSpec.parse("toytown:?frames=6&width=192&height=58").open()
    res = evaluate_future(log, [0], [5], device="cpu")
    by = {s["method"]: s for s in res.samples}
    for s in by.values():
        assert sum(r["share"] for r in s["regions"].values()) == pytest.approx(1.0)
        assert s["regions"]["vehicle"]["share"] > 0
        assert s["consistency"] is not None
    assert by["p4dsim"]["consistency"] < by["copy"]["consistency"]
