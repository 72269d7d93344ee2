"""The replay pipeline's stages: order kept, errors surfaced, queues bounded, shards in order."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from p4dsim.io.dataset import DatasetWriter, read_manifest, read_table
from p4dsim.pipeline import BackgroundWriter, ordered_map, prefetch


def test_ordered_map_keeps_order_and_bounds_in_flight() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def slow_square(x: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.002 * ((7 * x) % 5))  # finish out of order
        with lock:
            running[0] -= 1
        return x * x

    assert list(ordered_map(slow_square, range(40), workers=4, window=6)) == [
        x * x for x in range(40)
    ]
    assert 1 < peak[0] <= 4


def test_ordered_map_raises_worker_errors() -> None:
    def f(x: int) -> int:
        if x == 5:
            raise ValueError("boom at 5")
        return x

    out = []
    with pytest.raises(ValueError, match="boom at 5"):
        for y in ordered_map(f, range(10), workers=3):
            out.append(y)
    assert out == [0, 1, 2, 3, 4]


def test_prefetch_is_bounded_and_stops_early() -> None:
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    it = prefetch(items(), depth=3)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    time.sleep(0.05)
    assert len(produced) <= 5 + 3 + 1  # at most `depth` ahead (+1 waiting to be put)
    it.close()  # the producer thread ends instead of running to 1000
    time.sleep(0.3)
    assert len(produced) < 20


def test_prefetch_raises_producer_errors() -> None:
    def items():
        yield 1
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        list(prefetch(items(), depth=2))


def _rows(k: int):
    frame = {"run_id": "r", "variant_id": "base", "frame_index": k, "rgb": b"x" * k}
    actors = [
        {"run_id": "r", "variant_id": "base", "frame_index": k, "track_id": f"a{j}"}
        for j in range(k % 3)
    ]
    return frame, actors


def test_background_writer_writes_all_shards_in_order(tmp_path) -> None:
    w = BackgroundWriter(DatasetWriter(tmp_path / "ds", rows_per_shard=7), write_workers=3)
    for k in range(50):
        w.add(*_rows(k))
    w.commit({"test": True})
    frames = read_table(tmp_path / "ds", "frames")
    assert frames.column("frame_index").to_pylist() == list(range(50))
    actors = read_table(tmp_path / "ds", "actors")
    assert actors.num_rows == sum(k % 3 for k in range(50))
    shards = read_manifest(tmp_path / "ds")["shards"]
    assert [s["path"] for s in shards if s["table"] == "frames"] == [
        f"frames/part-{i:05d}.parquet" for i in range(8)
    ]


def test_background_writer_surfaces_errors(tmp_path) -> None:
    w = BackgroundWriter(DatasetWriter(tmp_path / "ds", rows_per_shard=2))
    w.add(*_rows(0))
    w.add({"frame_index": "not an int"}, [])  # fails in a writing thread
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        for k in range(2, 50):
            w.add(*_rows(k))
            time.sleep(0.001)
        w.commit({})
    w.abort()
    assert not (tmp_path / "ds").exists()
