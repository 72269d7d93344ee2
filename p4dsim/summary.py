"""What a run reports: dataclasses written into ``manifest.json`` (by
:func:`dataclasses.asdict`, fields in this order) and printed by the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunRecord:
    """One run (one scenario variant) of a dataset: its ids, frames rendered and the variant's
    overrides (field path -> value)."""

    run_id: str
    variant_id: str
    frames: int
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReplayRun(RunRecord):
    """A replayed run with its safety: first collision (s; None: none), smallest distance
    (m; None without actors), smallest time to collision (s; None: never on a collision
    course), and the frames with a kinematic warning."""

    first_collision_s: float | None = None
    min_distance_m: float | None = None
    min_ttc_s: float | None = None
    kinematic_warnings: int = 0


@dataclass
class ReplaySummary:
    """A replay over every run: frames rendered, wall time (s), mean coverage (None without
    frames), scene size, renderer and device, and safety over every run (the earliest first
    collision, the smallest distance, runs that collide, frames with a kinematic warning).
    ``exports``: format -> folder of the exports written after the dataset (not in the
    manifest, which is written before them)."""

    frames: int
    seconds: float
    mean_coverage: float | None
    gaussians: int
    actors: int
    renderer: str
    device: str
    first_collision_s: float | None = None
    min_distance_m: float | None = None
    runs_with_collision: int = 0
    kinematic_warnings: int = 0
    exports: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``summary`` entry."""
        d = asdict(self)
        del d["exports"]
        return d

    @staticmethod
    def safety(runs: list[ReplayRun]) -> dict[str, Any]:
        """The safety fields over ``runs``."""
        firsts = [r.first_collision_s for r in runs if r.first_collision_s is not None]
        dists = [r.min_distance_m for r in runs if r.min_distance_m is not None]
        return {
            "first_collision_s": min(firsts) if firsts else None,
            "min_distance_m": min(dists) if dists else None,
            "runs_with_collision": len(firsts),
            "kinematic_warnings": sum(r.kinematic_warnings for r in runs),
        }
