"""Shared fixtures: small toytown logs and the real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path | None:
    """``$P4DSIM_REAL_DATA`` or ``<repo>/../shared/data`` when it exists."""
    env = os.environ.get("P4DSIM_REAL_DATA")
    cand = Path(env) if env else REPO.parent / "shared" / "data"
    return cand if cand.is_dir() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    d = real_data_dir()
    if d is None:
        pytest.skip(
            "real sample data not found: set P4DSIM_REAL_DATA or place it at ../shared/data"
        )
    return d
