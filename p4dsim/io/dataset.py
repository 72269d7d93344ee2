"""The native p4dsim dataset: a folder with ``manifest.json`` and Parquet tables.

Layout::

    DATASET/
      manifest.json          resolved scenario(s), versions, seeds, shard list, summary
      frames/part-NNNNN.parquet   one row per rendered frame
      actors/part-NNNNN.parquet   one row per rendered frame and actor

Readable with pyarrow, pandas, DuckDB or Hugging Face ``datasets`` without p4dsim:
``pyarrow.parquet.read_table("DATASET/frames")``. Poses are row-major 4×4 float64 lists in
the scene's world frame (origin at the source frame's ego pose, x forward, y left, z up);
``K`` is a row-major 3×3 list. ``rgb`` holds PNG or JPEG bytes (``rgb_format``); ``depth``
holds camera-z depth in metres as raw little-endian float16 ``height × width``
(``depth_format = "float16"``; ``inf`` = sky, ``0`` = nothing rendered) or a 16-bit PNG of
metres × 256 (``"png16"``; 0 = no depth or sky).

Writes are atomic: every file is written to a temporary name and renamed; a run is staged in
``DATASET/.p4dsim-staging-*/`` and becomes part of the dataset only through its manifest;
files p4dsim did not write are never touched (rules in :mod:`p4dsim.io.outdir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from p4dsim.errors import OutputError
from p4dsim.io.outdir import atomic_write_bytes, staged
from p4dsim.io.rows import ACTORS, FRAMES, TABLES, rows_to_table

FORMAT = "p4dsim-dataset"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: binary columns stored without compression: their bytes are PNG or JPEG already
PRECOMPRESSED = frozenset({"rgb", "observed"})


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """Writer settings of every p4dsim Parquet file (the same settings give the same bytes):
    zstd (level 1) except on already compressed image columns; no dictionary and no min/max
    statistics on binary columns (every image is unique, and a dictionary attempt on
    megabyte-sized values cost ~12 % of the write and made reading ten times slower)."""
    plain = [f.name for f in schema if not pa.types.is_binary(f.type)]
    codec = {}
    for f in schema:
        c = "none" if f.name in PRECOMPRESSED else "zstd"
        codec[f.name] = c
        if pa.types.is_list(f.type):  # Parquet names a list's values NAME.list.element
            codec[f"{f.name}.list.element"] = c
    return {
        "compression": codec,
        "use_dictionary": plain,
        "write_statistics": plain,
    }


def write_table_atomic(table: pa.Table, path: Path) -> dict[str, Any]:
    """Write a Parquet file atomically; return its shard record (path, rows, sha256)."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    pq.write_table(table, tmp, **parquet_options(table.schema))
    os.replace(tmp, path)
    return {"rows": table.num_rows, "sha256": sha256_file(path)}


@dataclass
class ShardRecord:
    """One Parquet file of a dataset: its table, path relative to the dataset folder, row
    count and sha256 (as listed in ``manifest.json``)."""

    table: str
    path: str
    rows: int
    sha256: str


