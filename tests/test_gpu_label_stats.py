"""The GPU backend's label statistics (pixel counts, 2D boxes, the inside-the-box test) are
plain torch: checked here on the CPU against the numpy rules of :mod:`p4dsim.labels`."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.geometry import inv_pose, make_pose, rot_z
from p4dsim.labels import BOX_TOL_M, box2d_from_mask, inside_box_mask

torch = pytest.importorskip("torch")


def test_key_stats_match_masks():
    from p4dsim.render.gsplat_backend import _key_stats

    rng = np.random.default_rng(0)
    B, A, H, W = 3, 4, 20, 30
    masks = np.zeros((B, A, H, W), bool)
    for b in range(B):
        for a in range(A - 1):  # the last actor stays empty
            y, x = rng.integers(0, H - 5), rng.integers(0, W - 5)
            masks[b, a, y : y + rng.integers(1, 6), x : x + rng.integers(1, 6)] = True
            masks[b, a] &= rng.uniform(size=(H, W)) < 0.8
    b, a, h, w = np.nonzero(masks)
    key = torch.as_tensor(b * A + a)
    counts, boxes = _key_stats(key, torch.as_tensor(w), torch.as_tensor(h), B * A, (B, A))
    for bi in range(B):
        for ai in range(A):
            m = masks[bi, ai]
            assert counts[bi, ai] == m.sum()
            ref = box2d_from_mask(m)
            np.testing.assert_array_equal(boxes[bi, ai].numpy(), ref if ref else [0, 0, 0, 0])


def test_inside_points_matches_inside_box_mask():
    from p4dsim.render.gsplat_backend import _inside_points

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
    h, w = np.nonzero(np.ones((H, W), bool))
    T_bc = torch.as_tensor((inv_pose(T_world_box) @ T_world_cam).astype(np.float32))
    got = _inside_points(
        torch.as_tensor(depth[h, w]),
        torch.as_tensor(w),
        torch.as_tensor(h),
        K,
        T_bc.expand(len(h), 4, 4),
        torch.as_tensor(size / 2 + BOX_TOL_M, dtype=torch.float32).expand(len(h), 3),
    ).numpy()
    # float32 against float64: only pixels within a hair of a face may differ
    assert np.mean(got.reshape(H, W) == ref) > 0.998
    assert not got.reshape(H, W)[:2, :5].any()
