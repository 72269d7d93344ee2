"""Scene save/load: the PLY + sidecar round trip is bit-exact, and the CLI writes it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

import p4dsim
from p4dsim.scene.builder import build_scene
from p4dsim.scene.ply import SH_C0, _read_ply, save_scene
from p4dsim.source import SourceSpec


@pytest.fixture(scope="module")
def scene():
    log = SourceSpec.parse("toytown:?width=160&height=48").open()
    return build_scene(log.frame(0))


def _same_set(a, b):
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.dtype == y.dtype and x.shape == y.shape, f.name
        assert np.array_equal(x.view(np.uint32), y.view(np.uint32)), f.name


def test_ply_round_trip_is_bit_exact(scene, tmp_path):
    path = save_scene(scene, tmp_path / "scene.ply")
    back = p4dsim.load_scene(path)
    _same_set(scene.static, back.static)
    np.testing.assert_array_equal(scene.is_sky, back.is_sky)
    assert [a.track_id for a in back.actors] == [a.track_id for a in scene.actors]
    t = np.linspace(0, 2, 5)
    for a, b in zip(scene.actors, back.actors, strict=True):
        _same_set(a.gaussians, b.gaussians)
        assert a.label == b.label and np.array_equal(a.size, b.size)
        np.testing.assert_array_equal(a.motion.poses(t), b.motion.poses(t))
    np.testing.assert_array_equal(scene.camera.K, back.camera.K)
    np.testing.assert_array_equal(scene.T_log_scene, back.T_log_scene)
    assert back.source == scene.source and back.timestamp_us == scene.timestamp_us
    np.testing.assert_array_equal(scene.ground[0], back.ground[0])
    # The standard 3DGS fields decode to the same values (to float32 rounding), with actor
    # Gaussians placed at their t = 0 pose.
    rec = _read_ply(path)
    n = len(scene.static)
    col = np.stack([rec[f"f_dc_{k}"][:n] for k in range(3)], axis=1) * SH_C0 + 0.5
    np.testing.assert_allclose(col, scene.static.colors, atol=1e-6)
    op = 1 / (1 + np.exp(-rec["opacity"][:n].astype(np.float64)))
    np.testing.assert_allclose(op, scene.static.opacities, atol=1e-5)
    sc = np.exp(np.stack([rec[f"scale_{k}"][:n] for k in range(3)], axis=1))
    np.testing.assert_allclose(sc, scene.static.scales, rtol=1e-5)
    a0 = scene.actors[0]
    g0 = a0.gaussians.transformed(a0.motion.pose(0.0))
    i0 = np.arange(n, n + len(a0.gaussians))  # static first, then each actor in order
    xyz = np.stack([rec["x"][i0], rec["y"][i0], rec["z"][i0]], axis=1)
    np.testing.assert_allclose(xyz, g0.means, atol=1e-4)


def test_build_cli_writes_scene(tmp_path):
    out = tmp_path / "s.ply"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "p4dsim.cli",
            "build",
            "toytown:?width=96&height=32",
            "--frame",
            "1",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    s = p4dsim.load_scene(out)
    assert s.source.frame_index == 1 and s.num_gaussians() > 96 * 32
