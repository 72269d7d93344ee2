"""The Hugging Face dataset card (``DATASET/README.md``) of a native p4dsim dataset.

With it ``datasets.load_dataset(DATASET)`` loads the ``frames`` table (the default config)
and ``load_dataset(DATASET, "actors")`` the actors table in one call, ``rgb`` decoded as an
image. The card's ``configs`` list exactly the Parquet files the manifest lists, so the
``datasets`` library never reads a file the manifest does not hold, and ``dataset_info``
declares every column's type (``rgb`` and ``observed`` as ``image``: their PNG/JPEG bytes
are what the image feature stores). The card is rewritten with the manifest at every commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

CARD_NAME = "README.md"
#: columns declared as Hugging Face image features (encoded PNG/JPEG bytes; ``observed`` is
#: a 1-bit PNG, which ``datasets`` decodes to a Pillow image of mode "1")
IMAGE_COLUMNS = frozenset({"rgb", "observed"})

_SCALARS = {
    pa.string(): "string",
    pa.large_string(): "string",
    pa.int8(): "int8",
    pa.int16(): "int16",
    pa.int32(): "int32",
    pa.int64(): "int64",
    pa.float16(): "float16",
    pa.float32(): "float32",
    pa.float64(): "float64",
    pa.bool_(): "bool",
    pa.binary(): "binary",
    pa.large_binary(): "large_binary",
}


def _feature_lines(name: str, typ: pa.DataType, indent: str) -> list[str]:
    if name in IMAGE_COLUMNS and pa.types.is_binary(typ):
        return [f"{indent}- name: {name}", f"{indent}  dtype: image"]
    if pa.types.is_list(typ) and typ.value_type in _SCALARS:
        return [f"{indent}- name: {name}", f"{indent}  list: {_SCALARS[typ.value_type]}"]
    if typ in _SCALARS:
        return [f"{indent}- name: {name}", f"{indent}  dtype: {_SCALARS[typ]}"]
    raise TypeError(f"dataset card: no Hugging Face feature for column {name} ({typ})")


def card_text(manifest: dict[str, Any], tables: dict[str, pa.Schema]) -> str:
    """The card for ``manifest`` (its ``shards`` list) and the tables' schemas."""
    lines = ["---", "configs:"]
    for i, table in enumerate(tables):
        files = [s["path"] for s in manifest.get("shards", []) if s.get("table") == table]
        lines += [f"- config_name: {table}"]
        if i == 0:
            lines += ["  default: true"]
        lines += ["  data_files:", "  - split: train", "    path:"]
        lines += [f"    - {p}" for p in files] or ["    - " + f"{table}/*.parquet"]
    lines += ["dataset_info:"]
    for table, schema in tables.items():
        lines += [f"- config_name: {table}", "  features:"]
        for f in schema:
            lines += _feature_lines(f.name, f.type, "  ")
    lines += ["tags:", "- p4dsim", "- autonomous-driving", "- synthetic", "---", ""]
    runs = manifest.get("runs", [])
    frames = sum(r.get("frames", 0) for r in runs)
    src = manifest.get("source", {})
    src_txt = src if isinstance(src, str) else ", ".join(f"{k}={v}" for k, v in src.items())
    lines += [
        "# p4dsim dataset",
        "",
        f"Rendered by p4dsim {manifest.get('p4dsim_version', '')} from source `{src_txt}`: "
        f"{len(runs)} run(s), {frames} frame(s).",
        "",
        "- `frames` (default config): one row per rendered frame; `rgb` is an image, "
        "`depth` raw float16 metres (`depth_format`), poses row-major 4×4; `observed` "
        "is the observed mask (an image, nonzero where the pixel is rendered from observed "
        "content; the rest is synthesised or filled), `coverage` its mean.",
        "- `actors`: one row per rendered frame and actor (3D and 2D boxes, visibility).",
        "- Rows are keyed by (`run_id`, `variant_id`, `frame_index`); `run_id` is unique "
        "per run (one per variant), so joining frames and actors on (`run_id`, "
        "`frame_index`) is exact.",
        "",
        "```python",
        "from datasets import load_dataset",
        'frames = load_dataset("PATH/TO/DATASET", split="train")',
        'actors = load_dataset("PATH/TO/DATASET", "actors", split="train")',
        "```",
        "",
        "`manifest.json` holds the resolved scenario, versions, seeds and the shard list with "
        "row counts and SHA-256 checksums; a Parquet file it does not list is not part of "
        "the dataset.",
        "",
    ]
    return "\n".join(lines)


def write_card(out_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``out_dir/README.md`` atomically (replacing p4dsim's previous card only: a
    README.md that is not a p4dsim card is left alone)."""
    from p4dsim.io.outdir import atomic_write_bytes
    from p4dsim.io.rows import TABLES

    path = Path(out_dir) / CARD_NAME
    if path.exists() and not is_p4dsim_card(path):
        return path
    atomic_write_bytes(path, card_text(manifest, TABLES).encode())
    return path


def is_p4dsim_card(path: Path) -> bool:
    try:
        head = path.read_text(errors="replace")[:4096]
    except OSError:
        return False
    return head.startswith("---\n") and "\n- p4dsim\n" in head
