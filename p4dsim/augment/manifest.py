"""The manifest of an augment dataset, kept by the driver while shards complete.

``manifest.json`` is the native dataset manifest (:mod:`p4dsim.io.dataset`): ``shards`` lists
every Parquet file (table, path, rows, sha256) and so is readable by
:func:`p4dsim.io.dataset.read_table`; the ``augment`` section records the job (its key,
source, frames, scenarios) and one entry per completed shard (frame, runs, files). The file is
rewritten atomically (temporary file + rename) as shards complete; a shard is complete exactly
when it is listed there and its files match their checksums. Workers leave finished shard
files staged under names readers skip; they are moved into ``frames/``/``actors/`` only right
before the manifest that lists them is written, so a reader globbing the folder sees only the
manifest's rows (see :mod:`p4dsim.io.outdir`). Staging and shard files left by an interrupted
run are removed before the job resumes; files p4dsim did not write are never touched.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from p4dsim import __version__
from p4dsim.augment.shard import ShardResult
from p4dsim.augment.tasks import SHARD_TABLES, JobPlan
from p4dsim.errors import OutputError
from p4dsim.io.dataset import FORMAT, FORMAT_VERSION, atomic_write_bytes, sha256_file
from p4dsim.io.outdir import (
    FolderLock,
    check_not_foreign,
    check_out_path,
    clean_stale_staging,
    publish_staged,
)

KIND = "augment"


class AugmentManifest:
    """Resume state and atomic manifest updates of one augment output folder.

    Open with :meth:`open`, which takes an exclusive lock on the folder (a second job writing
    to it is refused), checks that the folder holds this job (or nothing), drops shards whose
    files are missing or corrupt and removes leftover files. ``min_interval_s`` throttles
    rewrites of the manifest during the run (a shard completed in that window but not yet
    written is redone on resume, never duplicated); :meth:`flush` writes now.
    """

    def __init__(self, out_dir: Path, plan: JobPlan, min_interval_s: float = 0.0):
        self.out_dir = Path(out_dir)
        self.plan = plan
        self.min_interval_s = min_interval_s
        self.done: dict[str, dict[str, Any]] = {}
        self.summary: dict[str, Any] = {}
        self._dirty = False
        self._last_write = 0.0
        self._lock: FolderLock | None = None
        self._unpublished: list[str] = []

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, out_dir: Path, plan: JobPlan, force: bool = False, min_interval_s: float = 0.0
    ) -> AugmentManifest:
        m = cls(out_dir, plan, min_interval_s)
        try:
            m._prepare(force)
        except BaseException:
            m._unlock()
            raise
        return m

    def _take_lock(self) -> None:
        self._lock = FolderLock(self.out_dir).acquire("augment")

    def close(self) -> None:
        """Publish pending shards, write the manifest, remove the staging folder (its
        unrecorded shards are redone by a resume) and release the folder lock."""
        try:
            self.flush()
            clean_stale_staging(self.out_dir)
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release(remove=True)
            self._lock = None

    def _prepare(self, force: bool) -> None:
        out = check_out_path(self.out_dir)
        mpath = out / "manifest.json"
        out.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        check_not_foreign(out)
        clean_stale_staging(out)  # shards a killed run staged but never published
        old: dict[str, Any] | None = None
        if mpath.exists():
            try:
                old = json.loads(mpath.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                if not force:
                    raise OutputError(
                        f"{mpath}: unreadable manifest ({exc}); use --force to rebuild the dataset"
                    ) from None
        if old is not None and not force:
            if old.get("format") != FORMAT or old.get(KIND, {}).get("kind") != KIND:
                raise OutputError(
                    f"'{out}' holds a p4dsim dataset that is not an augment job; choose "
                    "another --out, or use --force to replace it"
                )
            key = old[KIND].get("job_key")
            if key != self.plan.key:
                raise OutputError(
                    f"'{out}' holds a different augment job (key {key}; this command's is "
                    f"{self.plan.key}: source, frames, scenarios or device differ). Re-run the "
                    "original command to resume it, use --force to replace it, or choose "
                    "another --out"
                )
            self.done = {s["shard"]: s for s in old[KIND].get("shards", [])}
        if force:  # p4dsim's shard files go (below); a user's files in the folder stay
            self.done = {}
        self._verify()
        self._clean()
        self._dirty = True
        self.flush()

    def _verify(self) -> None:
        """Forget shards not in this plan or whose files are missing or changed."""
        wanted = {s.shard_id for s in self.plan.shards}
        for sid in list(self.done):
            rec = self.done[sid]
            ok = sid in wanted
            for f in rec.get("files", []) if ok else []:
                p = self.out_dir / f["path"]
                if not p.is_file() or sha256_file(p) != f["sha256"]:
                    ok = False
                    break
            if not ok:
                del self.done[sid]

    def _clean(self) -> None:
        """Remove temporary files and shard files no complete shard lists."""
        keep = {f["path"] for rec in self.done.values() for f in rec["files"]}
        for table in SHARD_TABLES:
            folder = self.out_dir / table
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                rel = f"{table}/{p.name}"
                ours = p.name.startswith(("shard-", ".shard-")) and not p.is_dir()
                if ours and rel not in keep:
                    p.unlink(missing_ok=True)

    # -- updates -------------------------------------------------------------------------

    def is_done(self, shard_id: str) -> bool:
        return shard_id in self.done

    def record(self, result: ShardResult) -> None:
        """Add a completed shard; the manifest is rewritten unless throttled."""
        if not result.ok:
            return
        self.done[result.shard_id] = {
            "shard": result.shard_id,
            "source_frame": result.frame,
            "frames": result.frames,
            "runs": [r.to_json() for r in result.runs],
            "files": [asdict(f) for f in result.files],
        }
        self._unpublished += [f.path for f in result.files]
        self._dirty = True
        if time.monotonic() - self._last_write >= self.min_interval_s:
            self.flush()

    def flush(self) -> None:
        """Move the staged files of newly recorded shards into place and rewrite
        ``manifest.json`` (and the dataset card) atomically, if anything changed."""
        from p4dsim.io.card import write_card

        if not self._dirty:
            return
        manifest = self.to_dict()
        publish_staged(self.out_dir, self._unpublished)
        self._unpublished = []
        write_card(self.out_dir, manifest)
        atomic_write_bytes(self.out_dir / "manifest.json", json.dumps(manifest, indent=1).encode())
        self._dirty = False
        self._last_write = time.monotonic()

    def set_summary(self, summary: dict[str, Any]) -> None:
        self.summary = dict(summary)
        self._dirty = True

    @property
    def complete(self) -> bool:
        return all(s.shard_id in self.done for s in self.plan.shards)

    def to_dict(self) -> dict[str, Any]:
        """The manifest; shards in plan (frame) order whatever the completion order."""
        order = [s.shard_id for s in self.plan.shards if s.shard_id in self.done]
        recs = [self.done[sid] for sid in order]
        files = [
            {**f, "shard": r["shard"], "source_frame": r["source_frame"]}
            for table in SHARD_TABLES
            for r in recs
            for f in r["files"]
            if f["table"] == table
        ]
        p = self.plan
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "p4dsim_version": __version__,
            "python": platform.python_version(),
            "source": p.source,
            "seed": sorted({s["scenario"].get("seed", 0) for s in p.scenarios}),
            "runs": [run | {"source_frame": r["source_frame"]} for r in recs for run in r["runs"]],
            "summary": self.summary,
            KIND: {
                "kind": KIND,
                "job_key": p.key,
                "complete": self.complete,
                "frames": p.frames,
                "device": p.device,
                "scenarios": p.scenarios,
                "tasks": p.n_tasks,
                "shards_total": len(p.shards),
                "shards": recs,
            },
            "shards": files,
        }
