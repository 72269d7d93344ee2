"""Malformed scenario files exit non-zero with a message naming the field, and write nothing."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from p4dsim.errors import ConfigError
from p4dsim.scenario.load import load_scenario

GOOD = """
source: {adapter: toytown, width: 64, height: 20}
duration_s: 0.1
fps: 10
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_good_file_loads(tmp_path):
    s = load_scenario(write(tmp_path, GOOD))
    assert s.name == "s"
    assert s.times() == [0.0, 0.1]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD + "colour: red\n", "field 'colour': unknown key"),
        (GOOD.replace("duration_s: 0.1", "duration_s: -1"), "field 'duration_s'"),
        (GOOD.replace("duration_s: 0.1", "duration_s: abc"), "field 'duration_s'"),
        (GOOD.replace("duration_s: 0.1", "duration_s: .nan"), "field 'duration_s'"),
        ("duration_s: 1\n", "field 'source': required field is missing"),
        (GOOD + "ego: {perturbations: [{type: teleport}]}\n", "field 'ego.perturbations[0]'"),
        (GOOD + "ego: {perturbations: [{type: lateral_offset, offset: 1}]}\n", "offset"),
        (GOOD + "actors: {default: fly}\n", "field 'actors.default'"),
        ("source: [1, 2\n", "not valid YAML at line"),
    ],
)
def test_bad_files_name_the_field(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_scenario(p)
    assert str(p) in str(exc.value)
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("bogus_key: 1\n", "field 'bogus_key'"),
        ("duration_s: -2\n", "field 'duration_s'"),
    ],
)
def test_cli_exits_nonzero_and_writes_nothing(tmp_path, extra, needle):
    text = GOOD.replace("duration_s: 0.1\n", "") + extra
    if "duration_s" not in extra:
        text += "duration_s: 0.1\n"
    p = write(tmp_path, text)
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "p4dsim", "replay", str(p), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert [x.name for x in tmp_path.iterdir()] == ["s.yaml"]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")
