"""Shared fixtures of the KITTI plugin tests: the real sample data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: the repository that holds these tests: adapters/kitti/tests -> repository root
REPO_ROOT = Path(__file__).resolve().parents[3]


def real_data_dir() -> Path:
    """``$P4DSIM_REAL_DATA`` or ``<repo root>/../shared/data``."""
    env = os.environ.get("P4DSIM_REAL_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def _require(sub: str) -> Path:
    path = real_data_dir() / sub
    if not path.is_dir():
        pytest.skip(
            f"real KITTI sample data not found at {path} (set P4DSIM_REAL_DATA or place the "
            "shared data folder next to the repository)"
        )
    return path


@pytest.fixture
def kitti_raw_dir() -> Path:
    return _require("kitti_raw")


@pytest.fixture
def kitti_object_dir() -> Path:
    return _require("kitti_object")


@pytest.fixture
def kitti_tracking_dir() -> Path:
    return _require("kitti_tracking")
