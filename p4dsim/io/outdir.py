"""Output folders p4dsim can share with its users and with other people's tools.

The rules, for every command that writes a dataset (``replay``, ``augment``):

- **Only its own files.** p4dsim writes ``manifest.json``, ``README.md`` (the dataset
  card), the Parquet files the manifest lists, ``exports/`` and ``preview.*``; a re-run
  replaces exactly those (the previous manifest says which) and never deletes or overwrites
  anything else a user put in the folder. A non-empty folder without a ``manifest.json`` is
  refused: p4dsim cannot tell which of its files would be its own.
- **One writer.** A writer holds an exclusive ``flock`` on ``DATASET/.p4dsim.lock`` for its
  whole run (and removes the file when done); a second writer (replay or augment) is refused
  with a clear error. The kernel releases the lock when a process dies, so a killed run never
  blocks the next one.
- **Staging that readers skip.** Data is staged in ``DATASET/.p4dsim-staging-*/`` under
  names ending in ``.partial``: pyarrow.dataset skips a path component starting with ``.``
  or ``_``, and no ``*.parquet`` glob (DuckDB's ``out/**/frames/*.parquet``, Spark, polars)
  matches a ``.partial`` file. Staging left by a killed run is removed by the next writer
  (which holds the lock, so no live writer owns it).
- **The manifest commits.** A Parquet file becomes part of a dataset only when it is
  renamed into ``frames/``/``actors/`` right before the manifest that lists it is
  (atomically) rewritten; the window between the two is a few renames long.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from p4dsim.errors import OutputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


LOCK_NAME = ".p4dsim.lock"
STAGING_PREFIX = ".p4dsim-staging-"
STAGED_SUFFIX = ".partial"
#: files and folders p4dsim itself may put into a dataset folder (beside the manifest's shards)
OWN_NAMES = frozenset({"manifest.json", "README.md", LOCK_NAME})


def check_out_path(out_dir: Path | str, what: str = "--out", dataset: bool = True) -> Path:
    """A clear error now, before anything is built or rendered, for an output path that
    cannot become a p4dsim folder: empty, a file, a folder that is not ours (``dataset``), or
    under a parent that does not exist as a folder or is not writable."""
    if out_dir is None or str(out_dir).strip() == "":
        raise OutputError(f"{what}: the output folder is empty; give a folder path")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{what}: '{out_dir}' exists and is not a folder; choose another")
    if out_dir.is_dir():
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise OutputError(f"{what}: folder '{out_dir}' is not writable; choose another")
        if dataset:
            check_not_foreign(out_dir, what)
        return out_dir
    parent = out_dir.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(
            f"{what}: '{out_dir}' cannot be created: '{parent}' is a file, not a folder"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"{what}: '{out_dir}' cannot be created: '{parent}' is not writable; choose "
            "another folder"
        )
    return out_dir


def check_not_foreign(out_dir: Path, what: str = "--out") -> None:
    """Refuse a non-empty folder without a p4dsim ``manifest.json``."""
    if (out_dir / "manifest.json").exists():
        return
    foreign = [p.name for p in out_dir.iterdir() if not _ours_by_name(p.name)]
    if foreign:
        raise OutputError(
            f"{what}: folder '{out_dir}' is not empty and holds no p4dsim manifest.json "
            f"(it has '{sorted(foreign)[0]}'); refusing to write into it — choose another "
            "folder or empty it"
        )


def _ours_by_name(name: str) -> bool:
    return name == LOCK_NAME or name.startswith(STAGING_PREFIX)


@dataclass
class FolderLock:
    """An exclusive, non-blocking ``flock`` on ``DATASET/.p4dsim.lock``."""

    out_dir: Path
    fd: int | None = None
    name: str = LOCK_NAME

    def acquire(self, who: str = "p4dsim") -> FolderLock:
        path = self.out_dir / self.name
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(
                    f"output folder '{self.out_dir}' cannot be written: {exc.strerror}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise OutputError(
                    f"output folder '{self.out_dir}' is in use by another running p4dsim job "
                    f"({who} refused); wait for it to finish or choose another --out"
                ) from None
            try:  # a holder that removes the file on release may have unlinked it meanwhile
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)

    def release(self, remove: bool = False) -> None:
        """Release the lock; ``remove`` deletes the lock file first (while still held)."""
        if self.fd is not None:
            if remove:
                (self.out_dir / self.name).unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


def clean_stale_staging(out_dir: Path) -> list[str]:
    """Remove staging folders of dead runs (call with the folder lock held); their names."""
    removed = []
    if out_dir.is_dir():
        for p in out_dir.iterdir():
            if p.name.startswith(STAGING_PREFIX) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    return removed


#: where augment workers stage finished shard files until the driver's manifest lists them
AUGMENT_STAGE = STAGING_PREFIX + "shards"


def shard_stage_path(out_dir: Path, rel: str) -> Path:
    """The staged location of shard file ``rel`` (relative to the dataset) of a job writing
    shard by shard; :func:`publish_staged` moves it into place."""
    return staged(Path(out_dir) / AUGMENT_STAGE / rel)


def publish_staged(out_dir: Path, rels: list[str]) -> None:
    """Move staged shard files (:func:`shard_stage_path`) to their places in the dataset;
    call right before writing the manifest that lists them."""
    for rel in rels:
        src = shard_stage_path(out_dir, rel)
        if src.exists():
            dst = Path(out_dir) / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)


def staged(path: Path) -> Path:
    """The staged name of a data file: no ``*.parquet`` glob matches it."""
    return path.with_name(path.name + STAGED_SUFFIX)


@dataclass
class OutputFolder:
    """The exclusive writer of one dataset folder: lock, staging and the manifest commit."""

    out_dir: Path
    who: str = "p4dsim"
    lock: FolderLock | None = None
    stage: Path | None = None
    stale_removed: list[str] = field(default_factory=list)
    created: bool = False

    @classmethod
    def open(cls, out_dir: Path | str, who: str = "p4dsim") -> OutputFolder:
        out_dir = check_out_path(out_dir)
        created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        f = cls(out_dir, who, created=created)
        f.lock = FolderLock(out_dir).acquire(who)
        try:
            check_not_foreign(out_dir)  # again, under the lock
            f.stale_removed = clean_stale_staging(out_dir)
        except BaseException:
            f.close()
            raise
        return f

    def new_stage(self) -> Path:
        self.stage = self.out_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
        self.stage.mkdir()
        return self.stage

    def publish(self, shard_paths: list[str], write_meta) -> None:
        """Move the staged shards (``shard_paths`` relative to the dataset, staged under
        :func:`staged` names in :attr:`stage`) into place, remove the previous manifest's
        shards that this run does not replace, then ``write_meta()`` (the dataset card and
        the manifest, atomically). Files the previous manifest does not list stay."""
        old = previous_shards(self.out_dir)
        new = set(shard_paths)
        for rel in shard_paths:
            src = staged(self.stage / rel)
            dst = self.out_dir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        for rel in sorted(old - new):
            p = self.out_dir / rel
            if _inside(self.out_dir, p):
                p.unlink(missing_ok=True)
        write_meta()

    def close(self) -> None:
        """Remove the staging folder (if any) and release the lock."""
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)
            self.stage = None
        if self.lock is not None:
            self.lock.release(remove=True)
        if self.created:  # a folder this run made and left empty (aborted) goes too
            try:
                self.out_dir.rmdir()
            except OSError:
                pass


def previous_shards(out_dir: Path) -> set[str]:
    """Shard paths the folder's current manifest lists (empty when it has none)."""
    mpath = Path(out_dir) / "manifest.json"
    if not mpath.exists():
        return set()
    try:
        m = json.loads(mpath.read_text())
    except (OSError, ValueError):
        return set()
    return {s["path"] for s in m.get("shards", []) if isinstance(s, dict) and "path" in s}


def _inside(root: Path, p: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
