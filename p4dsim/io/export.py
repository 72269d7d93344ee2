"""Exporting a native dataset to other layouts through the exporter plugins.

An export is staged in a hidden folder beside its destination and renamed into place only
when the exporter has finished, so a failed export leaves nothing behind. A destination that
exists must be an earlier p4dsim export (it holds ``p4dsim_export.json``) or empty.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from p4dsim.errors import OutputError
from p4dsim.io.dataset import atomic_write_bytes, read_manifest
from p4dsim.plugins import ExportSummary, get_exporter

MARKER = "p4dsim_export.json"


def export_dataset(dataset_dir: Path, fmt: str, out_dir: Path) -> ExportSummary:
    """Export the dataset at ``dataset_dir`` with the ``fmt`` exporter into ``out_dir``."""
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    read_manifest(dataset_dir)  # a clear error when it is not a dataset
    exporter = get_exporter(fmt)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"export destination '{out_dir}' exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise OutputError(
                f"export destination '{out_dir}' is not empty and was not written by p4dsim "
                "export; refusing to overwrite it — choose another folder or empty it"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = out_dir.parent / f".{out_dir.name}.staging-{uuid.uuid4().hex[:8]}"
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
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out_dir, old)
        os.replace(stage, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return ExportSummary(out_dir=out_dir, frames=summary.frames, objects=summary.objects)
