"""Variants expand one file into runs; bad input (unknown perturbation, missing track id,
impossible variant path, NaN) is a clear error naming file and field, and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from p4dsim.errors import ConfigError
from p4dsim.scenario.load import load_scenario
from p4dsim.scenario.variants import expand_variants

ENV = {**os.environ, "COLUMNS": "250"}
BASE = """
source: {adapter: toytown, width: 64, height: 20}
duration_s: 0.1
fps: 10
ego:
  perturbations:
    - {type: lateral_offset, offset_m: 0.0, ramp_s: 2.0}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_grid_and_random_expand(tmp_path):
    p = write(
        tmp_path,
        BASE
        + "variants:\n  grid: {ego.perturbations.0.offset_m: [-1.0, 1.0], fps: [5, 10]}\n"
        + "  random: {n: 3, seed: 4, ranges: {'ego.perturbations[0].start_s': [0.0, 0.5]}}\n",
    )
    sc = load_scenario(p)
    vs = expand_variants(sc, str(p))
    assert len(vs) == 2 * 2 * 3
    assert len({v.variant_id for v in vs}) == 12
    offs = sorted({v.scenario.ego.perturbations[0].offset_m for v in vs})
    assert offs == [-1.0, 1.0]
    starts = [v.scenario.ego.perturbations[0].start_s for v in vs]
    assert all(0.0 <= s <= 0.5 for s in starts) and len(set(starts)) == 3
    assert vs[0].overrides["fps"] == 5 and vs[0].scenario.fps == 5
    assert all(v.scenario.variants is None for v in vs)
    # reproducible
    again = expand_variants(load_scenario(p), str(p))
    assert [v.overrides for v in again] == [v.overrides for v in vs]


def test_validate_prints_expanded_list(tmp_path):
    p = write(tmp_path, BASE + "variants: {grid: {ego.perturbations.0.offset_m: [-1, 0, 2]}}\n")
    r = subprocess.run(
        [sys.executable, "-m", "p4dsim", "validate", str(p)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert r.returncode == 0, r.stderr
    assert "3 run(s)" in " ".join(r.stdout.split())
    for vid in ("v000", "v001", "v002"):
        assert vid in r.stdout
    assert "offset_m=2" in r.stdout


BAD = [
    (
        "ego: {perturbations: [{type: warp_drive, offset_m: 1}]}\n",
        "field 'ego.perturbations[0]'",
    ),
    (
        "actors: {rules: [{select: {track_id: car99}, behaviour: stop}]}\n",
        "field 'actors.rules[0].select': track id 'car99' does not exist",
    ),
    (
        "variants: {grid: {ego.perturbations.3.offset_m: [1, 2]}}\n",
        "field 'variants.grid.ego.perturbations.3.offset_m'",
    ),
    (
        "variants: {grid: {ego.nonsense: [1, 2]}}\n",
        "has no field 'nonsense'",
    ),
    (
        "ego: {perturbations: [{type: lateral_offset, offset_m: .nan}]}\n",
        "field 'ego.perturbations[0].offset_m'",
    ),
    (
        "variants: {grid: {ego.perturbations.0.offset_m: [1.0, .nan]}}\n",
        "field 'variants.grid'",
    ),
    (
        "actors: {rules: [{select: {label: vehicle}, behaviour: {type: brake, deceleration_mps2: .inf}}]}\n",
        "field 'actors.rules[0].behaviour.deceleration_mps2'",
    ),
    (
        "variants: {grid: {ego.perturbations.0.ramp_s: [-1.0]}}\n",
        "variant v000",
    ),
]


@pytest.mark.parametrize(("extra", "needle"), BAD)
def test_bad_input_cli_names_file_and_field_and_writes_nothing(tmp_path, extra, needle):
    text = BASE + extra
    if extra.startswith("ego:"):
        text = BASE.split("ego:")[0] + extra
    p = write(tmp_path, text)
    out = tmp_path / "out"
    for cmd in ("validate", "replay"):
        args = [sys.executable, "-m", "p4dsim", cmd, str(p)]
        if cmd == "replay":
            args += ["--out", str(out), "-q"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=300, env=ENV)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        err = " ".join(r.stderr.split())
        assert str(p) in err and needle in err, (cmd, r.stderr)
        assert "Traceback" not in r.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["s.yaml"]


def test_impossible_path_through_unset_field(tmp_path):
    p = write(tmp_path, BASE + "variants: {grid: {ego.waypoints.0: [[0, 0, 0, 0]]}}\n")
    with pytest.raises(ConfigError, match="not set in the file"):
        expand_variants(load_scenario(p), str(p))
