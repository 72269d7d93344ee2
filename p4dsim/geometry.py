"""Small geometry helpers: SE(3) poses, quaternions, yaw rotations and pinhole projection.

Conventions (see :mod:`p4dsim.types`): poses are 4×4 float64 ``T_a_b`` mapping points from
frame b to frame a; quaternions are (w, x, y, z), unit norm; ego/world frames are x forward,
y left, z up; camera frames are OpenCV (x right, y down, z forward).
"""

from __future__ import annotations

import numpy as np

#: Rotation taking OpenCV camera axes (x right, y down, z forward) to a vehicle-style frame
#: (x forward, y left, z up): ``R_vehicle_opencv @ p_cv``.
R_FLU_FROM_RDF = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def make_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4×4 pose from a rotation [..., 3, 3] and a translation [..., 3]."""
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    T = np.zeros(R.shape[:-2] + (4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def inv_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid poses [..., 4, 4]."""
    T = np.asarray(T, dtype=np.float64)
    R = T[..., :3, :3]
    t = T[..., :3, 3]
    Rt = np.swapaxes(R, -1, -2)
    return make_pose(Rt, -np.einsum("...ij,...j->...i", Rt, t))


def transform_points(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply pose T [4, 4] to points [N, 3]."""
    T = np.asarray(T, dtype=np.float64)
    return np.asarray(pts, dtype=np.float64) @ T[:3, :3].T + T[:3, 3]


def rot_z(yaw: np.ndarray | float) -> np.ndarray:
    """Rotation matrices [..., 3, 3] about +z by ``yaw`` radians (counter-clockwise seen from above)."""
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.zeros(yaw.shape + (3, 3))
    R[..., 0, 0] = c
    R[..., 0, 1] = -s
    R[..., 1, 0] = s
    R[..., 1, 1] = c
    R[..., 2, 2] = 1.0
    return R


def pose_from_xyz_yaw(xyz: np.ndarray, yaw: np.ndarray | float) -> np.ndarray:
    """Poses [..., 4, 4] from positions [..., 3] and yaw angles [...]."""
    return make_pose(rot_z(yaw), xyz)


def yaw_of(T: np.ndarray) -> np.ndarray:
    """Yaw (rotation about z) of poses [..., 4, 4], radians in (-pi, pi]."""
    T = np.asarray(T)
    return np.arctan2(T[..., 1, 0], T[..., 0, 0])


def wrap_angle(a: np.ndarray | float) -> np.ndarray:
    """Angles wrapped to (-pi, pi]."""
    a = np.asarray(a, dtype=np.float64)
    return np.pi - np.mod(np.pi - a, 2.0 * np.pi)


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] from quaternions [..., 4] (w, x, y, z); normalised first."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    R = np.empty(q.shape[:-1] + (3, 3))
    R[..., 0, 0] = 1 - 2 * (y * y + z * z)
    R[..., 0, 1] = 2 * (x * y - w * z)
    R[..., 0, 2] = 2 * (x * z + w * y)
    R[..., 1, 0] = 2 * (x * y + w * z)
    R[..., 1, 1] = 1 - 2 * (x * x + z * z)
    R[..., 1, 2] = 2 * (y * z - w * x)
    R[..., 2, 0] = 2 * (x * z - w * y)
    R[..., 2, 1] = 2 * (y * z + w * x)
    R[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return R


def rotmat_to_quat(R: np.ndarray) -> np.ndarray:
    """Quaternions [..., 4] (w, x, y, z), w ≥ 0, from rotation matrices [..., 3, 3] (vectorised)."""
    R = np.asarray(R, dtype=np.float64)
    m = R.reshape(-1, 3, 3)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    # Shepperd's method: per matrix, solve for the numerically largest component first.
    cand = np.stack([m00 + m11 + m22, m00, m11, m22], axis=1)
    k = np.argmax(cand, axis=1)
    q = np.empty((m.shape[0], 4))
    s0 = np.sqrt(np.maximum(1.0 + m00 + m11 + m22, 1e-12)) * 2
    s1 = np.sqrt(np.maximum(1.0 + m00 - m11 - m22, 1e-12)) * 2
    s2 = np.sqrt(np.maximum(1.0 + m11 - m00 - m22, 1e-12)) * 2
    s3 = np.sqrt(np.maximum(1.0 + m22 - m00 - m11, 1e-12)) * 2
    d21, d12 = m[:, 2, 1], m[:, 1, 2]
    d02, d20 = m[:, 0, 2], m[:, 2, 0]
    d10, d01 = m[:, 1, 0], m[:, 0, 1]
    c0 = np.stack([0.25 * s0, (d21 - d12) / s0, (d02 - d20) / s0, (d10 - d01) / s0], axis=1)
    c1 = np.stack([(d21 - d12) / s1, 0.25 * s1, (d01 + d10) / s1, (d02 + d20) / s1], axis=1)
    c2 = np.stack([(d02 - d20) / s2, (d01 + d10) / s2, 0.25 * s2, (d12 + d21) / s2], axis=1)
    c3 = np.stack([(d10 - d01) / s3, (d02 + d20) / s3, (d12 + d21) / s3, 0.25 * s3], axis=1)
    q = np.choose(k[:, None], [c0, c1, c2, c3])
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.reshape(R.shape[:-2] + (4,))


def hamilton(a: tuple, b: tuple) -> tuple:
    """Components (w, x, y, z) of the Hamilton product a ⊗ b from the components of a and b
    (numpy arrays or torch tensors alike)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b of quaternions [..., 4] (w, x, y, z)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.stack(hamilton(np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0)), axis=-1)


