"""A saved scene PLY opens in other people's 3DGS tools: a reader written to the reference
3DGS loader's rules (properties by name, SH degree 3: exactly 45 f_rest_*) and a fixed-layout
reader (62 float32 per vertex, as SIBR's viewer reads it); every value finite; colours equal
the source image where a Gaussian sits on a pixel's ray."""

from __future__ import annotations

import json

import numpy as np
import pytest

import p4dsim
from p4dsim.geometry import inv_pose
from p4dsim.scene.builder import build_scene
from p4dsim.scene.ply import save_scene
from p4dsim.source import SourceSpec

SH_C0 = 0.28209479177387814
FIXED_LAYOUT = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
FIXED_LAYOUT += [f"f_rest_{i}" for i in range(45)]
FIXED_LAYOUT += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def _header(path):
    """(vertex count, [(type, name)], header length in bytes), parsed independently."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    lines = data[:end].decode("ascii").splitlines()
    assert lines[0] == "ply" and lines[1] == "format binary_little_endian 1.0"
    n, props = None, []
    for ln in lines[2:]:
        w = ln.split()
        if w[0] == "element":
            assert w[1] == "vertex", "only a vertex element"
            n = int(w[2])
        elif w[0] == "property":
            props.append((w[1], w[2]))
    return n, props, end


def reference_3dgs_load(path, max_sh_degree=3):
    """The reference loader's rules (graphdeco-inria gaussian-splatting, load_ply):
    properties looked up by name; f_rest_* sorted by index, exactly 3·(D+1)²−3 of them;
    scale_* and rot* by name."""
    n, props, start = _header(path)
    types = {"float": "<f4", "double": "<f8", "int": "<i4", "uchar": "u1"}
    dtype = np.dtype([(name, types[t]) for t, name in props])
    el = np.frombuffer(path.read_bytes()[start:], dtype=dtype, count=n)
    names = [name for _, name in props]
    xyz = np.stack([el["x"], el["y"], el["z"]], axis=1)
    opacities = el["opacity"][:, None]
    dc = np.stack([el["f_dc_0"], el["f_dc_1"], el["f_dc_2"]], axis=1)
    rest = sorted(
        (p for p in names if p.startswith("f_rest_")), key=lambda s: int(s.split("_")[-1])
    )
    assert len(rest) == 3 * (max_sh_degree + 1) ** 2 - 3
    extra = np.stack([el[p] for p in rest], axis=1).reshape(n, 3, -1)
    scale = sorted(
        (p for p in names if p.startswith("scale_")), key=lambda s: int(s.split("_")[-1])
    )
    rot = sorted((p for p in names if p.startswith("rot")), key=lambda s: int(s.split("_")[-1]))
    scales = np.stack([el[p] for p in scale], axis=1)
    rots = np.stack([el[p] for p in rot], axis=1)
    return xyz, dc, extra, opacities, scales, rots


def fixed_layout_load(path):
    """62 float32 per vertex in the standard order, located by position only."""
    n, props, start = _header(path)
    assert props == [("float", name) for name in FIXED_LAYOUT]
    raw = path.read_bytes()[start:]
    assert len(raw) == n * 62 * 4, "nothing but the 62 floats of every vertex"
    return np.frombuffer(raw, dtype="<f4").reshape(n, 62)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    log = SourceSpec.parse("toytown:?width=160&height=48").open()
    frame = log.frame(0)
    scene = build_scene(frame)
    path = save_scene(scene, tmp_path_factory.mktemp("ply") / "scene.ply")
    return frame, scene, path


def test_reference_loader_reads_it(saved):
    frame, scene, path = saved
    xyz, dc, extra, op, scales, rots = reference_3dgs_load(path)
    assert len(xyz) == scene.num_gaussians()
    for a in (xyz, dc, extra, op, scales, rots):
        assert np.isfinite(a).all()
    assert not extra.any(), "view-independent colour: f_rest all zero"
    assert (np.linalg.norm(rots, axis=1) > 0.5).all()
    assert (np.exp(scales) > 0).all() and (np.exp(scales) < 1e4).all()


def test_fixed_layout_reader_reads_it(saved):
    _, scene, path = saved
    v = fixed_layout_load(path)
    assert np.isfinite(v).all()
    ref = reference_3dgs_load(path)
    np.testing.assert_array_equal(v[:, 0:3], ref[0])
    np.testing.assert_array_equal(v[:, 6:9], ref[1])
    np.testing.assert_array_equal(v[:, 54], ref[3][:, 0])
    np.testing.assert_array_equal(v[:, 58:62], ref[5])
    side = json.loads(path.with_name(path.name + ".json").read_text())
    assert side["gaussians"]["count"] == len(v)


def test_colours_match_the_source_image(saved):
    """Gaussians on a pixel's ray (projecting onto its centre) carry that pixel's colour."""
    frame, scene, path = saved
    xyz, dc, *_ = reference_3dgs_load(path)
    cam = frame.camera
    T_cam_ego = inv_pose(cam.T_ego_camera)
    pc = xyz.astype(np.float64) @ T_cam_ego[:3, :3].T + T_cam_ego[:3, 3]
    front = pc[:, 2] > 0.1
    uvw = pc[front] @ cam.K.T
    uv = uvw[:, :2] / uvw[:, 2:]
    iu, iv = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    centred = (np.abs(uv - (np.stack([iu, iv], 1) + 0.5)) < 2e-3).all(axis=1)
    centred &= (iu >= 0) & (iu < cam.width) & (iv >= 0) & (iv < cam.height)
    rgb = dc[front][centred] * SH_C0 + 0.5
    img = frame.image[iv[centred], iu[centred]].astype(np.float64) / 255.0
    match = (np.abs(rgb - img) < 2e-3).all(axis=1)
    covered = np.zeros((cam.height, cam.width), bool)
    covered[iv[centred][match], iu[centred][match]] = True
    # Every pixel has its own Gaussian on its ray with its colour (to 8-bit rounding).
    assert covered.mean() > 0.99, covered.mean()


def test_load_scene_reads_it_back_exactly(saved):
    _, scene, path = saved
    back = p4dsim.load_scene(path)
    np.testing.assert_array_equal(back.static.means, scene.static.means)
    np.testing.assert_array_equal(back.static.colors, scene.static.colors)
    assert [len(a.gaussians) for a in back.actors] == [len(a.gaussians) for a in scene.actors]
