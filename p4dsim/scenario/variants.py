"""Variants: one scenario file expanded into several runs.

Each variant is a fully validated :class:`~p4dsim.scenario.model.Scenario` with an id that
keys its rows in the output (``variant_id``) and the overrides that made it.

``variants: {grid: {PATH: [v1, v2, ...], ...}}`` gives the Cartesian product of every value
list; ``variants: {random: {n: N, seed: S, ranges: {PATH: [low, high], ...}}}`` gives N runs
with each field drawn uniformly from its range (reproducible from the seed). With both, every
grid point is combined with every random draw. A PATH is a dotted field path into the
scenario, list items by index: ``ego.perturbations.0.offset_m`` (or
``ego.perturbations[0].offset_m``).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from p4dsim.errors import ConfigError
from p4dsim.scenario.load import validation_message
from p4dsim.scenario.model import Scenario


@dataclass(frozen=True)
class Variant:
    variant_id: str
    scenario: Scenario
    overrides: dict[str, Any] = field(default_factory=dict)


def variant_run_id(base: str, variant_id: str, n_variants: int) -> str:
    """The ``run_id`` of one variant's rows: ``base`` for a scenario with one run, else
    ``base/variant_id``, so that ``run_id`` alone tells runs apart and joining ``frames`` and
    ``actors`` on (``run_id``, ``frame_index``) never pairs rows of two variants."""
    return base if n_variants == 1 else f"{base}/{variant_id}"


def split_path(path: str) -> list[str | int]:
    """``"ego.perturbations[0].offset_m"`` -> ``["ego", "perturbations", 0, "offset_m"]``."""
    parts: list[str | int] = []
    for tok in re.sub(r"\[(\d+)\]", r".\1", path).split("."):
        if tok == "":
            raise ValueError("empty path component")
        parts.append(int(tok) if tok.isdigit() else tok)
    return parts


def set_path(data: dict[str, Any], path: str, value: Any, field_name: str) -> None:
    """Set ``value`` at ``path`` inside ``data`` (in place). The path must exist, except for a
    new key directly under ``source`` (adapter options); ``field_name`` names it in errors."""
    try:
        parts = split_path(path)
    except ValueError:
        raise ConfigError(f"{field_name}: '{path}' is not a dotted field path") from None
    node: Any = data
    walked: list[str] = []
    for i, key in enumerate(parts):
        last = i == len(parts) - 1
        here = ".".join(walked) or "the scenario"
        if isinstance(node, list):
            if not isinstance(key, int):
                raise ConfigError(
                    f"{field_name}: '{path}' is impossible: {here} is a list; "
                    "index it with a number"
                )
            if key >= len(node):
                raise ConfigError(
                    f"{field_name}: '{path}' is impossible: {here} has {len(node)} item(s) "
                    f"(valid indices 0..{len(node) - 1})"
                )
        elif isinstance(node, dict):
            if key not in node and not (last and walked == ["source"]):
                raise ConfigError(
                    f"{field_name}: '{path}' is impossible: {here} has no field '{key}' "
                    f"(its fields: {', '.join(map(str, node)) or 'none'})"
                )
        else:
            raise ConfigError(
                f"{field_name}: '{path}' is impossible: {here} is a value, not a mapping or list"
            )
        if last:
            node[key] = value
        else:
            if isinstance(node, dict) and node.get(key) is None:
                raise ConfigError(
                    f"{field_name}: '{path}' is impossible: {'.'.join([*walked, str(key)])} "
                    "is not set in the file; write it out to sweep a field inside it"
                )
            node = node[key]
        walked.append(str(key))


def _points(scenario: Scenario) -> list[dict[str, Any]]:
    v = scenario.variants
    assert v is not None
    grid: list[dict[str, Any]] = [{}]
    if v.grid:
        keys = list(v.grid)
        grid = [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*v.grid.values())
        ]
    draws: list[dict[str, Any]] = [{}]
    if v.random is not None:
        rng = np.random.default_rng(v.random.seed)
        draws = [
            {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in v.random.ranges.items()}
            for _ in range(v.random.n)
        ]
    return [{**g, **d} for g in grid for d in draws]


def expand_variants(scenario: Scenario, where: str = "scenario") -> list[Variant]:
    """The runs a scenario expands to; a scenario without variants is one run, ``base``.

    Raises :class:`ConfigError` naming the file and the ``variants`` field for a path that
    does not exist in the scenario, and naming the variant and field for a value the scenario
    model rejects (NaN, out of range, wrong type).
    """
    if scenario.variants is None or (not scenario.variants.grid and not scenario.variants.random):
        return [Variant("base", scenario, {})]
    base = scenario.model_dump(mode="python", exclude={"variants"})
    points = _points(scenario)
    width = max(3, len(str(len(points) - 1)))
    out = []
    random_keys = set(scenario.variants.random.ranges) if scenario.variants.random else set()
    for i, overrides in enumerate(points):
        vid = f"v{i:0{width}d}"
        data = _deep_copy(base)
        for path, value in overrides.items():
            kind = "random.ranges" if path in random_keys else "grid"
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(
                    f"{where}: field 'variants.{kind}.{path}': value {value!r} is not finite"
                )
            set_path(data, path, value, f"{where}: field 'variants.{kind}.{path}'")
        try:
            sc = Scenario.model_validate(data)
        except ValidationError as exc:
            desc = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            raise ConfigError(validation_message(exc, f"{where}: variant {vid} ({desc})")) from None
        out.append(Variant(vid, sc, overrides))
    return out


def _deep_copy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _deep_copy(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_deep_copy(v) for v in x]
    return x
