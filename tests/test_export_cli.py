"""`p4dsim export` and `output.formats`: staged exports through the plugins."""

import subprocess
import sys

import pytest

from p4dsim.errors import AdapterNotFoundError, ConfigError, OutputError
from p4dsim.io.export import MARKER, export_dataset
from p4dsim.plugins import exporters
from p4dsim.replay import replay
from p4dsim.scenario.load import parse_scenario

SCENARIO = {
    "source": {"adapter": "toytown", "width": 96, "height": 32},
    "duration_s": 0.1,
    "fps": 10,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "run"
    replay(parse_scenario(SCENARIO, "test"), out)
    return out


@pytest.mark.skipif("kitti" not in exporters(), reason="KITTI plugin not installed")
def test_export_kitti_cli(dataset, tmp_path):
    out = tmp_path / "kitti"
    r = subprocess.run(
        [sys.executable, "-m", "p4dsim", "export", str(dataset), str(out), "--format", "kitti"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "image_2").iterdir()) == ["000000.png", "000001.png"]
    assert (out / MARKER).exists()
    # Re-exporting over an earlier export replaces it; nothing staged is left behind.
    export_dataset(dataset, "kitti", out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_refuses_foreign_folder_and_unknown_format(dataset, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(OutputError, match="refusing to overwrite"):
        export_dataset(dataset, next(iter(exporters()), "kitti"), tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    with pytest.raises(AdapterNotFoundError, match="installed exporters"):
        export_dataset(dataset, "nosuchformat", tmp_path / "x")


@pytest.mark.skipif("kitti" not in exporters(), reason="KITTI plugin not installed")
def test_scenario_output_formats(tmp_path):
    sc = parse_scenario({**SCENARIO, "output": {"formats": ["kitti"]}}, "test")
    res = replay(sc, tmp_path / "run")
    assert (tmp_path / "run" / "exports" / "kitti" / "label_2" / "000000.txt").exists()
    assert res.summary.exports["kitti"].endswith("kitti")


def test_unknown_output_format_fails_before_rendering(tmp_path):
    sc = parse_scenario({**SCENARIO, "output": {"formats": ["bogus"]}}, "s.yaml")
    with pytest.raises(ConfigError, match=r"output.formats\[0\]"):
        replay(sc, tmp_path / "run")
    assert not (tmp_path / "run").exists()
