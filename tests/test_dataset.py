import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from p4dsim.errors import OutputError
from p4dsim.io.codecs import decode_depth, decode_rgb, encode_depth, encode_rgb
from p4dsim.io.dataset import DatasetWriter, read_table, sha256_file


def _row(k):
    rgb = np.full((4, 6, 3), k, np.uint8)
    return {
        "run_id": "r",
        "variant_id": "base",
        "frame_index": k,
        "timestamp_us": 1000 * k,
        "t_s": k / 10,
        "width": 6,
        "height": 4,
        "K": [1.0] * 9,
        "T_world_camera": [0.0] * 16,
        "T_world_ego": [0.0] * 16,
        "ego_speed": 1.0,
        "rgb": encode_rgb(rgb),
        "rgb_format": "png",
        "depth": encode_depth(np.full((4, 6), 2.5, np.float32)),
        "depth_format": "float16",
        "alpha_mean": 1.0,
        "coverage": 1.0,
        "source_dataset": "t",
        "source_log": "l",
        "source_frame": 0,
    }


def test_writer_shards_checksums_and_atomic_publish(tmp_path):
    out = tmp_path / "ds"
    w = DatasetWriter(out, rows_per_shard=2)
    for k in range(5):
        w.add(
            _row(k),
            [
                {
                    "run_id": "r",
                    "variant_id": "base",
                    "frame_index": k,
                    "track_id": "a",
                    "label": "vehicle",
                }
            ],
        )
    assert not list(out.glob("**/*.parquet"))  # nothing visible to readers before commit
    w.commit({"summary": {}})
    m = json.loads((out / "manifest.json").read_text())
    frames = [s for s in m["shards"] if s["table"] == "frames"]
    assert [s["rows"] for s in frames] == [2, 2, 1]
    for s in m["shards"]:
        assert sha256_file(out / s["path"]) == s["sha256"]
    t = pq.read_table(out / "frames")
    assert t.num_rows == 5
    assert sorted(t.column("frame_index").to_pylist()) == list(range(5))
    assert read_table(out, "actors").num_rows == 5
    assert not [p for p in out.iterdir() if p.name.startswith(".p4dsim-staging")]


def test_abort_leaves_previous_dataset(tmp_path):
    out = tmp_path / "ds"
    w = DatasetWriter(out, rows_per_shard=2)
    w.add(_row(0), [])
    w.commit({})
    w2 = DatasetWriter(out, rows_per_shard=1)
    w2.add(_row(1), [])
    w2.abort()
    assert read_table(out).column("frame_index").to_pylist() == [0]
    assert not [p for p in out.iterdir() if p.name.startswith(".p4dsim-staging")]


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("x")
    with pytest.raises(OutputError, match="refusing to write"):
        DatasetWriter(tmp_path)


def test_codecs_round_trip():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_rgb(encode_rgb(rgb)), rgb)
    d = np.array([[0.0, np.inf, 3.25, 80.5]], np.float32)
    np.testing.assert_array_equal(decode_depth(encode_depth(d), "float16", 4, 1), d)
    back = decode_depth(encode_depth(d, "png16"), "png16", 4, 1)
    np.testing.assert_allclose(back, [[0.0, 0.0, 3.25, 80.5]], atol=1 / 256)


