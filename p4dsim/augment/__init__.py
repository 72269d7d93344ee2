"""Batch augmentation: many source frames × scenarios × variants, sharded, resumable.

See :func:`p4dsim.augment.job.run_augment` (what ``p4dsim augment`` runs). Names are imported
on first use, so a worker process can import :mod:`p4dsim.augment.threadcaps` (its
initializer) before numpy, torch or numba are loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p4dsim.augment.job import AugmentConfig, AugmentSummary, run_augment
    from p4dsim.selection import parse_selection

__all__ = ["AugmentConfig", "AugmentSummary", "parse_selection", "run_augment"]


def __getattr__(name: str) -> Any:
    if name == "parse_selection":
        from p4dsim.selection import parse_selection

        return parse_selection
    if name in __all__:
        from p4dsim.augment import job

        return getattr(job, name)
    raise AttributeError(f"module 'p4dsim.augment' has no attribute {name!r}")
