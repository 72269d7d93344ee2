"""CRC32C (Castagnoli), as used by the TFRecord framing, in numpy.

The CRC of a long buffer is computed in parallel lanes: the buffer (front-padded with zeros,
which leave a zero-initialised CRC unchanged) is cut into ``k`` equal chunks whose raw CRCs are
advanced together one byte column at a time with a 256-entry table, then combined pairwise
with the GF(2) operator "append L zero bytes". Short buffers take the plain byte loop, which
is also the reference implementation the tests compare against.
"""

from __future__ import annotations

import numpy as np

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8


def _make_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table[b] = c
    return table


_TABLE = _make_table()
_TABLE_LIST = [int(x) for x in _TABLE]


def crc32c_reference(data: bytes) -> int:
    """CRC32C of ``data`` (init and final xor 0xFFFFFFFF), byte by byte."""
    crc = 0xFFFFFFFF
    table = _TABLE_LIST
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _raw_update(crc: int, data: bytes) -> int:
    table = _TABLE_LIST
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


# A GF(2) linear operator on 32-bit CRC states is stored as its 32 columns (uint32 [32]):
# column k is the image of the state with only bit k set.


def _apply(op: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Apply operator ``op`` [32] to states ``v`` [...] (uint32)."""
    v = np.asarray(v, dtype=np.uint32)
    out = np.zeros_like(v)
    for k in range(32):
        out ^= np.where((v >> np.uint32(k)) & np.uint32(1), op[k], np.uint32(0)).astype(np.uint32)
    return out


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Operator a∘b (apply b first)."""
    return _apply(a, b)


_ZERO_BYTE_OP = np.array([_raw_update(1 << k, b"\x00") for k in range(32)], dtype=np.uint32)
_IDENTITY = np.array([1 << k for k in range(32)], dtype=np.uint32)


def _zeros_op(n: int) -> np.ndarray:
    """Operator that advances a raw CRC state over ``n`` zero bytes (square and multiply)."""
    result = _IDENTITY.copy()
    base = _ZERO_BYTE_OP.copy()
    while n:
        if n & 1:
            result = _compose(base, result)
        base = _compose(base, base)
        n >>= 1
    return result


_PARALLEL_MIN = 1 << 14


def crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """CRC32C of ``data`` (the standard Castagnoli CRC, init/final xor 0xFFFFFFFF)."""
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    n = buf.size
    if n < _PARALLEL_MIN:
        return crc32c_reference(buf.tobytes())
    lanes = 1 << max(6, min(12, (n.bit_length() - 1) // 2))
    length = -(-n // lanes)
    padded = np.zeros(lanes * length, dtype=np.uint8)
    padded[lanes * length - n :] = buf
    chunks = padded.reshape(lanes, length)
    state = np.zeros(lanes, dtype=np.uint32)
    for j in range(length):
        state = _TABLE[(state ^ chunks[:, j]) & 0xFF] ^ (state >> np.uint32(8))
    # Pairwise combine: crc(A || B) = Z_len(B)(crc(A)) ^ crc(B) for zero-initialised states.
    op = _zeros_op(length)
    while state.size > 1:
        state = _apply(op, state[0::2]) ^ state[1::2]
        op = _compose(op, op)
    raw_zero_init = int(state[0])
    init_part = int(_apply(_zeros_op(n), np.array([0xFFFFFFFF], dtype=np.uint32))[0])
    return (init_part ^ raw_zero_init) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """TFRecord's masked CRC32C: rotate right by 15 bits and add a constant (mod 2**32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF
