"""Planning an augment job: (source frame × scenario × variant) tasks grouped into shards.

A task is one run: one scenario variant replayed on the scene built from one source frame.
A shard is every task of one source frame, so that a worker builds that frame's scene once
and renders all its runs on it. Each shard has a content-derived id (the frame and a hash of
everything that determines its rows), which names its Parquet files.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p4dsim import __version__
from p4dsim.errors import ConfigError
from p4dsim.io.dataset import FORMAT_VERSION
from p4dsim.io.rows import TABLES
from p4dsim.preflight import check_timing
from p4dsim.scenario.load import load_scenario
from p4dsim.scenario.model import Scenario, SourceModel
from p4dsim.scenario.variants import expand_variants, variant_run_id
from p4dsim.source import SourceSpec

#: the tables every shard writes, one Parquet file each
SHARD_TABLES = tuple(TABLES)


@dataclass(frozen=True)
class RunTask:
    """One run of a shard: ``scenario`` is the resolved variant (JSON mapping) whose source is
    the shard's frame; rows are keyed by (run_id, variant_id, frame_index)."""

    run_id: str
    variant_id: str
    scenario: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    where: str = "scenario"


@dataclass(frozen=True)
class ShardSpec:
    """Everything a worker needs to render one shard; plain data, so it pickles cheaply.

    source: source string without frame; frame: the source frame id; device: renderer
    (auto/cpu/cuda, or None = each scenario's render.device); base_dir: folder relative
    source paths resolve against.
    """

    shard_id: str
    frame: int
    source: str
    runs: tuple[RunTask, ...]
    device: str | None
    base_dir: str | None = None

    def relpath(self, table: str) -> str:
        """Path of this shard's file of ``table``, relative to the dataset folder."""
        return f"{table}/shard-{self.shard_id}.parquet"

    @property
    def n_frames(self) -> int:
        """Rendered frames (rows of the frames table) this shard produces."""
        return sum(len(Scenario.model_validate(r.scenario).times()) for r in self.runs)


@dataclass
class JobPlan:
    """The shards of a job in frame order, and the key naming the whole job."""

    key: str
    source: str
    frames: list[int]
    scenarios: list[dict[str, Any]]
    device: str | None
    shards: list[ShardSpec]

    @property
    def n_tasks(self) -> int:
        return sum(len(s.runs) for s in self.shards)


def _digest(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def scenario_files(patterns: list[str], base_dir: Path | None = None) -> list[Path]:
    """The scenario files matching ``patterns`` (globs or paths), sorted and unique."""
    out: list[Path] = []
    for pat in patterns:
        full = pat if base_dir is None or Path(pat).is_absolute() else str(base_dir / pat)
        hits = sorted(glob.glob(full, recursive=True))
        if not hits:
            raise ConfigError(
                f"--scenarios '{pat}' matches no file; give a scenario YAML path or a glob "
                "such as 'scenarios/*.yaml' (quoted, so the shell does not expand it)"
            )
        out.extend(Path(h) for h in hits if Path(h).is_file())
    seen: set[Path] = set()
    unique = []
    for p in out:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(p)
    if not unique:
        raise ConfigError(f"--scenarios {patterns}: no scenario files found")
    return unique


def with_source(scenario: Scenario, spec: SourceSpec) -> Scenario:
    """``scenario`` with its source replaced by ``spec`` (adapter, path, options, frame)."""
    return scenario.model_copy(update={"source": SourceModel.model_validate(spec.to_mapping())})


def plan_job(
    source: str,
    frames: list[int],
    scenarios: list[Path],
    device: str | None = None,
    base_dir: Path | None = None,
) -> JobPlan:
    """Expand (frame × scenario × variant) into tasks, one shard per source frame.

    Run ids are ``<scenario name>@<frame:06d>``; scenario names must be unique.
    """
    spec = SourceSpec.parse(source)
    loaded: list[tuple[Path, Scenario]] = []
    names: dict[str, Path] = {}
    for path in scenarios:
        sc = load_scenario(path)
        if sc.name in names:
            raise ConfigError(
                f"scenarios '{names[sc.name]}' and '{path}' have the same name '{sc.name}'; "
                "run ids must be unique: set a distinct 'name' in one of them"
            )
        names[sc.name] = path
        loaded.append((path, sc))
    shards = []
    for frame in frames:
        fspec = spec.with_frame(frame)
        runs = []
        for path, sc in loaded:
            resolved = with_source(sc, fspec)
            base_id = f"{sc.name}@{frame:06d}"
            variants = expand_variants(resolved, str(path))
            for v in variants:
                check_timing(v.scenario, str(path))  # as validate and replay do
                runs.append(
                    RunTask(
                        run_id=variant_run_id(base_id, v.variant_id, len(variants)),
                        variant_id=v.variant_id,
                        scenario=v.scenario.model_dump(mode="json"),
                        overrides=dict(v.overrides),
                        where=str(path),
                    )
                )
        digest = _digest(
            {
                "p4dsim": __version__,
                "format_version": FORMAT_VERSION,
                "source": fspec.to_mapping(),
                "device": device,
                "runs": [[r.run_id, r.variant_id, r.scenario] for r in runs],
            }
        )
        shards.append(
            ShardSpec(
                shard_id=f"{frame:06d}-{digest[:12]}",
                frame=frame,
                source=source,
                runs=tuple(runs),
                device=device,
                base_dir=None if base_dir is None else str(base_dir),
            )
        )
    scen_info = [
        {"file": str(p), "name": sc.name, "scenario": sc.model_dump(mode="json")}
        for p, sc in loaded
    ]
    key = _digest(
        {
            "source": source,
            "frames": frames,
            "device": device,
            "shards": [s.shard_id for s in shards],
        }
    )
    return JobPlan(key[:16], source, list(frames), scen_info, device, shards)
