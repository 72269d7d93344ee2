"""Shared pieces of the augment tests: tiny toytown jobs and dataset checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq

from p4dsim.augment.shard import run_shard

#: a tiny toytown source: 96×32 pixels
TINY_SOURCE = "toytown:?width=96&height=32&frames=60"

SCENARIO_SHIFT = """\
name: shift
source: {adapter: toytown}
duration_s: 0.1
fps: 10
render: {device: cpu}
ego:
  perturbations:
    - {type: lateral_offset, offset_m: 0.8, ramp_s: 0.1}
"""

SCENARIO_SLOW = """\
name: slow
source: {adapter: toytown}
duration_s: 0.05
fps: 20
render: {device: cpu}
ego:
  base: constant_velocity
  perturbations:
    - {type: speed_scale, scale: 0.5, ramp_s: 0.0}
actors:
  default: constant_velocity
"""

#: one frame per run: the fault test's shards are as small as they get
SCENARIO_ONE = """\
name: one
source: {adapter: toytown}
duration_s: 0.05
fps: 10
render: {device: cpu}
"""


def write_scenarios(folder: Path, **texts: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def file_digests(out: Path) -> dict[str, str]:
    """sha256 of every file under frames/ and actors/ (hidden ones included)."""
    return {
        str(p.relative_to(out)): sha256(p)
        for table in ("frames", "actors")
        for p in sorted((out / table).glob("*"))
        if p.is_file()
    }


def check_dataset(out: Path) -> dict:
    """Assert the manifest lists exactly the files present, with valid checksums and row
    counts; return the manifest."""
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {s["path"]: s for s in manifest["shards"]}
    present = {k for k in file_digests(out)}
    assert present == set(listed), present ^ set(listed)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".p4dsim-staging")]
    for path, s in listed.items():
        assert sha256(out / path) == s["sha256"], path
        assert pq.ParquetFile(out / path).metadata.num_rows == s["rows"], path
    return manifest


class InlineExecutor:
    """Runs shards in this process, in order (fast tests of the driver's bookkeeping)."""

    name = "inline"

    def run(self, shards, out_dir, on_result) -> None:
        for s in shards:
            on_result(run_shard(s, str(out_dir)))
