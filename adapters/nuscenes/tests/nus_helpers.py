"""Helpers of the nuScenes plugin tests: where the real scene is, copies of it to corrupt."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: adapters/nuscenes/tests -> repository root
REPO_ROOT = Path(__file__).resolve().parents[3]
VERSION = "v1.0-mini"
SCENE = "scene-0916"


def real_data_dir() -> Path:
    """``$P4DSIM_REAL_DATA`` or ``<repo root>/../shared/data``."""
    env = os.environ.get("P4DSIM_REAL_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def nuscenes_root() -> Path:
    """The real nuScenes sample root; skips the test when it (or the devkit) is absent."""
    path = real_data_dir() / "nuscenes"
    if not (path / VERSION).is_dir():
        pytest.skip(
            f"real nuScenes sample data not found at {path} (set P4DSIM_REAL_DATA or place the "
            "shared data folder next to the repository)"
        )
    pytest.importorskip(
        "nuscenes.nuscenes", reason="nuscenes-devkit not installed (pip install --no-deps)"
    )
    return path


def linked_copy(src: Path, dst: Path) -> Path:
    """A copy of a nuScenes root whose tables and map are real copies (to edit) and whose
    sample files are symbolic links (to replace one by one)."""
    shutil.copytree(src / VERSION, dst / VERSION)
    shutil.copytree(src / "maps", dst / "maps")
    for channel in (src / "samples").iterdir():
        out = dst / "samples" / channel.name
        out.mkdir(parents=True)
        for f in channel.iterdir():
            (out / f.name).symlink_to(f)
    return dst