@dataclass
class DatasetWriter:
    """Streams rows into Parquet shards of a staged dataset folder; :meth:`commit` publishes it.
    A :class:`~p4dsim.io.sinks.Sink`.

    out_dir: final location. If it exists it must be a p4dsim dataset (it is replaced) or an
    empty folder; anything else is refused so that no user data is overwritten.
    rows_per_shard: frames per Parquet file.
    """

    out_dir: Path
    rows_per_shard: int = 64
    shards: list[ShardRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        from p4dsim.io.outdir import OutputFolder

        self._folder = OutputFolder.open(self.out_dir, "replay")  # lock, stale staging
        self.out_dir = self._folder.out_dir
        self.stage = self._folder.new_stage()
        for name in TABLES:
            (self.stage / name).mkdir(parents=True)
        self._buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        self._shard_count = 0
        self._frames_in_buffer = 0

    def stage_path(self, rel: str) -> Path:
        """Where shard ``rel`` (e.g. ``frames/part-00000.parquet``) is staged until commit."""
        return staged(self.stage / rel)

    def add(self, frame_row: dict[str, Any], actor_rows: list[dict[str, Any]]) -> None:
        """Add one frame and its actor rows; flushes a shard every ``rows_per_shard`` frames."""
        self._buffers["frames"].append(frame_row)
        self._buffers["actors"].extend(actor_rows)
        self._frames_in_buffer += 1
        if self._frames_in_buffer >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self._buffers["frames"]:
            return
        self.shards.extend(
            self.write_shard(self._shard_count, self._buffers[FRAMES], self._buffers[ACTORS])
        )
        self._shard_count += 1
        self._buffers = {name: [] for name in TABLES}
        self._frames_in_buffer = 0

    def write_shard(
        self, index: int, frame_rows: list[dict[str, Any]], actor_rows: list[dict[str, Any]]
    ) -> list[ShardRecord]:
        """Write shard ``index`` of every table into the staging folder (atomically); return
        its records (not yet added to :attr:`shards`). Safe to call from several threads for
        different indices."""
        records = []
        for name, rows in ((FRAMES, frame_rows), (ACTORS, actor_rows)):
            rel = f"{name}/part-{index:05d}.parquet"
            rec = write_table_atomic(rows_to_table(rows, TABLES[name]), self.stage_path(rel))
            records.append(ShardRecord(name, rel, rec["rows"], rec["sha256"]))
        return records

    def commit(self, manifest: dict[str, Any] | None = None) -> Path:
        """Flush, move the shards into place and write the dataset card and ``manifest.json``
        (with ``manifest``'s entries; see :mod:`p4dsim.io.outdir`: files the manifest does not
        list are left alone)."""
        from p4dsim.io.card import write_card

        self.flush()
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **(manifest or {}),
            "shards": [s.__dict__ for s in self.shards],
        }
        data = json.dumps(manifest, indent=2, default=_json_default).encode()

        def write_meta() -> None:
            write_card(self.out_dir, manifest)
            atomic_write_bytes(self.out_dir / "manifest.json", data)

        try:
            self._folder.publish([s.path for s in self.shards], write_meta)
        finally:
            self._folder.close()
        return self.out_dir

    def abort(self) -> None:
        """Remove everything staged; the output folder is left as it was."""
        self._folder.close()


def check_output_dir(out_dir: Path) -> None:
    """Refuse an output folder that cannot take a p4dsim dataset (see p4dsim.io.outdir)."""
    from p4dsim.io.outdir import check_out_path

    check_out_path(out_dir)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    path = Path(dataset_dir) / "manifest.json"
    if not path.exists():
        raise OutputError(f"'{dataset_dir}' is not a p4dsim dataset (no manifest.json)")
    return json.loads(path.read_text())


def export_rows(
    dataset_dir: Path, out_dir: Path
) -> tuple[list[dict[str, Any]], dict[tuple[str, str, int], list[dict[str, Any]]]]:
    """What an exporter reads from a dataset: its frame rows and, per (run_id, variant_id,
    frame_index), that frame's actor rows. Raises :class:`~p4dsim.errors.SourceError` when
    ``dataset_dir`` is no p4dsim dataset and :class:`OutputError` when ``out_dir`` exists and
    is not a folder."""
    from p4dsim.errors import SourceError

    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    if not (dataset_dir / "manifest.json").is_file():
        raise SourceError(
            f"{dataset_dir} is not a p4dsim dataset (no manifest.json; expected the folder "
            "written by p4dsim replay with manifest.json, frames/ and actors/)"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"export output {out_dir} exists and is not a folder")
    frames = read_table(dataset_dir, FRAMES).to_pylist()
    by_frame: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for a in read_table(dataset_dir, ACTORS).to_pylist():
        by_frame.setdefault((a["run_id"], a["variant_id"], a["frame_index"]), []).append(a)
    return frames, by_frame


def read_table(dataset_dir: Path, table: str = "frames") -> pa.Table:
    """One table of a dataset, all shards in manifest order."""
    manifest = read_manifest(dataset_dir)
    paths = [Path(dataset_dir) / s["path"] for s in manifest["shards"] if s["table"] == table]
    if not paths:
        return TABLES[table].empty_table()
    return pa.concat_tables([pq.read_table(p, schema=TABLES[table]) for p in paths])
