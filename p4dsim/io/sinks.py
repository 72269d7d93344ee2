"""Where rows go: the :class:`Sink` protocol every writer implements, and the streaming
shard writer of ``p4dsim augment``.

A sink receives one frame at a time — its ``frames`` row and its ``actors`` rows, built by
:mod:`p4dsim.io.rows` — and either publishes everything it received (:meth:`Sink.commit`) or
leaves no trace (:meth:`Sink.abort`). Implementations:

* :class:`~p4dsim.io.dataset.DatasetWriter`: a whole dataset folder (Parquet shards of
  ``rows_per_shard`` frames plus ``manifest.json``), published by one rename;
* :class:`~p4dsim.pipeline.BackgroundWriter`: a dataset writer fed from a thread;
* :class:`ShardWriter`: one shard of an augment job, one Parquet file per table;
* :class:`FanOut`: several sinks fed the same rows (``replay(..., sinks=[...])``).

A new output format (MCAP, a LiDAR table, ...) is one new class with these three methods.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from p4dsim.io.dataset import ShardRecord, parquet_options, sha256_file
from p4dsim.io.rows import ACTORS, FRAMES, TABLES, rows_to_table


@runtime_checkable
class Sink(Protocol):
    """A destination for rendered rows."""

    def add(self, frame_row: dict[str, Any], actor_rows: list[dict[str, Any]]) -> None:
        """Take one frame's ``frames`` row and its ``actors`` rows."""
        ...

    def commit(self, manifest: dict[str, Any] | None = None) -> Any:
        """Publish everything added; ``manifest``: what the run records about itself (a
        sink that is part of a larger dataset leaves it to that dataset's manifest)."""
        ...

    def abort(self) -> None:
        """Remove everything written; what existed before is left as it was."""
        ...


class FanOut:
    """Feeds every sink the same rows and commits them in order (returning the first one's
    result); :meth:`abort` aborts the sinks not yet committed, so a failure while committing
    one leaves the ones before it published and nothing of the others."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = list(sinks)
        self._committed = 0

    def add(self, frame_row: dict[str, Any], actor_rows: list[dict[str, Any]]) -> None:
        for s in self.sinks:
            s.add(frame_row, actor_rows)

    def commit(self, manifest: dict[str, Any] | None = None) -> Any:
        results = []
        for s in self.sinks[self._committed :]:
            results.append(s.commit(manifest))
            self._committed += 1
        return results[0] if results else None

    def abort(self) -> None:
        errors = []
        for s in self.sinks[self._committed :]:
            try:
                s.abort()
            except Exception as exc:  # abort every sink, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]


class ShardWriter:
    """Streams one shard's rows into one Parquet file per table (``paths``: table -> path
    relative to ``out_dir``), one row group per run (:meth:`end_run`).

    Files are written under temporary names (``.<name>.tmp-<hex>``) and renamed by
    :meth:`commit`; :meth:`abort` removes them. Settings are fixed
    (:func:`~p4dsim.io.dataset.parquet_options`), so equal rows give equal bytes.
    """

    def __init__(
        self,
        out_dir: Path,
        paths: dict[str, str],
        stage: Callable[[Path, str], Path] | None = None,
    ):
        import pyarrow.parquet as pq

        self.out_dir = Path(out_dir)
        self.paths = dict(paths)
        #: where a committed file goes: ``out_dir / rel`` by default, or a staged place from
        #: which a job moves it into the dataset when its manifest lists it
        self.final: dict[str, Path] = {
            t: stage(self.out_dir, rel) if stage else self.out_dir / rel
            for t, rel in self.paths.items()
        }
        self.tmp: dict[str, Path] = {}
        self.rows: dict[str, int] = {t: 0 for t in self.paths}
        self._pending: dict[str, list[dict[str, Any]]] = {t: [] for t in self.paths}
        self.writers = {}
        for table, rel in self.paths.items():
            dest = self.out_dir / rel
            if dest.is_dir():  # a folder where the file must go: it could never be placed
                raise IsADirectoryError(f"a folder is in the way of shard file '{dest}'")
            final = self.final[table]
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
            self.tmp[table] = tmp
            schema = TABLES[table]
            self.writers[table] = pq.ParquetWriter(tmp, schema, **parquet_options(schema))

    def add(self, frame_row: dict[str, Any], actor_rows: list[dict[str, Any]]) -> None:
        """Take one frame's rows (written as part of the current run's row group)."""
        self._pending[FRAMES].append(frame_row)
        self._pending[ACTORS].extend(actor_rows)

    def end_run(self) -> None:
        """Write the rows added since the last call as one row group per table (nothing for
        a table without rows)."""
        for table, rows in self._pending.items():
            if rows:
                self.writers[table].write_table(rows_to_table(rows, TABLES[table]))
                self.rows[table] += len(rows)
            self._pending[table] = []

    def commit(self, manifest: dict[str, Any] | None = None) -> list[ShardRecord]:
        """End the run, close, fsync and rename every file into place; return their records
        (the job's manifest lists them: ``manifest`` is not used)."""
        self.end_run()
        files = []
        for table in self.paths:
            self.writers[table].close()
            with open(self.tmp[table], "rb") as f:
                os.fsync(f.fileno())
        for table, rel in self.paths.items():
            final = self.final[table]
            os.replace(self.tmp[table], final)
            files.append(ShardRecord(table, rel, self.rows[table], sha256_file(final)))
        return files

    def abort(self) -> None:
        """Remove the temporary files and any file of this shard already renamed."""
        for table in self.paths:
            try:
                self.writers[table].close()
            except Exception:
                pass
            for path in (self.tmp[table], self.final[table]):
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass
