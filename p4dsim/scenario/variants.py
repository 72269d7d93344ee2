"""Variants: one scenario file expanded into several runs.

Each variant is a fully validated :class:`~p4dsim.scenario.model.Scenario` with an id that
keys its rows in the output (``variant_id``) and the overrides that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from p4dsim.scenario.model import Scenario


@dataclass(frozen=True)
class Variant:
    variant_id: str
    scenario: Scenario
    overrides: dict[str, Any] = field(default_factory=dict)


def expand_variants(scenario: Scenario, where: str = "scenario") -> list[Variant]:
    """The runs a scenario expands to; a scenario without variants is one run, ``base``."""
    return [Variant("base", scenario, {})]
