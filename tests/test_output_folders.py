"""Output folders shared with users and their tools: user files survive a re-run, a second
writer is refused, staged data is invisible to glob readers, and the dataset card makes
``datasets.load_dataset(DATASET)`` work in one call."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.dataset as pads
import pytest

from p4dsim.io.dataset import DatasetWriter, read_manifest, read_table
from p4dsim.io.outdir import LOCK_NAME, STAGING_PREFIX, OutputFolder

BODY = (
    "source: {adapter: toytown, width: 48, height: 24, frames: 5}\n"
    "duration_s: 0.3\nfps: 10\noutput: {rows_per_shard: 2}\n"
)


def test_rerun_keeps_user_files_and_replaces_only_its_own(run, tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(BODY.replace("0.3", "0.7"))  # 8 frames: 4 shards a table
    out = tmp_path / "ds"
    assert run("replay", str(sc), "--out", str(out), "-q")[0] == 0
    first = {s["path"] for s in read_manifest(out)["shards"]}
    assert len(first) == 8
    (out / "notes.md").write_text("my notes")
    (out / "my_kitti").mkdir()
    (out / "my_kitti" / "000000.txt").write_text("Car 0 0 0")
    (out / "frames" / "mine.txt").write_text("keep me")
    sc.write_text(BODY)  # 4 frames: 2 shards a table
    assert run("replay", str(sc), "--out", str(out), "-q")[0] == 0
    assert (out / "notes.md").read_text() == "my notes"
    assert (out / "my_kitti" / "000000.txt").read_text() == "Car 0 0 0"
    assert (out / "frames" / "mine.txt").read_text() == "keep me"
    listed = {s["path"] for s in read_manifest(out)["shards"]}
    present = {str(p.relative_to(out)) for p in out.glob("*/*.parquet")}
    assert present == listed and len(listed) == 4  # the earlier run's extra shards went
    assert read_table(out).num_rows == 4
    assert not [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert not (out / LOCK_NAME).exists()


def test_second_writer_is_refused(run, tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(BODY)
    out = tmp_path / "ds"
    w = DatasetWriter(out)  # a first writer holds the folder
    try:
        code, _, err = run("replay", str(sc), "--out", str(out), "-q")
        assert code == 2 and "in use by another running p4dsim job" in err
        assert "Traceback" not in err
        code, _, err = run(
            "augment",
            "--source",
            "toytown:?width=48&height=24&frames=5",
            "--scenarios",
            str(sc),
            "--frames",
            "0:1",
            "--out",
            str(out),
            "--workers",
            "1",
            "-q",
        )
        assert code == 2 and "in use by another running p4dsim job" in err
    finally:
        w.abort()
    assert not out.exists()  # the first writer created it and left nothing
    assert run("replay", str(sc), "--out", str(out), "-q")[0] == 0  # free again


def test_staged_rows_are_invisible_to_glob_readers(tmp_path):
    """While a writer has staged shards, neither ``**/frames/*.parquet`` nor pyarrow.dataset
    (nor DuckDB, when installed) sees a row; after commit they see exactly the manifest's."""
    from test_dataset import _row

    out = tmp_path / "ds"
    w = DatasetWriter(out, rows_per_shard=1)
    for k in range(3):
        w.add(_row(k), [])
    w.flush()
    assert list(out.rglob("*.partial")), "shards are staged"
    assert not list(tmp_path.glob("**/frames/*.parquet"))
    assert not list(tmp_path.glob("**/*.parquet"))
    assert pads.dataset(str(tmp_path), format="parquet").count_rows() == 0
    try:
        import duckdb

        n = duckdb.sql(f"select count(*) from '{tmp_path}/**/*.parquet'").fetchone()[0]
        assert n == 0
    except ImportError:
        pass
    w.commit({})
    assert pads.dataset(str(out / "frames"), format="parquet").count_rows() == 3


def test_stale_staging_is_removed_by_the_next_writer(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    stale = out / f"{STAGING_PREFIX}deadbeef" / "frames"
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet.partial").write_bytes(b"x")
    f = OutputFolder.open(out)
    assert f.stale_removed == [f"{STAGING_PREFIX}deadbeef"]
    f.close()


def test_load_dataset_in_one_call(run, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    sc = tmp_path / "s.yaml"
    sc.write_text(BODY + "variants: {grid: {ego.perturbations: [[], [{type: lateral_offset, "
                  "offset_m: 0.5}]]}}\n")  # fmt: skip
    out = tmp_path / "ds"
    assert run("replay", str(sc), "--out", str(out), "-q")[0] == 0
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "dtype: image" in card
    frames = datasets.load_dataset(str(out), split="train")
    actors = datasets.load_dataset(str(out), "actors", split="train")
    m = read_manifest(out)
    n_frames = sum(s["rows"] for s in m["shards"] if s["table"] == "frames")
    n_actors = sum(s["rows"] for s in m["shards"] if s["table"] == "actors")
    assert frames.num_rows == n_frames == 8 and actors.num_rows == n_actors
    img = frames[0]["rgb"]
    assert img.size == (48, 24)
    assert frames.features["rgb"].__class__.__name__ == "Image"
    # the observed mask loads as an image too; its mean is the row's coverage
    obs = np.asarray(frames[0]["observed"]) > 0
    assert obs.shape == (24, 48) and obs.mean() == pytest.approx(frames[0]["coverage"], abs=1e-6)
    # run_id is unique per variant: (run_id, frame_index) keys frames exactly
    keys = list(zip(frames["run_id"], frames["frame_index"], strict=True))
    assert len(set(keys)) == len(keys)
    assert len(set(frames["run_id"])) == 2
    assert {r["run_id"] for r in m["runs"]} == set(frames["run_id"])
    assert (
        json.loads((out / "manifest.json").read_text())["runs"][0]["run_id"]
        != m["runs"][1]["run_id"]
    )
