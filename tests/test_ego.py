import numpy as np

from p4dsim.geometry import yaw_of
from p4dsim.scenario.ego import constant_velocity_base, ego_poses, log_base, ramp
from p4dsim.scenario.model import EgoModel


def test_ramp_profiles():
    t = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(ramp(t, 0.0, 1.0, "linear"), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(ramp(t, 0.0, 1.0, "smoothstep"), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(ramp(t, 0.0, 1.0, "cosine"), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(ramp(np.array([0.25]), 0.0, 1.0, "smoothstep"), [0.15625])
    np.testing.assert_allclose(
        ramp(np.array([0.25]), 0.0, 1.0, "cosine"), [0.5 - 0.5 * np.cos(np.pi / 4)]
    )
    np.testing.assert_allclose(ramp(t, 0.5, 0.0, "linear"), [0, 0, 1, 1, 1])


def test_lateral_offset_on_straight_path():
    base = constant_velocity_base(np.array([10.0, 0.0, 0.0]))
    model = EgoModel.model_validate(
        {
            "base": "constant_velocity",
            "perturbations": [
                {
                    "type": "lateral_offset",
                    "offset_m": 2.0,
                    "start_s": 0.5,
                    "ramp_s": 1.0,
                    "profile": "linear",
                }
            ],
        }
    )
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    P = ego_poses(model, base, t)
    np.testing.assert_allclose(P[:, 0, 3], 10 * t, atol=1e-9)
    np.testing.assert_allclose(P[:, 1, 3], [0, 0, 1.0, 2.0, 2.0], atol=1e-9)
    # Heading follows the path: during the linear ramp, atan(2 m/s lateral / 10 m/s).
    np.testing.assert_allclose(yaw_of(P)[2], np.arctan2(2.0, 10.0), atol=1e-6)
    np.testing.assert_allclose(yaw_of(P)[4], 0.0, atol=1e-6)


def test_speed_scale_time_warp():
    base = constant_velocity_base(np.array([10.0, 0.0, 0.0]))
    model = EgoModel.model_validate(
        {
            "base": "constant_velocity",
            "perturbations": [{"type": "speed_scale", "scale": 0.5, "start_s": 1.0, "ramp_s": 0.0}],
        }
    )
    P = ego_poses(model, base, np.array([1.0, 3.0]))
    np.testing.assert_allclose(P[:, 0, 3], [10.0, 10.0 + 2 * 5.0], atol=1e-2)


def test_log_base_follows_logged_poses():
    from p4dsim.geometry import pose_from_xyz_yaw

    times = np.array([-0.1, 0.0, 0.1, 0.2])
    poses = np.stack([pose_from_xyz_yaw([8 * s, 0.1 * s, 0], 0.0) for s in times])
    fn = log_base(times, poses)
    P = fn(np.array([0.05, 0.3]))
    np.testing.assert_allclose(P[:, 0, 3], [0.4, 2.4], atol=1e-9)
