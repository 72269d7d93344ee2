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


@pytest.fixture
def run(monkeypatch, capsys, tmp_path):
    """run(*args) -> (exit status, stdout, stderr) of ``p4dsim ARGS`` run in-process (through
    ``cli.main``, so exit statuses are the command's), in ``tmp_path`` as working directory;
    the signal handlers the command installs are restored afterwards."""
    import signal
    import sys

    from p4dsim import cli

    monkeypatch.chdir(tmp_path)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def _run(*args: str):
        monkeypatch.setattr(sys, "argv", ["p4dsim", *args])
        try:
            with pytest.raises(SystemExit) as e:
                cli.main()
        finally:
            for s, h in saved.items():
                signal.signal(s, h)
        out, err = capsys.readouterr()
        return e.value.code, out, err

    return _run
