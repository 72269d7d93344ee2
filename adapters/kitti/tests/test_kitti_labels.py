"""KITTI label rows <-> Box3D: exact round trips and the yaw convention."""

from __future__ import annotations

import numpy as np
import pytest
from p4dsim_kitti.calib import KittiCalib
from p4dsim_kitti.labels import (
    box_to_label,
    format_label_line,
    label_to_box,
    parse_label_line,
    read_label_file,
    rotation_y_from_yaw,
    yaw_from_rotation_y,
)

from p4dsim.errors import SourceError
from p4dsim.geometry import make_pose, transform_points

# rect0 (x right, y down, z forward) -> velodyne (x forward, y left, z up), nominal
R_VELO_RECT = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _perturbed_T_velo_rect0(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.normal(scale=0.006, size=3)  # a few tenths of a degree, like real calibrations
    th = np.linalg.norm(w)
    k = w / th
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    dR = np.eye(3) + np.sin(th) * Kx + (1 - np.cos(th)) * Kx @ Kx
    return make_pose(dR @ R_VELO_RECT, [0.27, -0.01, -0.07])


def devkit_corners_rect(label) -> np.ndarray:
    """Box corners [8, 3] in rect0 as the KITTI object devkit computes them."""
    h, w, l = label.dimensions
    x = np.array([l, l, -l, -l, l, l, -l, -l]) / 2
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h])
    z = np.array([w, -w, -w, w, w, -w, -w, w]) / 2
    c, s = np.cos(label.rotation_y), np.sin(label.rotation_y)
    R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (R @ np.stack([x, y, z])).T + label.location


def test_nominal_calibration_gives_textbook_yaw():
    T = make_pose(R_VELO_RECT, np.zeros(3))
    for ry in np.linspace(-3.1, 3.1, 13):
        yaw = yaw_from_rotation_y(ry, T)
        assert np.isclose(np.cos(yaw), np.cos(-ry - np.pi / 2), atol=1e-12)
        assert np.isclose(np.sin(yaw), np.sin(-ry - np.pi / 2), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotation_y_inverse_is_exact(seed):
    T = _perturbed_T_velo_rect0(seed)
    for ry in np.linspace(-np.pi + 1e-3, np.pi, 37):
        back = rotation_y_from_yaw(yaw_from_rotation_y(ry, T), T)
        assert abs(np.angle(np.exp(1j * (back - ry)))) < 1e-12


def test_box_corners_match_devkit_corners():
    """Box3D corners mapped into rect0 equal the devkit's corners up to the tiny tilt between
    rect0's vertical and the ego z axis (a wrong yaw convention would be off by metres)."""
    T = _perturbed_T_velo_rect0(3)
    T_rect_velo = np.linalg.inv(T)
    row = "Car 0.00 0 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57"
    for ry in (1.57, -2.4, 0.3):
        lb = parse_label_line(row)
        lb.rotation_y = ry
        box = label_to_box(lb, T, "0")
        ours = transform_points(T_rect_velo, box.corners())
        ref = devkit_corners_rect(lb)
        # match corners as sets (orderings differ): nearest reference corner for each
        d = np.linalg.norm(ours[:, None] - ref[None], axis=2).min(axis=1)
        assert d.max() < 0.1, d


def test_label_box_label_round_trip_exact():
    T = _perturbed_T_velo_rect0(4)
    rows = [
        "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01",
        "Truck 0.00 0 -1.57 599.41 156.40 629.75 189.25 2.85 2.63 12.34 0.47 1.49 69.44 -1.56",
        "Cyclist 0.00 3 -1.65 676.60 163.95 688.98 193.93 1.86 0.60 2.02 4.59 1.32 45.84 -1.55",
        "Car 0.5 1 -3.09 0 190.13 700.07 223.39 1.41 1.58 4.36 -3.18 2.27 34.38 3.1",
    ]
    for row in rows:
        lb = parse_label_line(row)
        box = label_to_box(lb, T, "t")
        back = box_to_label(box, T, lb.type, lb.bbox, lb.truncated, lb.occluded)
        assert back.type == lb.type
        np.testing.assert_allclose(back.location, lb.location, atol=1e-12)
        np.testing.assert_allclose(back.dimensions, lb.dimensions, atol=1e-12)
        assert abs(np.angle(np.exp(1j * (back.rotation_y - lb.rotation_y)))) < 1e-12
        # alpha is recomputed; the file's value is rounded to 2 decimals
        assert abs(np.angle(np.exp(1j * (back.alpha - lb.alpha)))) < 0.01
        again = parse_label_line(format_label_line(back, decimals=6))
        np.testing.assert_allclose(again.location, lb.location, atol=1e-6)
        assert abs(again.rotation_y - back.rotation_y) < 1e-6


def test_tracking_rows_and_errors(tmp_path):
    row = "3 7 Van 0 1 -1.2 10 20 30 40 1.5 1.6 4.0 1.0 1.6 20.0 0.5"
    lb = parse_label_line(row, tracking=True)
    assert (lb.frame, lb.track_id, lb.type) == (3, 7, "Van")
    bad = tmp_path / "0000.txt"
    bad.write_text(row + "\n3 8 Car 0 1\n")
    with pytest.raises(SourceError, match=r"0000.txt:2"):
        read_label_file(bad, tracking=True)
    with pytest.raises(SourceError, match="does not exist"):
        read_label_file(tmp_path / "nope.txt")


def test_calibration_projection_equals_P2(tmp_path):
    """K and T_ego_camera of the p4dsim camera reproduce KITTI's P2 @ R0 @ Tr projection
    (shifted by half a pixel into p4dsim's pixel convention)."""
    calib_text = (
        "P0: 7.07e+02 0 6.04e+02 0 0 7.07e+02 1.80e+02 0 0 0 1 0\n"
        "P2: 7.070493e+02 0 6.040814e+02 4.575831e+01 0 7.070493e+02 1.805066e+02 "
        "-3.454157e-01 0 0 1 4.981016e-03\n"
        "R0_rect: 9.999128e-01 1.009263e-02 -8.511932e-03 -1.012729e-02 9.999406e-01 "
        "-4.037671e-03 8.470675e-03 4.123522e-03 9.999556e-01\n"
        "Tr_velo_to_cam: 6.927964e-03 -9.999722e-01 -2.757829e-03 -2.457729e-02 "
        "-1.162982e-03 2.749836e-03 -9.999955e-01 -6.127237e-02 9.999753e-01 "
        "6.931141e-03 -1.143899e-03 -3.321029e-01\n"
    )
    path = tmp_path / "000000.txt"
    path.write_text(calib_text)
    calib = KittiCalib.from_file(path)
    cam = calib.camera(1242, 375)
    rng = np.random.default_rng(0)
    pts = np.column_stack(
        [rng.uniform(5, 60, 50), rng.uniform(-10, 10, 50), rng.uniform(-2, 2, 50)]
    )
    R0 = np.eye(4)
    R0[:3, :3] = calib.R0_rect
    h = (calib.P2 @ R0 @ calib.T_cam0_velo @ np.column_stack([pts, np.ones(50)]).T).T
    ref = h[:, :2] / h[:, 2:3] + 0.5
    pc = transform_points(np.linalg.inv(cam.T_ego_camera), pts)
    ours = (cam.K @ pc.T).T
    ours = ours[:, :2] / ours[:, 2:3]
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert calib.T_velo_imu is None
