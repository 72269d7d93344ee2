"""Exporting a native dataset to other layouts through the exporter plugins.

The dataset's shards are checked against the manifest's checksums first. An export is staged
in a hidden folder beside its destination (``.p4dsim-staging-NAME-*``, which readers skip) and
renamed into place only when the exporter has finished, so a failed export leaves nothing
behind. A destination that
exists must be an earlier p4dsim export (it holds ``p4dsim_export.json``) or empty.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

from p4dsim.errors import OutputError
from p4dsim.io.dataset import atomic_write_bytes
from p4dsim.io.outdir import STAGING_PREFIX, FolderLock
from p4dsim.io.verify import verify_dataset
from p4dsim.plugins import ExportSummary, get_exporter

MARKER = "p4dsim_export.json"


def export_dataset(dataset_dir: Path, fmt: str, out_dir: Path) -> ExportSummary:
    """Export the dataset at ``dataset_dir`` with the ``fmt`` exporter into ``out_dir``."""
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    exporter = get_exporter(fmt)
    verify_dataset(dataset_dir)  # not a dataset, or shards changed since: a clear error
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"export destination '{out_dir}' exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise OutputError(
                f"export destination '{out_dir}' is not empty and was not written by p4dsim "
                "export; refusing to overwrite it — choose another folder or empty it"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # One export into a destination at a time; staging a killed export left is removed.
    lock = FolderLock(out_dir.parent, name=f".p4dsim-export-{out_dir.name}.lock").acquire("export")
    stale = re.compile(re.escape(f"{STAGING_PREFIX}{out_dir.name}-") + r"(old-)?[0-9a-f]{8}")
    for p in out_dir.parent.iterdir():
        if stale.fullmatch(p.name):
            shutil.rmtree(p, ignore_errors=True)
    stage = out_dir.parent / f"{STAGING_PREFIX}{out_dir.name}-{uuid.uuid4().hex[:8]}"
    try:
        summary = exporter.export(dataset_dir, stage)
        atomic_write_bytes(
            stage / MARKER,
            json.dumps(
                {
                    "format": fmt,
                    "dataset": str(dataset_dir),
                    "frames": summary.frames,
                    "objects": summary.objects,
                },
                indent=2,
            ).encode(),
        )
        old = None
        if out_dir.exists():
            old = out_dir.parent / f"{STAGING_PREFIX}{out_dir.name}-old-{uuid.uuid4().hex[:8]}"
            os.replace(out_dir, old)
        os.replace(stage, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        lock.release(remove=True)
    return ExportSummary(out_dir=out_dir, frames=summary.frames, objects=summary.objects)
