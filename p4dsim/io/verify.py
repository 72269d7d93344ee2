"""Checking a native dataset against its manifest before it is read for an export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p4dsim.errors import OutputError


def verify_dataset(dataset_dir: Path) -> dict[str, Any]:
    """Every shard the manifest lists exists inside the dataset, has the listed SHA-256 and
    row count, and is a readable Parquet file; returns the manifest. The first mismatch is a
    :class:`~p4dsim.errors.OutputError` naming the file."""
    import pyarrow.parquet as pq

    from p4dsim.io.dataset import read_manifest, sha256_file

    dataset_dir = Path(dataset_dir)
    try:
        manifest = read_manifest(dataset_dir)
    except ValueError as exc:
        raise OutputError(f"{dataset_dir}/manifest.json: not valid JSON ({exc})") from None
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise OutputError(f"{dataset_dir}/manifest.json: no 'shards' list")
    root = dataset_dir.resolve()
    for i, s in enumerate(shards):
        try:
            rel, sha, rows = s["path"], s["sha256"], int(s["rows"])
        except (KeyError, TypeError, ValueError):
            raise OutputError(
                f"{dataset_dir}/manifest.json: shards[{i}] lacks path, sha256 or rows"
            ) from None
        p = (dataset_dir / rel).resolve()
        if root not in p.parents:
            raise OutputError(f"{dataset_dir}/manifest.json: shards[{i}] points outside it")
        if not p.is_file():
            raise OutputError(f"{dataset_dir / rel}: listed in the manifest but missing")
        got = sha256_file(p)
        if got != sha:
            raise OutputError(
                f"{dataset_dir / rel}: checksum mismatch (manifest {sha[:12]}…, file "
                f"{got[:12]}…): the file was changed or truncated after it was written"
            )
        try:
            n = pq.ParquetFile(p).metadata.num_rows
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise OutputError(f"{dataset_dir / rel}: not a readable Parquet file ({exc})") from None
        if n != rows:
            raise OutputError(f"{dataset_dir / rel}: {n} rows, the manifest lists {rows}")
    return manifest
