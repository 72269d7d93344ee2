"""Frame selections: which source frames of a log a command uses (``--frames`` of
``p4dsim augment`` and ``p4dsim eval``; one syntax and one parser for every command).

Syntax (comma-separated items, combined):

- ``7`` one frame id;
- ``START:STOP[:STEP]`` a Python-style range, STOP exclusive; STOP may be left out (to the
  end of the log) and so may START (from 0): ``0:200:5``, ``100:``, ``:``;
- ``@FILE`` a text file of frame ids separated by whitespace or commas; ``#`` starts a
  comment.

The result is sorted and free of duplicates, so the same frames in any order name the same
job.

Strict, not clipping: a range that ends after the last frame, a frame id outside the log and
an empty item are errors, never trimmed or skipped. A selection names the data a dataset or
an evaluation is made of; trimming ``0:200`` to the 150 frames a log has would silently
produce a different (smaller) job than the one asked for, usually because the wrong log or
the wrong unit was given. "To the end of the log" is still one character away: leave STOP out
(``100:``).
"""

from __future__ import annotations

import re
from pathlib import Path

from p4dsim.errors import ConfigError

_INT = re.compile(r"^[+-]?\d+$")


def _int(token: str, what: str, where: str) -> int:
    token = token.strip()
    if not _INT.match(token):
        raise ConfigError(f"{where}: {what} must be an integer, got '{token}'")
    return int(token)


def _check(i: int, n_frames: int, where: str) -> int:
    if i < 0 or i >= n_frames:
        raise ConfigError(
            f"{where}: frame {i} is out of range; the source log has {n_frames} frames "
            f"(valid: 0..{n_frames - 1})"
        )
    return i


def _parse_range(item: str, n_frames: int, where: str) -> list[int]:
    parts = item.split(":")
    if len(parts) > 3:
        raise ConfigError(f"{where}: '{item}' is not START:STOP[:STEP]")
    start = _int(parts[0], "range start", where) if parts[0].strip() else 0
    stop = _int(parts[1], "range stop", where) if parts[1].strip() else n_frames
    step = _int(parts[2], "range step", where) if len(parts) == 3 and parts[2].strip() else 1
    if step <= 0:
        raise ConfigError(f"{where}: range '{item}' needs a positive step, got {step}")
    if start < 0 or stop < 0:
        raise ConfigError(f"{where}: range '{item}': negative frame ids are not allowed")
    if stop > n_frames:
        raise ConfigError(
            f"{where}: range '{item}' ends after the last frame; the source log has "
            f"{n_frames} frames (use STOP <= {n_frames}, or leave STOP out for 'to the end')"
        )
    return list(range(start, stop, step))


def _parse_file(path: Path, n_frames: int, where: str) -> list[int]:
    if not path.is_file():
        raise ConfigError(f"{where}: frame list file '{path}' does not exist")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0]
        for token in line.replace(",", " ").split():
            loc = f"{path}:{lineno}"
            out.append(_check(_int(token, "a frame id", loc), n_frames, loc))
    return out


def parse_selection(
    text: str, n_frames: int, where: str = "--frames", base_dir: Path | None = None
) -> list[int]:
    """Frame ids (sorted, unique) selected by ``text`` in a log of ``n_frames`` frames.

    ``@FILE`` paths resolve against ``base_dir`` (default: the current folder). Raises
    :class:`~p4dsim.errors.ConfigError` naming the item (or file and line) that is wrong.
    """
    if text is None or not text.strip():
        raise ConfigError(f"{where}: empty frame selection; e.g. '0:200:5', '1,3,7' or '@ids.txt'")
    frames: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise ConfigError(f"{where}: empty item in '{text}'; remove the extra comma")
        if item.startswith("@"):
            path = Path(item[1:]).expanduser()
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            frames.update(_parse_file(path, n_frames, where))
        elif ":" in item:
            frames.update(_parse_range(item, n_frames, f"{where} '{text}'"))
        else:
            frames.add(_check(_int(item, "a frame id", f"{where} '{text}'"), n_frames, where))
    if not frames:
        raise ConfigError(f"{where}: '{text}' selects no frames")
    return sorted(frames)
