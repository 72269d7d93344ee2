"""Contact sheets: depth colours and grid layout."""

from __future__ import annotations

import cv2
import numpy as np

from p4dsim.eval.contact import EMPTY_RGB, SKY_RGB, colour_depth, write_contact_sheet


def test_depth_colours_and_sheet(tmp_path):
    d = np.array([[0.0, np.inf, 2.0, 80.0, np.nan]], np.float32)
    c = colour_depth(d)
    assert tuple(c[0, 0]) == EMPTY_RGB and tuple(c[0, 4]) == EMPTY_RGB
    assert tuple(c[0, 1]) == SKY_RGB
    assert not np.array_equal(c[0, 2], c[0, 3])  # near and far differ
    rgb = np.zeros((20, 30, 3), np.uint8)
    views = [("a", rgb, np.full((20, 30), 5.0)), ("b", rgb, np.zeros((20, 30)))]
    views.append(("c", rgb, np.ones((20, 30))))
    p = write_contact_sheet(tmp_path / "s.png", views, columns=2)
    img = cv2.imread(str(p))
    # two rows of cells, each a title bar over RGB over depth; three cells padded to four
    assert img.shape == (2 * (18 + 40), 2 * 30, 3)
