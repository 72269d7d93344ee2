"""The GPU backend's label statistics (pixel counts, 2D boxes, the inside-the-box test) are
plain torch: checked here on the CPU against the numpy rules of :mod:`p4dsim.labels`."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.geometry import inv_pose, make_pose, rot_z
from p4dsim.labels import BOX_TOL_M, box2d_from_mask, inside_box_mask

torch = pytest.importorskip("torch")


def test_label_stats_match_masks():
    from p4dsim.render.gsplat.labels import label_stats

    rng = np.random.default_rng(0)
    B, A, H, W = 3, 4, 20, 30
    vid = np.full((B, H, W), -1)
    for b in range(B):
        for a in range(A - 1):  # the last actor stays empty
            y, x = rng.integers(0, H - 5), rng.integers(0, W - 5)
            patch = vid[b, y : y + rng.integers(1, 6), x : x + rng.integers(1, 6)]
            patch[rng.uniform(size=patch.shape) < 0.8] = a
    counts, boxes = label_stats(torch.as_tensor(vid), A)
    for bi in range(B):
        for ai in range(A):
            m = vid[bi] == ai
            assert counts[bi, ai] == m.sum()
            ref = box2d_from_mask(m)
            np.testing.assert_array_equal(boxes[bi, ai].numpy(), ref if ref else [0, 0, 0, 0])


def test_inside_pixels_matches_inside_box_mask():
    from p4dsim.render.gsplat.labels import inside_pixels

    rng = np.random.default_rng(1)
    H, W = 40, 60
    K = np.array([[50.0, 0, 30.2], [0, 52.0, 19.7], [0, 0, 1]])
    depth = rng.uniform(3.0, 9.0, (H, W)).astype(np.float32)
    depth[0, :5] = np.inf
    depth[1, :5] = 0.0
    T_world_cam = make_pose(rot_z(0.1), [0.3, -0.2, 0.1])
    T_world_box = make_pose(rot_z(0.7), [0.2, 0.1, 6.0])
    size = np.array([4.0, 3.0, 5.0])
    ref = inside_box_mask(depth, K, T_world_cam, T_world_box, size)
    assert 0.1 < ref.mean() < 0.9
    # two boxes: the test picks per pixel; box 1 is the reference box, box 0 another one
    T_bc = np.stack([np.eye(4), inv_pose(T_world_box) @ T_world_cam]).astype(np.float32)
    half = np.stack([np.full(3, 100.0), size / 2 + BOX_TOL_M]).astype(np.float32)
    which = np.ones((1, H, W), np.int64)
    which[0, :, : W // 3] = 0  # these pixels are tested against the huge box 0
    got = inside_pixels(
        torch.as_tensor(depth[None]),
        torch.arange(W).view(1, 1, W),
        torch.arange(H).view(1, H, 1),
        K,
        torch.as_tensor(T_bc),
        torch.as_tensor(half),
        torch.as_tensor(which),
    ).numpy()[0]
    ref_all = np.where(which[0] == 1, ref, np.isfinite(depth) & (depth > 0))
    # float32 against float64: only pixels within a hair of a face may differ
    assert np.mean(got == ref_all) > 0.998
    assert not got[:2, :5].any()


def test_gpu_depth_rule_matches_cpu_rule():
    """The GPU path's depth / sky / alpha rule is the rule of p4dsim.render.frames."""
    from p4dsim.render.frames import depth_rule
    from p4dsim.render.gsplat.renderer import depth_rule_torch

    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 80.0, (2, 30, 40)).astype(np.float32)
    alpha = rng.uniform(0.0, 1.0, depth.shape).astype(np.float32)
    sky = (alpha * rng.choice([0.0, 0.2, 0.9, 1.0], depth.shape)).astype(np.float32)
    got = depth_rule_torch(torch.as_tensor(depth), torch.as_tensor(alpha), torch.as_tensor(sky))
    for i in range(2):
        np.testing.assert_array_equal(got[i].numpy(), depth_rule(depth[i], alpha[i], sky[i]))
    assert np.isinf(got.numpy()).any() and (got.numpy() == 0).any()
