"""`replay --preview`: an MP4 (or GIF) of RGB beside colour-mapped depth with a legend."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np

from p4dsim.preview import colorize_depth, compose, write_preview


def test_colour_map_and_layout():
    d = np.array([[1.0, 80.0, np.inf, 0.0]], dtype=np.float32)
    c = colorize_depth(d)
    assert c.shape == (1, 4, 3) and c.dtype == np.uint8
    assert not np.array_equal(c[0, 0], c[0, 1])  # near and far differ
    assert (c[0, 2:] == 0).all()  # sky and empty are black
    img = compose(np.full((20, 64, 3), 128, np.uint8), np.full((20, 64), 10.0, np.float32), "t")
    assert img.shape == (20 + 22, 128, 3)


def test_replay_preview_writes_a_video(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "source: {adapter: toytown, width: 96, height: 30}\nduration_s: 0.2\nfps: 10\n"
    )
    out = tmp_path / "ds"
    r = subprocess.run(
        [sys.executable, "-m", "p4dsim", "replay", str(scenario), "-o", str(out), "-q"]
        + ["--preview"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    videos = list(out.glob("preview.*"))
    assert len(videos) == 1
    if videos[0].suffix == ".mp4":
        cap = cv2.VideoCapture(str(videos[0]))
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            assert frame.shape[:2] == (30 + 22, 192)
        assert n == 3
    gif = write_preview(out, tmp_path / "p.gif")
    assert gif.suffix == ".gif" and gif.stat().st_size > 0
