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
from p4dsim.io.outdir import staged

FORMAT = "p4dsim-dataset"
FORMAT_VERSION = 1

_f64list = pa.list_(pa.float64())

FRAMES_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("variant_id", pa.string()),
        ("frame_index", pa.int32()),
        ("timestamp_us", pa.int64()),
        ("t_s", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("K", _f64list),
        ("T_world_camera", _f64list),
        ("T_world_ego", _f64list),
        ("ego_speed", pa.float64()),
        ("rgb", pa.binary()),
        ("rgb_format", pa.string()),
        ("depth", pa.binary()),
        ("depth_format", pa.string()),
        ("alpha_mean", pa.float32()),
        ("coverage", pa.float32()),
        ("source_dataset", pa.string()),
        ("source_log", pa.string()),
        ("source_frame", pa.int32()),
        ("collision", pa.bool_()),
        ("min_distance_m", pa.float64()),
        ("ttc_s", pa.float64()),
        ("kinematic_warning", pa.string()),
    ]
)

ACTORS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("variant_id", pa.string()),
        ("frame_index", pa.int32()),
        ("track_id", pa.string()),
        ("label", pa.string()),
        ("source", pa.string()),
        ("confidence", pa.float32()),
        ("center_world", _f64list),
        ("yaw_world", pa.float64()),
        ("size", _f64list),
        ("center_camera", _f64list),
        ("yaw_camera", pa.float64()),
        ("box2d", _f64list),
        ("visible_pixels", pa.int64()),
        ("visible_fraction", pa.float32()),
        ("truncation", pa.float32()),
        ("distance_m", pa.float64()),
        ("speed", pa.float64()),
        ("velocity_world", _f64list),
        ("acceleration_world", _f64list),
    ]
)

TABLES = {"frames": FRAMES_SCHEMA, "actors": ACTORS_SCHEMA}


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)``, column by column: lists of floats
    without nulls become one flat float64 array plus offsets (ten times faster on label rows,
    and the conversion holds the interpreter lock for that much less)."""
    cols = {}
    for f in schema:
        vals = [r.get(f.name) for r in rows]
        if (
            pa.types.is_list(f.type)
            and pa.types.is_float64(f.type.value_type)
            and all(v is not None for v in vals)
        ):
            lens = np.fromiter((len(v) for v in vals), np.int64, len(vals))
            offsets = np.zeros(len(vals) + 1, np.int32)
            np.cumsum(lens, out=offsets[1:])
            flat = np.fromiter((x for v in vals for x in v), np.float64, int(offsets[-1]))
            cols[f.name] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat), type=f.type)
        elif pa.types.is_binary(f.type) and all(isinstance(v, bytes | memoryview) for v in vals):
            cols[f.name] = _binary_array(vals)
        else:
            cols[f.name] = pa.array(vals, type=f.type)
    return pa.Table.from_pydict(cols, schema=schema)


def _binary_array(vals: list[bytes | memoryview]) -> pa.Array:
    """A binary array of ``vals`` copied into one buffer from Arrow's memory pool (which
    reuses memory, where converting the objects one by one faults in fresh pages: encoded
    images make these columns hundreds of megabytes per shard)."""
    offsets = np.zeros(len(vals) + 1, np.int64)
    np.cumsum(np.fromiter((len(v) for v in vals), np.int64, len(vals)), out=offsets[1:])
    if offsets[-1] >= 2**31:  # beyond 32-bit offsets: let pyarrow say so
        return pa.array(vals, type=pa.binary())
    data = pa.allocate_buffer(int(offsets[-1]))
    dst = np.frombuffer(data, np.uint8)
    for v, a, b in zip(vals, offsets[:-1], offsets[1:], strict=True):
        dst[a:b] = np.frombuffer(v, np.uint8)
    offs = pa.py_buffer(offsets.astype(np.int32))
    return pa.Array.from_buffers(pa.binary(), len(vals), [None, offs, data])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


#: binary columns stored without compression: their bytes are PNG or JPEG already
PRECOMPRESSED = frozenset({"rgb"})


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
    table: str
    path: str
    rows: int
    sha256: str


@dataclass
class DatasetWriter:
    """Streams rows into Parquet shards of a staged dataset folder; :meth:`commit` publishes it.

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
        self._counts: dict[str, int] = {name: 0 for name in TABLES}
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
        for name, schema in TABLES.items():
            rows = self._buffers[name]
            table = rows_to_table(rows, schema)
            idx = self._counts[name]
            rel = f"{name}/part-{idx:05d}.parquet"
            rec = write_table_atomic(table, self.stage_path(rel))
            self.shards.append(ShardRecord(name, rel, rec["rows"], rec["sha256"]))
            self._counts[name] += 1
            self._buffers[name] = []
        self._frames_in_buffer = 0

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Flush, move the shards into place and write the dataset card and ``manifest.json``
        (see :mod:`p4dsim.io.outdir`: files the manifest does not list are left alone)."""
        from p4dsim.io.card import write_card

        self.flush()
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **manifest,
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


def read_table(dataset_dir: Path, table: str = "frames") -> pa.Table:
    """One table of a dataset, all shards in manifest order."""
    manifest = read_manifest(dataset_dir)
    paths = [Path(dataset_dir) / s["path"] for s in manifest["shards"] if s["table"] == table]
    if not paths:
        return TABLES[table].empty_table()
    return pa.concat_tables([pq.read_table(p, schema=TABLES[table]) for p in paths])
