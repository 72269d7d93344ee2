"""Track histories and per-frame box motion from boxes labelled frame by frame.

Boxes of one track id, given in the ego frame of each frame, are moved into the log's world
frame with ``T_world_ego`` of their frame (logs without poses use identity poses, so their
"world" is the moving ego frame and motions are relative to the ego). Derivatives come from
:func:`p4dsim_kitti.motion.track_derivatives` and are expressed back in the axes of each
frame's ego frame, as :class:`p4dsim.types.Box3D` wants.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from p4dsim.geometry import pose_from_xyz_yaw, yaw_of
from p4dsim.types import Box3D, Track
from p4dsim_kitti.motion import track_derivatives


def _finite_or_none(v: np.ndarray) -> np.ndarray | None:
    return None if not np.all(np.isfinite(v)) else np.asarray(v, dtype=np.float64)


def build_tracks(
    boxes: dict[int, list[Box3D]],
    timestamps_us: np.ndarray,
    T_world_ego: np.ndarray,
) -> tuple[dict[str, Track], dict[int, list[Box3D]]]:
    """Tracks and boxes with motion from per-frame ego-frame ``boxes`` ({frame: [Box3D]}).

    timestamps_us: [F] int64 per frame; T_world_ego: [F, 4, 4] per frame. Returns
    (tracks keyed by track id in the world frame, {frame: boxes with velocity, acceleration and
    yaw_rate filled where the track has enough samples}).
    """
    per_track: dict[str, list[tuple[int, Box3D]]] = {}
    for f in sorted(boxes):
        for b in boxes[f]:
            per_track.setdefault(b.track_id, []).append((f, b))
    tracks: dict[str, Track] = {}
    out: dict[int, list[Box3D]] = {f: [] for f in boxes}
    for tid, items in per_track.items():
        items.sort(key=lambda fb: fb[0])
        frames = np.array([f for f, _ in items])
        T_box_ego = pose_from_xyz_yaw(
            np.stack([b.center for _, b in items]), np.array([b.yaw for _, b in items])
        )
        T_wb = T_world_ego[frames] @ T_box_ego
        ts = np.asarray(timestamps_us, dtype=np.int64)[frames]
        der = track_derivatives((ts - ts[0]) * 1e-6, T_wb[:, :3, 3], yaw_of(T_wb))
        sizes = np.stack([b.size for _, b in items])
        tracks[tid] = Track(
            track_id=tid,
            label=items[0][1].label,
            timestamps_us=ts,
            T_world_box=T_wb,
            size=np.median(sizes, axis=0),
        )
        for k, (f, b) in enumerate(items):
            R_we = T_world_ego[f][:3, :3]
            vel = _finite_or_none(R_we.T @ der.velocity[k])
            acc = _finite_or_none(R_we.T @ der.acceleration[k])
            yr = float(der.yaw_rate[k]) if np.isfinite(der.yaw_rate[k]) else None
            out[f].append(dataclasses.replace(b, velocity=vel, acceleration=acc, yaw_rate=yr))
    return tracks, out