def test_rows_to_table_equals_from_pylist():
    """The column-wise conversion gives the same table as pyarrow's row-wise one, with null
    lists, empty lists and nulls in scalar columns."""
    import pyarrow as pa

    from p4dsim.io.dataset import TABLES, rows_to_table

    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        rows.append(
            {
                "run_id": "r",
                "variant_id": "v" if i % 3 else None,
                "frame_index": i,
                "track_id": f"t{i}",
                "label": "car",
                "source": "labels",
                "confidence": float(rng.uniform()),
                "center_world": list(rng.normal(size=3)),
                "yaw_world": float(rng.normal()),
                "size": [4.0, 2.0, 1.5],
                "center_camera": list(rng.normal(size=3)),
                "yaw_camera": 0.1,
                "box2d": None if i % 4 == 0 else ([] if i % 4 == 1 else list(rng.uniform(size=4))),
                "visible_pixels": i * 10,
                "visible_fraction": None if i % 2 else 0.5,
                "truncation": 0.0,
                "distance_m": 3.0,
                "speed": 1.0,
            }
        )
    for part in (rows, rows[1:2], rows[2:3], []):
        a = rows_to_table(part, TABLES["actors"])
        b = pa.Table.from_pylist(part, schema=TABLES["actors"])
        assert a.equals(b)
    # binary columns (encoded images), empty values included, and a null
    frames = [{f.name: None for f in TABLES["frames"]} for _ in range(5)]
    for i, fr in enumerate(frames):
        fr["rgb"] = rng.bytes(i * 1000)
        fr["depth"] = rng.bytes(7) if i != 2 else None
        fr["K"] = [1.0, 2.0]
    for part in (frames, frames[:2], frames[3:]):
        a = rows_to_table(part, TABLES["frames"])
        assert a.equals(pa.Table.from_pylist(part, schema=TABLES["frames"]))
    # the replay's rows hold memoryviews of the encoders' buffers: same table as bytes
    views = [{**fr, "rgb": memoryview(np.frombuffer(fr["rgb"], np.uint8).copy())} for fr in frames]
    assert rows_to_table(views, TABLES["frames"]).equals(rows_to_table(frames, TABLES["frames"]))


def test_encode_rgb_of_a_bgr_view_equals_plain_rgb():
    """The GPU path hands back RGB as a view of a BGR buffer; it encodes to the same bytes."""
    from p4dsim.io.codecs import encode_rgb

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    view = np.ascontiguousarray(rgb[..., ::-1])[..., ::-1]
    assert view.strides[-1] < 0 and np.array_equal(view, rgb)
    for fmt in ("png", "jpeg"):
        assert encode_rgb(view, fmt) == encode_rgb(rgb, fmt)


def test_buffers_hold_the_encoded_bytes():
    """The replay's row values (views, no copy under the interpreter lock) hold exactly the
    bytes of the public encoders, and own their memory (the source may be reused)."""
    from p4dsim.io.codecs import depth_buffer, rgb_buffer

    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    for fmt in ("png", "jpeg"):
        assert rgb_buffer(rgb, fmt).tobytes() == encode_rgb(rgb, fmt)
    depth = rng.uniform(0.5, 80.0, (12, 17)).astype(np.float32)
    depth[0, :3] = (0.0, np.inf, np.nan)
    for fmt in ("float16", "png16"):
        assert depth_buffer(depth, fmt).tobytes() == encode_depth(depth, fmt)
    half = depth.astype(np.float16)
    view = depth_buffer(half, "float16")
    expect = half.tobytes()
    half[:] = 0
    assert view.tobytes() == expect and len(view) == half.nbytes


def test_parquet_column_settings(tmp_path):
    """Images stored as they are (JPEG/PNG bytes), depth zstd; no dictionary and no
    statistics on the image columns, both kept on the others."""
    out = tmp_path / "ds"
    w = DatasetWriter(out, rows_per_shard=8)
    for k in range(3):
        w.add(_row(k), [])
    w.commit({"summary": {}})
    md = pq.ParquetFile(next((out / "frames").glob("*.parquet"))).metadata.row_group(0)
    cols = {md.column(i).path_in_schema: md.column(i) for i in range(md.num_columns)}
    assert cols["rgb"].compression == "UNCOMPRESSED"
    assert cols["depth"].compression == "ZSTD"
    assert cols["run_id"].compression == "ZSTD"
    for name in ("rgb", "depth"):
        assert not cols[name].is_stats_set
        assert "RLE_DICTIONARY" not in cols[name].encodings
    assert cols["frame_index"].is_stats_set
    assert cols["run_id"].has_dictionary_page
