"""The PNG settings chosen for speed keep the decoded images exactly: RGB and 16-bit depth
decode to the same pixels as with OpenCV's defaults (and as the arrays encoded)."""

from __future__ import annotations

import cv2
import numpy as np

from p4dsim.io.codecs import decode_depth, decode_rgb, encode_depth, encode_rgb


def _image(h: int = 75, w: int = 124) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 2, yy * 3, (xx + yy)], axis=-1) % 256
    img = smooth + rng.integers(-3, 4, size=(h, w, 3))
    img[20:40, 30:70] = (200, 30, 40)  # flat block: long runs
    return np.clip(img, 0, 255).astype(np.uint8)


def test_png_rgb_round_trip_is_exact():
    rgb = _image()
    data = encode_rgb(rgb, "png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(decode_rgb(data), rgb)
    ok, ref = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(decode_rgb(data), decode_rgb(ref.tobytes()))


def test_png16_depth_round_trip_is_exact():
    h, w = 60, 90
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (2.0 + 0.37 * yy + 0.011 * xx).astype(np.float32)
    depth[10:20, 10:30] = np.inf  # sky: 0 in png16
    depth[30:35, 50:60] = 0.0
    q = np.where(np.isfinite(depth), np.round(depth * 256.0) / 256.0, 0.0)
    back = decode_depth(encode_depth(depth, "png16"), "png16", w, h)
    np.testing.assert_array_equal(back, q.astype(np.float32))
