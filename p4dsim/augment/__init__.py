"""Batch augmentation: many source frames × scenarios × variants, sharded, resumable.

See :func:`p4dsim.augment.job.run_augment` (what ``p4dsim augment`` runs).
"""

from p4dsim.augment.job import AugmentConfig, AugmentSummary, run_augment
from p4dsim.selection import parse_selection

__all__ = ["AugmentConfig", "AugmentSummary", "parse_selection", "run_augment"]
