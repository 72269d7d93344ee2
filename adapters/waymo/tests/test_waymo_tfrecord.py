"""CRC32C and TFRecord framing: known vectors, the parallel path against the byte loop, and
corrupt records naming the file and byte offset."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from p4dsim_waymo.crc32c import crc32c, crc32c_reference, masked_crc32c
from p4dsim_waymo.tfrecord import encode_record, index_records, read_record, write_records

from p4dsim.errors import SourceError


def test_crc32c_known_vectors():
    # Standard check value of CRC-32C and the RFC 3720 (iSCSI) test vectors.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"") == 0


@pytest.mark.parametrize("n", [16384, 16385, 100_003, 300_000])
def test_crc32c_parallel_matches_byte_loop(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    assert crc32c(data) == crc32c_reference(data)


def test_masked_crc_of_empty_length_field():
    # The masked CRC TensorFlow writes for a zero length header (8 zero bytes).
    crc = crc32c(bytes(8))
    assert masked_crc32c(bytes(8)) == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_records_round_trip(tmp_path: Path):
    recs = [b"", b"abc", bytes(range(256)) * 100]
    p = tmp_path / "x.tfrecord"
    write_records(p, recs)
    spans = index_records(p)
    assert [s.length for s in spans] == [len(r) for r in recs]
    assert spans[1].offset == 12 + 0 + 4
    assert [read_record(p, s) for s in spans] == recs


def _two_records(tmp_path: Path) -> tuple[Path, bytes, int]:
    first, second = b"first record payload", b"second record " * 50
    p = tmp_path / "two.tfrecord"
    raw = encode_record(first) + encode_record(second)
    p.write_bytes(raw)
    return p, raw, len(encode_record(first))


def test_flipped_data_byte_names_file_and_offset(tmp_path: Path):
    p, raw, second_offset = _two_records(tmp_path)
    bad = bytearray(raw)
    bad[second_offset + 12 + 30] ^= 0x01
    p.write_bytes(bytes(bad))
    spans = index_records(p)
    assert read_record(p, spans[0]) == b"first record payload"
    with pytest.raises(SourceError) as exc:
        read_record(p, spans[1])
    msg = str(exc.value)
    assert str(p) in msg and f"byte offset {second_offset}" in msg and "CRC32C" in msg


def test_flipped_length_byte_names_file_and_offset(tmp_path: Path):
    p, raw, second_offset = _two_records(tmp_path)
    bad = bytearray(raw)
    bad[second_offset + 2] ^= 0x40
    p.write_bytes(bytes(bad))
    with pytest.raises(SourceError) as exc:
        index_records(p)
    assert str(p) in str(exc.value) and f"byte offset {second_offset}" in str(exc.value)


def test_flipped_crc_byte_and_truncation(tmp_path: Path):
    p, raw, second_offset = _two_records(tmp_path)
    bad = bytearray(raw)
    bad[-1] ^= 0x80  # the data CRC of the second record itself
    p.write_bytes(bytes(bad))
    with pytest.raises(SourceError, match=f"byte offset {second_offset}"):
        read_record(p, index_records(p)[1])
    p.write_bytes(raw[:-3])
    with pytest.raises(SourceError, match=f"truncated record at byte offset {second_offset}"):
        index_records(p)
    p.write_bytes(raw + struct.pack("<Q", 5)[:5])
    with pytest.raises(SourceError, match=f"byte offset {len(raw)}"):
        index_records(p)


def test_every_single_byte_flip_is_caught(tmp_path: Path):
    """No flipped byte anywhere in a record is silently accepted."""
    payload = bytes(range(40))
    raw = encode_record(payload)
    p = tmp_path / "one.tfrecord"
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x04
        p.write_bytes(bytes(bad))
        with pytest.raises(SourceError, match="byte offset 0"):
            for span in index_records(p):
                read_record(p, span)
