"""Running an augment job: plan, resume, execute, record.

:func:`run_augment` is what ``p4dsim augment`` calls: it selects the source frames, plans the
shards, opens (or resumes) the output folder, runs the shards that are not complete on the
chosen executor, records each completed shard in the manifest as it arrives, and returns a
:class:`AugmentSummary`. Failed shards do not stop the others; they are listed in the summary
and are retried by the next run of the same command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from p4dsim.augment.executors import Executor, make_executor
from p4dsim.augment.manifest import AugmentManifest
from p4dsim.augment.shard import ShardResult
from p4dsim.augment.tasks import JobPlan, plan_job, scenario_files
from p4dsim.errors import ConfigError
from p4dsim.selection import parse_selection
from p4dsim.source import SourceSpec
from p4dsim.types import Device, check_device


@dataclass
class AugmentConfig:
    """The options of ``p4dsim augment`` (see its ``--help``)."""

    source: str
    scenarios: list[str]
    out: Path
    frames: str = ":"
    executor: str = "local"
    workers: int | None = None
    address: str | None = None
    gpus_per_worker: float = 0.0
    #: None: split build and render processes when rendering on a GPU; True/False: always/never
    split: bool | None = None
    render_procs: int | None = None
    device: Device | None = None
    force: bool = False
    manifest_interval_s: float = 1.0


@dataclass
class AugmentSummary:
    """Outcome of one invocation. ``frames``/``seconds`` count this invocation's work only;
    ``dataset_frames`` counts every frame the dataset now holds."""

    out_dir: Path
    tasks: int
    shards_total: int
    shards_skipped: int
    shards_done: int
    frames: int
    dataset_frames: int
    seconds: float
    executor: str
    failed: list[ShardResult] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def plan_from_config(cfg: AugmentConfig, base_dir: Path | None = None) -> JobPlan:
    """Select frames (checked against the log's length) and plan the job's shards."""
    check_device(cfg.device, "--device")
    base_dir = base_dir or Path.cwd()
    spec = SourceSpec.parse(cfg.source)
    if spec.frame != 0:
        raise ConfigError(
            f"--source '{cfg.source}': give frames with --frames, not as a source option"
        )
    log = spec.open(base_dir, where=f"--source '{cfg.source}'")
    frames = parse_selection(cfg.frames, len(log), "--frames", base_dir)
    files = scenario_files(list(cfg.scenarios), None)
    return plan_job(cfg.source, frames, files, cfg.device, base_dir)


def run_augment(
    cfg: AugmentConfig,
    on_plan: Callable[[JobPlan, int], None] | None = None,
    on_result: Callable[[ShardResult], None] | None = None,
    executor: Executor | None = None,
) -> AugmentSummary:
    """Run (or resume) an augment job; ``on_plan(plan, n_skipped)`` is called once the
    resume state is known, ``on_result`` after every finished shard. ``executor`` replaces
    the one ``cfg`` names (any object with ``name`` and ``run(shards, out_dir, on_result)``)."""
    t0 = time.perf_counter()
    if executor is None:
        executor = make_executor(
            cfg.executor,
            cfg.workers,
            cfg.address,
            cfg.gpus_per_worker,
            split=cfg.split,
            render_procs=cfg.render_procs,
        )
    plan = plan_from_config(cfg)
    manifest = AugmentManifest.open(
        Path(cfg.out), plan, force=cfg.force, min_interval_s=cfg.manifest_interval_s
    )
    todo = [s for s in plan.shards if not manifest.is_done(s.shard_id)]
    skipped = len(plan.shards) - len(todo)
    if on_plan:
        on_plan(plan, skipped)
    failed: list[ShardResult] = []
    frames = 0
    done = 0

    def collect(res: ShardResult) -> None:
        nonlocal frames, done
        if res.ok:
            manifest.record(res)
            frames += res.frames
            done += 1
        else:
            failed.append(res)
        if on_result:
            on_result(res)

    try:
        executor.run(todo, Path(cfg.out), collect)
    finally:
        seconds = time.perf_counter() - t0
        summary = AugmentSummary(
            out_dir=Path(cfg.out),
            tasks=plan.n_tasks,
            shards_total=len(plan.shards),
            shards_skipped=skipped,
            shards_done=done,
            frames=frames,
            dataset_frames=sum(r["frames"] for r in manifest.done.values()),
            seconds=seconds,
            executor=executor.name,
            failed=sorted(failed, key=lambda r: r.frame),
        )
        manifest.set_summary(
            {
                "executor": executor.name,
                "tasks": summary.tasks,
                "shards": summary.shards_total,
                "frames": summary.dataset_frames,
                "failed_shards": [r.shard_id for r in summary.failed],
                "last_run": {
                    "frames": frames,
                    "seconds": round(seconds, 3),
                    "frames_per_s": round(summary.frames_per_s, 3),
                    "shards_skipped": skipped,
                },
            }
        )
        manifest.close()
    return summary
