"""Every writer is a :class:`~p4dsim.io.sinks.Sink`; the same rows give the same tables
whichever writer wrote them; an aborted sink leaves nothing behind."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from test_dataset import _row

from p4dsim.io.dataset import DatasetWriter, read_table, sha256_file
from p4dsim.io.rows import ACTORS, FRAMES, TABLES
from p4dsim.io.sinks import ShardWriter, Sink
from p4dsim.pipeline import BackgroundWriter


def _actor(k: int, i: int) -> dict:
    return {"run_id": "r", "variant_id": "base", "frame_index": k, "track_id": f"car{i}"}


def test_writers_are_sinks_and_agree(tmp_path):
    rows = [(_row(k), [_actor(k, i) for i in range(k % 3)]) for k in range(5)]
    ds = DatasetWriter(tmp_path / "ds", rows_per_shard=2)
    bg = BackgroundWriter(DatasetWriter(tmp_path / "bg", rows_per_shard=2))
    sw = ShardWriter(tmp_path / "sh", {t: f"{t}/shard-x.parquet" for t in TABLES})
    for sink in (ds, bg, sw):
        assert isinstance(sink, Sink)
        for fr, ac in rows:
            sink.add(fr, ac)
    ds.commit({"k": 1})
    bg.commit({"k": 1})
    files = sw.commit()
    assert [f.table for f in files] == [FRAMES, ACTORS]
    for f in files:
        assert f.sha256 == sha256_file(tmp_path / "sh" / f.path)
    for table in TABLES:
        a = read_table(tmp_path / "ds", table)
        assert a.equals(read_table(tmp_path / "bg", table))
        assert a.equals(pq.read_table(tmp_path / "sh" / f"{table}/shard-x.parquet"))
    assert read_table(tmp_path / "ds", ACTORS).num_rows == sum(len(a) for _, a in rows)
    # the two dataset writers write byte-identical shards
    for s in ds.shards:
        assert sha256_file(tmp_path / "ds" / s.path) == sha256_file(tmp_path / "bg" / s.path)


def test_aborted_sinks_leave_nothing(tmp_path):
    ds = DatasetWriter(tmp_path / "ds", rows_per_shard=1)
    sw = ShardWriter(tmp_path / "sh", {t: f"{t}/shard-x.parquet" for t in TABLES})
    for sink in (ds, sw):
        sink.add(_row(0), [_actor(0, 0)])
        sink.abort()
    assert not (tmp_path / "ds").exists()
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


class _Recorder:
    """A minimal sink: what a new output format implements."""

    def __init__(self, fail_commit: bool = False):
        self.rows, self.manifest, self.aborted, self.fail = [], None, False, fail_commit

    def add(self, frame_row, actor_rows):
        self.rows.append((frame_row, actor_rows))

    def commit(self, manifest=None):
        if self.fail:
            raise OSError("disk full")
        self.manifest = manifest

    def abort(self):
        self.aborted = True


def test_replay_feeds_extra_sinks_the_dataset_rows(tmp_path):
    from p4dsim.replay import replay
    from p4dsim.scenario.model import Scenario

    sc = Scenario.model_validate(
        {
            "name": "fan",
            "source": {"adapter": "toytown", "width": 64, "height": 20},
            "duration_s": 0.4,
            "fps": 5,
            "ego": {"base": "constant_velocity"},
            "render": {"device": "cpu"},
        }
    )
    rec = _Recorder()
    assert isinstance(rec, Sink)
    res = replay(sc, tmp_path / "ds", sinks=[rec])
    frames = read_table(tmp_path / "ds", FRAMES).to_pylist()
    assert [r["frame_index"] for r, _ in rec.rows] == [r["frame_index"] for r in frames]
    assert sum(len(a) for _, a in rec.rows) == read_table(tmp_path / "ds", ACTORS).num_rows
    assert rec.manifest["summary"]["frames"] == res.frames == len(frames)
    # a sink failing to commit: the ones after it are aborted, the dataset (before) stays
    bad, after = _Recorder(fail_commit=True), _Recorder()
    with pytest.raises(OSError, match="disk full"):
        replay(sc, tmp_path / "ds2", sinks=[bad, after])
    assert after.aborted and after.manifest is None
    assert read_table(tmp_path / "ds2", FRAMES).num_rows == len(frames)