def project(K: np.ndarray, pts_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points [N, 3] (OpenCV) with intrinsics K [3, 3].

    Returns pixel coordinates [N, 2] (u right, v down; pixel centres at integer + 0.5 is NOT
    assumed: a point on the optical axis lands at (cx, cy)) and depths z [N]. Points with
    z ≤ 0 get non-finite pixels.
    """
    pts_cam = np.asarray(pts_cam, dtype=np.float64)
    z = pts_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * pts_cam[:, 0] / z + K[0, 2]
        v = K[1, 1] * pts_cam[:, 1] / z + K[1, 2]
    bad = z <= 0
    u[bad] = np.nan
    v[bad] = np.nan
    return np.stack([u, v], axis=1), z


#: corner signs [8, 3] (length, width, height) of :func:`box_corners`' order
BOX_CORNER_SIGNS = np.array(
    [
        [1, 1, -1],
        [-1, 1, -1],
        [-1, -1, -1],
        [1, -1, -1],
        [1, 1, 1],
        [-1, 1, 1],
        [-1, -1, 1],
        [1, -1, 1],
    ],
    dtype=np.float64,
)


def box_corners(center: np.ndarray, size: np.ndarray, yaw: float) -> np.ndarray:
    """The 8 corners [8, 3] of an upright box (centre, size = length/width/height, yaw about z).

    Order: bottom face then top face, each counter-clockwise from (+l/2, +w/2) seen from above.
    """
    local = BOX_CORNER_SIGNS * np.asarray(size, dtype=np.float64) / 2
    return local @ rot_z(yaw).T + np.asarray(center, dtype=np.float64)


def ray_box_interval(
    origin: np.ndarray, dirs: np.ndarray, half: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Slab test of rays ``origin + t * dirs`` (box frame; origin [3], dirs [n, 3]) against the
    axis-aligned box of half sizes ``half`` [3] centred at the origin of that frame: (tmin [n],
    tmax [n]), the ray parameters where each ray enters and leaves the box's slabs. A ray meets
    the box where ``tmax >= max(tmin, 0)``; axis-parallel rays ignore the slabs they never
    cross (NaN ratios skipped). Float64 inputs go through a compiled kernel with the same
    arithmetic (:mod:`p4dsim.raybox`)."""
    from p4dsim.raybox import ray_box_interval_fast

    fast = ray_box_interval_fast(origin, dirs, half)
    if fast is not None:
        return fast
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - origin) / dirs
        t2 = (half - origin) / dirs
    return np.nanmax(np.minimum(t1, t2), axis=1), np.nanmin(np.maximum(t1, t2), axis=1)
