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
    """Quaternions [..., 4] (w, x, y, z), w ≥ 0, from rotation matrices [..., 3, 3]."""
    R = np.asarray(R, dtype=np.float64)
    m = R.reshape(-1, 3, 3)
    q = np.empty((m.shape[0], 4))
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    # Choose, per matrix, the numerically largest of the four candidate components.
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    k = np.argmax(cand, axis=1)
    for i in range(m.shape[0]):
        a = m[i]
        if k[i] == 0:
            s = np.sqrt(1.0 + tr[i]) * 2
            q[i] = [0.25 * s, (a[2, 1] - a[1, 2]) / s, (a[0, 2] - a[2, 0]) / s, (a[1, 0] - a[0, 1]) / s]
        elif k[i] == 1:
            s = np.sqrt(1.0 + a[0, 0] - a[1, 1] - a[2, 2]) * 2
            q[i] = [(a[2, 1] - a[1, 2]) / s, 0.25 * s, (a[0, 1] + a[1, 0]) / s, (a[0, 2] + a[2, 0]) / s]
        elif k[i] == 2:
            s = np.sqrt(1.0 + a[1, 1] - a[0, 0] - a[2, 2]) * 2
            q[i] = [(a[0, 2] - a[2, 0]) / s, (a[0, 1] + a[1, 0]) / s, 0.25 * s, (a[1, 2] + a[2, 1]) / s]
        else:
            s = np.sqrt(1.0 + a[2, 2] - a[0, 0] - a[1, 1]) * 2
            q[i] = [(a[1, 0] - a[0, 1]) / s, (a[0, 2] + a[2, 0]) / s, (a[1, 2] + a[2, 1]) / s, 0.25 * s]
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(R.shape[:-2] + (4,))


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b of quaternions [..., 4] (w, x, y, z)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


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


def box_corners(center: np.ndarray, size: np.ndarray, yaw: float) -> np.ndarray:
    """The 8 corners [8, 3] of an upright box (centre, size = length/width/height, yaw about z).

    Order: bottom face then top face, each counter-clockwise from (+l/2, +w/2) seen from above.
    """
    l, w, h = np.asarray(size, dtype=np.float64)
    x = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * l / 2
    y = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * w / 2
    z = np.array([-1, -1, -1, -1, 1, 1, 1, 1]) * h / 2
    local = np.stack([x, y, z], axis=1)
    return local @ rot_z(yaw).T + np.asarray(center, dtype=np.float64)
