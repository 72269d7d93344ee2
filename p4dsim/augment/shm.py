"""Objects holding large numpy arrays, passed between processes through one POSIX shared
memory block each, without pickling the arrays.

:func:`put_object` pickles with protocol 5 and a ``buffer_callback``: every contiguous numpy
array becomes an out-of-band buffer, copied once into the block behind the (small) pickle
stream. :func:`take_object` attaches, unlinks the block's name at once (the memory stays
mapped until closed, and no name is left behind whatever happens next), and rebuilds the
object with ``pickle.loads(..., buffers=...)``: its arrays are views of the block, no copy.

Naming is the creator's caller's business: the driver of a job hands out names
(:func:`segment_name`), so that it can remove every block of the job (:func:`unlink`) when it
is interrupted, whichever process was holding it then.
"""

from __future__ import annotations

import gc
import os
import pickle
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

#: out-of-band buffers start at multiples of this (cache lines; SIMD loads)
ALIGN = 64


@dataclass(frozen=True)
class Segment:
    """Where an object lies: block ``name`` of ``size`` bytes; the pickle stream is bytes
    [0, data_len), buffer i is ``buffers[i] = (offset, nbytes)``."""

    name: str
    size: int
    data_len: int
    buffers: tuple[tuple[int, int], ...]


def segment_name(tag: str, seq: int) -> str:
    """A block name unique to this process (its pid) and ``seq``; ``tag`` says what for."""
    return f"p4dsim-{tag}-{os.getpid()}-{seq}"


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def put_object(obj: Any, name: str) -> Segment:
    """Write ``obj`` into a new shared memory block called ``name`` and close this process's
    mapping; the block stays until :func:`take_object` or :func:`unlink` removes it. On
    failure the block is removed and the error raised."""
    raw: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=raw.append)
    views = [b.raw() for b in raw]
    offsets = []
    pos = _align(len(data))
    for v in views:
        offsets.append((pos, v.nbytes))
        pos = _align(pos + v.nbytes)
    shm = shared_memory.SharedMemory(name=name, create=True, size=max(pos, 1))
    try:
        buf = shm.buf
        buf[: len(data)] = data
        for (off, n), v in zip(offsets, views, strict=True):
            buf[off : off + n] = v
        del buf
        seg = Segment(name, pos, len(data), tuple(offsets))
    except BaseException:
        shm.close()
        shm.unlink()
        raise
    shm.close()
    return seg


class Taken:
    """An object rebuilt from a block (``value``), whose arrays are views of the block;
    :meth:`close` drops it and unmaps the block (the name is already gone)."""

    def __init__(self, value: Any, shm: shared_memory.SharedMemory):
        self.value = value
        self._shm: shared_memory.SharedMemory | None = shm

    def close(self) -> None:
        self.value = None
        shm, self._shm = self._shm, None
        if shm is None:
            return
        try:
            try:
                shm.close()
            except BufferError:
                gc.collect()  # arrays held only by reference cycles
                shm.close()
        except BufferError:
            # something still holds an array of the block: the mapping goes with the last of
            # them; the file descriptor is not needed for it
            fd = getattr(shm, "_fd", -1)
            if fd >= 0:
                os.close(fd)
                shm._fd = -1  # type: ignore[attr-defined]


def take_object(seg: Segment) -> Taken:
    """Attach block ``seg``, remove its name and rebuild the object in it."""
    shm = shared_memory.SharedMemory(name=seg.name)
    try:
        shm.unlink()
    except FileNotFoundError:
        pass
    try:
        buf = shm.buf
        value = pickle.loads(buf[: seg.data_len], buffers=[buf[o : o + n] for o, n in seg.buffers])
        del buf
    except BaseException:
        Taken(None, shm).close()
        raise
    return Taken(value, shm)


def unlink(name: str) -> bool:
    """Remove block ``name`` if it still exists; True if it did."""
    try:
        shm = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return False
    shm.close()
    try:
        shm.unlink()
    except FileNotFoundError:
        return False
    return True
