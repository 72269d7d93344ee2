"""TFRecord framing, read and written without TensorFlow.

A TFRecord file is a sequence of records, each::

    uint64 length (LE) | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)

Both CRCs are verified; any mismatch or truncation raises :class:`~p4dsim.errors.SourceError`
naming the file and the byte offset of the record (and of the bad field).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from p4dsim.errors import SourceError
from p4dsim_waymo.crc32c import masked_crc32c

_HEADER = 12
_FOOTER = 4


@dataclass(frozen=True)
class RecordSpan:
    """Where one record lies in its file: ``offset`` of its header, ``data_offset`` and
    ``length`` of its payload (bytes)."""

    offset: int
    data_offset: int
    length: int


def index_records(path: Path) -> list[RecordSpan]:
    """Scan ``path`` and return the span of every record; the length CRCs are verified here,
    the data CRCs when a record is read (:func:`read_record`)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        f = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise SourceError(f"cannot open TFRecord file {path}: {exc.strerror or exc}") from None
    spans: list[RecordSpan] = []
    with f:
        offset = 0
        while offset < size:
            header = f.read(_HEADER)
            if len(header) < _HEADER:
                raise SourceError(
                    f"{path}: truncated record header at byte offset {offset} "
                    f"({len(header)} of {_HEADER} bytes); the file is cut short or not a TFRecord"
                )
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:12])
            if masked_crc32c(header[:8]) != length_crc:
                raise SourceError(
                    f"{path}: corrupt record at byte offset {offset}: the CRC32C of the length "
                    f"field (bytes {offset}..{offset + 7}) does not match; the file is damaged "
                    "or not a TFRecord — re-download it"
                )
            end = offset + _HEADER + length + _FOOTER
            if end > size:
                raise SourceError(
                    f"{path}: truncated record at byte offset {offset}: it declares {length} "
                    f"bytes of data but the file ends at byte {size}; re-download the file"
                )
            spans.append(RecordSpan(offset=offset, data_offset=offset + _HEADER, length=length))
            f.seek(end)
            offset = end
    return spans


def read_record(path: Path, span: RecordSpan) -> bytes:
    """The payload of one record, its data CRC verified."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            f.seek(span.data_offset)
            data = f.read(span.length)
            footer = f.read(_FOOTER)
    except OSError as exc:
        raise SourceError(f"cannot read TFRecord file {path}: {exc.strerror or exc}") from None
    if len(data) != span.length or len(footer) != _FOOTER:
        raise SourceError(
            f"{path}: truncated record at byte offset {span.offset}; the file changed or is "
            "cut short"
        )
    (data_crc,) = struct.unpack("<I", footer)
    if masked_crc32c(data) != data_crc:
        raise SourceError(
            f"{path}: corrupt record at byte offset {span.offset}: the CRC32C of its "
            f"{span.length} data bytes (from byte {span.data_offset}) "
            "does not match; the file is damaged — re-download it"
        )
    return data


def encode_record(data: bytes) -> bytes:
    """One framed record (header, data, footer) for ``data``."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def write_records(path: Path, records: Iterable[bytes]) -> None:
    """Write ``records`` as a TFRecord file at ``path`` (atomically: temporary file, rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for data in records:
            f.write(encode_record(bytes(data)))
    tmp.replace(path)
