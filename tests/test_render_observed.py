"""No empty pixel and the observed mask: the frame rule (:func:`finish_frame`), every example
scenario that runs on toytown written as a dataset, and a real KITTI 2 m lateral jump."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from p4dsim.io.codecs import decode_depth, decode_mask, encode_mask
from p4dsim.render.frames import MIN_ALPHA, finish_frame

REPO = Path(__file__).resolve().parents[1]
#: camera size of the scenario runs (small, to stay fast)
W, H = 160, 48


def _frame_parts(H=24, W=40):
    """Sky above row 8 (rendered sky Gaussians at 1000 m, observed), a road (20 m, observed)
    below, a synthesised patch (confidence 0) and a hole (nothing rendered) that touches sky
    at its top and road at its bottom."""
    rgb = np.zeros((H, W, 3), np.float32)
    depth = np.zeros((H, W), np.float32)
    alpha = np.ones((H, W), np.float32)
    sky = np.zeros((H, W), np.float32)
    conf = np.ones((H, W), np.float32)
    rgb[:8] = (0.4, 0.6, 0.9)
    depth[:8] = 1000.0
    sky[:8] = 1.0
    rgb[8:] = (0.3, 0.3, 0.3)
    depth[8:] = 20.0
    conf[16:, 30:] = 0.0  # synthesised content: rendered, not observed
    hole = np.zeros((H, W), bool)
    hole[4:14, 10:20] = True
    rgb[hole], depth[hole], alpha[hole], sky[hole], conf[hole] = 0, 0, 0, 0, 0
    return rgb, depth, alpha, sky, conf, hole


def test_finish_frame_sky_empty_and_filled():
    rgb, depth, alpha, sky, conf, hole = _frame_parts()
    im = finish_frame(rgb, depth, alpha, sky, conf)
    # Rendered sky stays sky; every other pixel, filled ones included, has a finite depth > 0.
    assert np.all(np.isinf(im.depth[:8][~hole[:8]]))
    assert np.all(np.isfinite(im.depth[hole])) and np.all(im.depth[hole] > 0)
    assert np.all(np.isfinite(im.depth[8:])) and np.all(im.depth[8:] > 0)
    # Filled pixels take the far side: the hole's upper part the sky's colour, but no hole
    # pixel the sky's distance: their depth is the road's, the farthest non-sky surface.
    top = hole.copy()
    top[8:] = False
    np.testing.assert_allclose(im.depth[hole], 20.0, rtol=1e-4)
    np.testing.assert_allclose(
        im.rgb[top], np.broadcast_to(rgb[0, 0] * 255, (top.sum(), 3)), atol=1
    )
    # Rendered pixels keep their colour and depth.
    np.testing.assert_array_equal(im.rgb[~hole], np.round(rgb[~hole] * 255))
    assert np.all(im.depth[8:][~hole[8:]] == 20.0)
    # Observed: not filled, not synthesised; coverage is its mean.
    assert not im.observed[hole].any()
    assert not im.observed[16:, 30:].any()
    expected = ~hole
    expected[16:, 30:] = False
    np.testing.assert_array_equal(im.observed, expected)
    assert im.coverage == pytest.approx(expected.mean())


def test_partly_covered_pixels():
    """A pixel below MIN_ALPHA is filled and never observed, even if all of what covers it is
    observed; above it keeps its depth and gets the fill behind it."""
    rgb, depth, alpha, sky, conf, _ = _frame_parts()
    alpha[20, 5], conf[20, 5], rgb[20, 5], depth[20, 5] = 0.4, 0.4, (0.4, 0, 0), 7.0
    alpha[20, 6], conf[20, 6], rgb[20, 6], depth[20, 6] = 0.6, 0.6, (0.6, 0, 0), 7.0
    im = finish_frame(rgb, depth, alpha, sky, conf)
    assert not im.observed[20, 5] and im.observed[20, 6]
    assert im.depth[20, 5] == pytest.approx(20.0, rel=1e-4) and im.depth[20, 6] == 7.0
    # 0.6 of red + 0.4 of the road behind it
    np.testing.assert_allclose(
        im.rgb[20, 6], np.round([153 + 0.4 * 76.5, 0.4 * 76.5, 30.6]), atol=1
    )
    assert alpha[20, 5] < MIN_ALPHA <= alpha[20, 6]


def test_mask_codec_round_trip_and_readable_without_p4dsim():
    rng = np.random.default_rng(0)
    m = rng.random((37, 53)) < 0.7
    data = encode_mask(m)
    np.testing.assert_array_equal(decode_mask(data), m)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[24] == 1  # bit depth 1 in the IHDR
    pil = pytest.importorskip("PIL.Image")
    import io

    np.testing.assert_array_equal(np.asarray(pil.open(io.BytesIO(data))) > 0, m)


def _check_dataset(out: Path) -> int:
    """Every frame row of the dataset at ``out``: no pixel without depth, the observed mask's
    mean equals coverage. Returns the number of rows."""
    t = pq.read_table(out / "frames").to_pylist()
    assert t
    for row in t:
        d = decode_depth(row["depth"], row["depth_format"], row["width"], row["height"])
        where = f"{row['variant_id']} frame {row['frame_index']}"
        assert not np.isnan(d).any() and (d > 0).all(), f"empty pixels in {where}"
        m = decode_mask(row["observed"])
        assert m.shape == (row["height"], row["width"])
        assert float(m.mean()) == pytest.approx(row["coverage"], abs=1e-6), where
    return len(t)


def _toytown_scenarios() -> list[Path]:
    from p4dsim.scenario.load import read_yaml

    return [
        p
        for p in sorted((REPO / "scenarios").glob("*.yaml"))
        if (read_yaml(p).get("source") or {}).get("adapter") == "toytown"
    ]


@pytest.mark.parametrize("path", _toytown_scenarios(), ids=lambda p: p.stem)
def test_example_scenarios_have_no_empty_pixel(path, tmp_path):
    from p4dsim.replay import replay
    from p4dsim.scenario.load import parse_scenario, read_yaml

    data = read_yaml(path)
    data["source"].update(width=W, height=H)
    data.setdefault("output", {})
    data["output"]["dir"] = str(tmp_path / "ds")
    data["output"].pop("formats", None)  # the exporters have their own tests
    sc = parse_scenario(data, str(path))
    res = replay(sc, tmp_path / "ds", scenario_path=path, device="cpu")
    assert _check_dataset(res.out_dir) == res.frames


def _kitti_root() -> Path | None:
    for base in (os.environ.get("P4DSIM_REAL_DATA"), REPO.parent / "shared" / "data"):
        if (
            base
            and (Path(base) / "kitti_raw" / "2011_09_26" / "2011_09_26_drive_0052_sync").is_dir()
        ):
            return Path(base) / "kitti_raw"
    return None


def test_kitti_2m_lateral_jump_has_no_empty_pixel():
    root = _kitti_root()
    if root is None:
        pytest.skip("KITTI raw drive 0052 not found (set P4DSIM_REAL_DATA)")
    from p4dsim.opening import build_config, open_scene
    from p4dsim.render import get_renderer
    from p4dsim.render.frames import render_each
    from p4dsim.scenario.model import Scenario
    from p4dsim.scenario.timeline import make_timeline

    sc = Scenario.model_validate(
        {
            "source": {
                "adapter": "kitti-raw",
                "path": str(root),
                "date": "2011_09_26",
                "drive": "0052",
                "frame": 5,
            },
            "duration_s": 0.2,
            "fps": 10,
            "camera": {"width": 310, "height": 94},
            "ego": {
                "base": "log",
                "perturbations": [{"type": "lateral_offset", "offset_m": 2.0, "ramp_s": 0.0}],
            },
        }
    )
    opened = open_scene(
        sc.source.model_dump(exclude_none=True), actors=sc.actors.source, config=build_config(sc)
    )
    tl = make_timeline(sc, opened.scene, opened.log, "test")
    frames = render_each(get_renderer("cpu"), opened.scene, tl, list(range(len(tl.times))))
    for fr in frames:
        assert not np.isnan(fr.depth).any() and (fr.depth > 0).all()
        assert fr.coverage == pytest.approx(float(fr.observed.mean()))
        filled = fr.alpha < MIN_ALPHA
        assert not fr.observed[filled].any()
        assert np.isfinite(fr.depth[filled]).all()


def test_gpu_frame_rule_matches_cpu_rule():
    """:func:`finish_frames_torch` (batched, the GPU path's) against :func:`finish_frame`."""
    torch = pytest.importorskip("torch")
    from p4dsim.render.gsplat.renderer import finish_frames_torch

    rng = np.random.default_rng(3)
    B, h, w = 3, 21, 34
    alpha = np.clip(rng.random((B, h, w)) * 1.5, 0, 1).astype(np.float32)
    alpha[:, 5:15, 8:20] = 0
    rgb = (rng.random((B, h, w, 3)) * alpha[..., None]).astype(np.float32)
    depth = np.where(alpha > 0, 2 + 80 * rng.random((B, h, w)), 0).astype(np.float32)
    sky = (alpha * (rng.random((B, h, w)) < 0.3)).astype(np.float32)
    sky[0] = 0  # a frame without sky (the CPU rule then fills once)
    conf = (alpha * (rng.random((B, h, w)) < 0.7)).astype(np.float32)
    t = [torch.as_tensor(x) for x in (rgb, depth, alpha, sky, conf)]
    g_rgb, g_depth, g_obs, g_cov = (x.numpy() for x in finish_frames_torch(*t))
    for i in range(B):
        im = finish_frame(rgb[i], depth[i], alpha[i], sky[i], conf[i])
        np.testing.assert_allclose(g_rgb[i].astype(int), im.rgb.astype(int), atol=1)
        np.testing.assert_array_equal(np.isinf(g_depth[i]), np.isinf(im.depth))
        fin = np.isfinite(im.depth)
        np.testing.assert_allclose(g_depth[i][fin], im.depth[fin], rtol=1e-5)
        np.testing.assert_array_equal(g_obs[i], im.observed)
        assert g_cov[i] == pytest.approx(im.coverage, abs=1e-7)
        assert (g_depth[i] > 0).all()
