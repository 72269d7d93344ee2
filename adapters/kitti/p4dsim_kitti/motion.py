"""Velocities, accelerations and yaw rates of tracked boxes by finite differences.

For each sample of a track, a polynomial in time is fitted by least squares to the
neighbouring samples (up to ``half_window`` on each side, no farther than ``max_span_s``):
quadratic with three or more samples (velocity = first, acceleration = twice the second
coefficient), linear with two (acceleration unknown). With evenly spaced samples and
``half_window=1`` this is exactly the central difference; wider windows average out label
jitter. Unknown values are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TrackDerivatives:
    """Per-sample derivatives of one track: velocity [T, 3] m/s, acceleration [T, 3] m/s²,
    yaw_rate [T] rad/s, all in the frame the positions were given in; NaN where unknown."""

    velocity: np.ndarray
    acceleration: np.ndarray
    yaw_rate: np.ndarray


def track_derivatives(
    times_s: np.ndarray,
    positions: np.ndarray,
    yaws: np.ndarray,
    half_window: int = 2,
    max_span_s: float = 0.6,
) -> TrackDerivatives:
    """Derivatives of positions [T, 3] (metres) and yaws [T] (radians) sampled at strictly
    increasing ``times_s`` [T] (seconds)."""
    t = np.asarray(times_s, dtype=np.float64)
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    yaw = np.unwrap(np.asarray(yaws, dtype=np.float64))
    n = len(t)
    vel = np.full((n, 3), np.nan)
    acc = np.full((n, 3), np.nan)
    yaw_rate = np.full(n, np.nan)
    for k in range(n):
        lo, hi = max(0, k - half_window), min(n, k + half_window + 1)
        idx = np.arange(lo, hi)
        idx = idx[np.abs(t[idx] - t[k]) <= max_span_s]
        if len(idx) < 2:
            continue
        dt = t[idx] - t[k]
        deg = 2 if len(idx) >= 3 else 1
        A = np.vander(dt, deg + 1, increasing=True)  # columns 1, dt, dt²
        coef, *_ = np.linalg.lstsq(A, np.column_stack([p[idx], yaw[idx]]), rcond=None)
        vel[k] = coef[1, :3]
        yaw_rate[k] = coef[1, 3]
        if deg == 2:
            acc[k] = 2.0 * coef[2, :3]
    return TrackDerivatives(velocity=vel, acceleration=acc, yaw_rate=yaw_rate)
