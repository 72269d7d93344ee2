"""Shared fixtures of the nuScenes plugin tests: the real scene (scene-0916) and copies of it
to corrupt."""

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


@pytest.fixture(scope="session")
def nus_root() -> Path:
    return nuscenes_root()


@pytest.fixture(scope="session")
def nus_log(nus_root):
    from p4dsim_nuscenes.log import NuScenesLog

    return NuScenesLog(nus_root, VERSION, SCENE)


@pytest.fixture(scope="session")
def nusc(nus_log):
    """The devkit's own NuScenes object of the real scene (the reference)."""
    return nus_log.nusc


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
