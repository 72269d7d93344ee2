"""Auto actors on toytown, its labels withheld: detection recall and BEV IoU against the
world's true vehicles, speed errors, and the auto actors flowing into scenes and labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from shapely.geometry import Polygon

from p4dsim.geometry import box_corners, inv_pose, yaw_of
from p4dsim.perception.track import detect
from p4dsim.source import SourceSpec
from p4dsim.types import Frame, Log

#: (seed, source frame index) pairs; index >= 3 so three previous sweeps exist
CASES = [(0, 4), (2, 8)]
W, H = 64, 20


class WithheldLog(Log):
    """A toytown log that exposes only what a label-free log has: LiDAR sweeps and ego poses.
    It records every frame index asked for."""

    def __init__(self, inner: Log):
        self.inner = inner
        self.dataset = inner.dataset
        self.log_id = inner.log_id
        self.asked: list[int] = []

    def __len__(self) -> int:
        return len(self.inner)

    def frame(self, index: int) -> Frame:
        self.asked.append(int(index))
        f = self.inner.frame(index)
        return dataclasses.replace(f, boxes=[], extras={})

    def ego_trajectory(self):
        return self.inner.ego_trajectory()


def bev(center, size, yaw) -> Polygon:
    return Polygon(box_corners(np.asarray(center), np.asarray(size), float(yaw))[:4, :2])


def bev_iou(a: Polygon, b: Polygon) -> float:
    return float(a.intersection(b).area / max(a.union(b).area, 1e-9))


@pytest.fixture(scope="module")
def results():
    out = []
    for seed, idx in CASES:
        # the log is longer than the source frame: later frames exist but must not be used
        inner = SourceSpec.parse(
            f"toytown:?seed={seed}&frames={idx + 4}&width={W}&height={H}"
        ).open()
        log = WithheldLog(inner)
        dets = detect(log, idx)
        t = inner.time(idx)
        T_ego_world = inv_pose(inner.world.ego_pose(t))
        truth = []
        for st in inner.world.vehicles(t):
            T = T_ego_world @ st.T_world_box
            truth.append((st, T, T_ego_world[:3, :3] @ st.velocity))
        out.append((log, idx, dets, truth))
    return out


def test_never_uses_later_frames(results):
    for log, idx, _, _ in results:
        assert log.asked and max(log.asked) == idx
        assert sorted(set(log.asked)) == [idx - 3, idx - 2, idx - 1, idx]


def test_recall_and_speed(results):
    found, total, speed_err = 0, 0, []
    for _, _, dets, truth in results:
        polys = [bev(d.cluster.center, d.cluster.size, d.yaw) for d in dets]
        for _st, T, v in truth:
            if np.hypot(T[0, 3], T[1, 3]) > 40.0:
                continue
            total += 1
            p = bev(T[:3, 3], _st.size, yaw_of(T))
            ious = [bev_iou(p, q) for q in polys]
            k = int(np.argmax(ious)) if ious else -1
            if k < 0 or ious[k] < 0.5:
                continue
            found += 1
            if len(dets[k].cluster.points) >= 50:
                speed_err.append(abs(dets[k].speed - float(np.hypot(v[0], v[1]))))
    assert total >= 8
    assert found / total >= 0.9, (found, total)
    assert len(speed_err) >= 6
    assert float(np.median(speed_err)) <= 0.5, speed_err
    # the braking lead vehicle and every moving car: velocities point the right way
    for _, _, dets, truth in results:
        for _st, T, v in truth:
            if np.hypot(T[0, 3], T[1, 3]) > 40.0 or np.hypot(v[0], v[1]) < 1.0:
                continue
            d = min(dets, key=lambda d: np.hypot(*(d.cluster.center[:2] - T[:2, 3])))
            assert np.dot(d.velocity[:2], v[:2]) > 0.9 * np.dot(v[:2], v[:2])
            assert np.cos(d.yaw - yaw_of(T)) > 0.95  # heading resolved along the motion


def test_boxes_are_auto_and_static_ones_flagged(results):
    for _, _, dets, _ in results:
        for i, d in enumerate(dets):
            b = d.box(f"auto{i}")
            assert b.source == "auto" and 0.0 < b.confidence <= 1.0
            if d.static:
                assert d.matched == 0 and b.confidence <= 0.5 and d.speed == 0.0
