"""Fixtures of the nuScenes plugin tests: the real scene (scene-0916), opened once."""

from __future__ import annotations

from pathlib import Path

import pytest
from nus_helpers import SCENE, VERSION, nuscenes_root


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
