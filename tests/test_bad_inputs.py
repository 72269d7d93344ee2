"""The catalogue of user mistakes: every case exits with the documented status (2 for a user
mistake or a usage error), prints one line without a traceback that names the file / field /
line / byte offset, and leaves nothing behind in the folders it was pointed at.

The CLI runs in-process (``p4dsim.cli.main`` with ``sys.argv``), so the whole catalogue takes
seconds; nothing renders beyond tiny toytown images.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TINY = "source: {adapter: toytown, width: 64, height: 24, frames: 5}\n"
OK_BODY = TINY + "duration_s: 0.2\nfps: 10\n"


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _one_line_error(err: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in err, (n, err)


# ---------------------------------------------------------------- command-line usage

USAGE = [
    ([], ["Usage"]),
    (["replay"], ["Missing argument", "p4dsim replay --help"]),
    (["replay", "x.yaml", "--bogus"], ["No such option: --bogus"]),
    (["info", "toytown", "--frame", "abc"], ["--frame"]),
    (["nosuch"], ["No such command 'nosuch'"]),
    (["build", "toytown"], ["--out"]),
    (["export", "ds"], ["Missing argument"]),
    (["augment", "--source", "toytown"], ["--scenarios"]),
    (["validate", "a.yaml", "b.yaml"], ["unexpected extra argument"]),
    (["eval", "future"], ["--source"]),
]


@pytest.mark.parametrize("args,needles", USAGE, ids=[" ".join(a) or "(none)" for a, _ in USAGE])
def test_usage_errors_exit_2_without_traceback(run, args, needles):
    code, out, err = run(*args)
    assert code == 2
    assert "Traceback" not in err + out
    for n in needles:
        assert n in out + err, (n, out, err)


OPTION_VALUES = [
    (["replay", "s.yaml", "--device", "tpu"], "--device"),
    (["bench", "--rgb", "gif"], "--rgb"),
    (["eval", "future", "--source", "toytown", "--actors", "bogus"], "--actors"),
    (["info", "nosuch"], "unknown adapter 'nosuch'"),
    (["info", "toytown", "--frame", "999"], "out of range"),
    (["info", "toytown:?sede=1"], "sede"),
    (["info", "kitti-raw:/nope?date=2011_09_26&drive=0052"], "/nope"),
]


@pytest.mark.parametrize("args,needle", OPTION_VALUES, ids=[a[-1] for a, _ in OPTION_VALUES])
def test_bad_option_values(run, tmp_path, args, needle):
    (tmp_path / "s.yaml").write_text(OK_BODY)
    before = _snapshot(tmp_path)
    code, _, err = run(*args)
    assert code == 2
    _one_line_error(err, needle)
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- scenario files

SCENARIOS = {
    "duplicate_key": ("name: a\nname: b\n" + OK_BODY, ["line 2", "duplicate key 'name'"]),
    "duplicate_nested_key": (
        "source: {adapter: toytown, frame: 1, frame: 2}\nduration_s: 1\n",
        ["duplicate key 'frame'"],
    ),
    "not_yaml": ("source: [unclosed\n", ["not valid YAML", "line"]),
    "top_level_list": ("- a\n- b\n", ["must be a mapping"]),
    "empty_file": ("", ["must be a mapping"]),
    "unknown_key": (OK_BODY + "colour: red\n", ["field 'colour'", "unknown key"]),
    "missing_duration": (TINY, ["field 'duration_s'", "required"]),
    "negative_duration": (TINY + "duration_s: -1\n", ["duration_s"]),
    "mistyped_duration": (TINY + "duration_s: abc\n", ["duration_s"]),
    "nan_duration": (TINY + "duration_s: .nan\n", ["duration_s"]),
    "zero_fps": (TINY + "duration_s: 1\nfps: 0\n", ["fps"]),
    "unknown_adapter": ("source: {adapter: nosuch}\nduration_s: 1\n", ["source.adapter", "nosuch"]),
    "frame_past_end": (
        "source: {adapter: toytown, frames: 5, frame: 99}\nduration_s: 1\n",
        ["source.frame", "out of range"],
    ),
    "negative_frame": ("source: {adapter: toytown, frame: -1}\nduration_s: 1\n", ["frame"]),
    "unknown_source_option": (
        "source: {adapter: toytown, sede: 3}\nduration_s: 1\n",
        ["field 'source'", "'sede'"],
    ),
    "mistyped_source_option": (
        "source: {adapter: toytown, seed: abc}\nduration_s: 1\n",
        ["field 'source'", "'seed'"],
    ),
    "missing_dataset_path": (
        "source: {adapter: kitti-raw, path: /nonexistent/kitti, date: '2011_09_26', drive: '0052'}"
        "\nduration_s: 1\n",
        ["/nonexistent/kitti"],
    ),
    "frames_budget": (
        "source: {adapter: toytown, width: 1242, height: 375}\nduration_s: 3600\nfps: 1000\n",
        ["P4DSIM_MAX_PIXELS"],
    ),
    "huge_camera": (
        OK_BODY + "camera: {width: 100000, height: 30000}\n",
        ["camera", "P4DSIM_MAX_FRAME_PIXELS"],
    ),
    "zero_camera": (OK_BODY + "camera: {width: 0}\n", ["camera.width"]),
    "perturbation_after_end": (
        OK_BODY + "ego: {perturbations: [{type: lateral_offset, offset_m: 1, start_s: 5}]}\n",
        ["ego.perturbations[0].start_s", "never happen"],
    ),
    "absurd_offset": (
        OK_BODY + "ego: {perturbations: [{type: lateral_offset, offset_m: 1000000}]}\n",
        ["ego.perturbations[0].offset_m", "leaves the scene"],
    ),
    "absurd_swerve": (
        OK_BODY + "ego: {perturbations: [{type: swerve, amplitude_m: 5000, period_s: 2}]}\n",
        ["amplitude_m"],
    ),
    "unknown_perturbation": (
        OK_BODY + "ego: {perturbations: [{type: teleport}]}\n",
        ["ego.perturbations[0]"],
    ),
    "yaw_out_of_range": (
        OK_BODY + "ego: {perturbations: [{type: yaw_offset, offset_deg: 500}]}\n",
        ["offset_deg"],
    ),
    "behaviour_after_end": (
        OK_BODY + "actors: {rules: [{select: {label: vehicle}, behaviour: {type: brake, "
        "start_s: 50, deceleration_mps2: 4}}]}\n",
        ["actors.rules[0].behaviour.start_s"],
    ),
    "unknown_track": (
        OK_BODY + "actors: {rules: [{select: {track_id: nobody}, behaviour: remove}]}\n",
        ["track id 'nobody'"],
    ),
    "unknown_export_format": (OK_BODY + "output: {formats: [parqet]}\n", ["output.formats[0]"]),
    "bad_rgb_codec": (OK_BODY + "output: {rgb: gif}\n", ["output.rgb"]),
    "zero_stride": (OK_BODY + "scene: {stride: 0}\n", ["scene.stride"]),
    "bad_variant_path": (
        OK_BODY + "variants: {grid: {ego.nothing.here: [1, 2]}}\n",
        ["variants"],
    ),
    "output_dir_under_a_file": (
        OK_BODY + "output: {dir: afile/ds}\n",
        ["field 'output.dir'", "afile"],
    ),
}


@pytest.mark.parametrize("case", sorted(SCENARIOS))
def test_bad_scenario_files(run, tmp_path, case):
    body, needles = SCENARIOS[case]
    (tmp_path / "afile").write_text("not a folder")
    path = tmp_path / f"{case}.yaml"
    path.write_text(body)
    before = _snapshot(tmp_path)
    code, _, err = run("validate", str(path))
    assert code == 2, err
    _one_line_error(err, *needles)
    assert f"{case}.yaml" in err or "unknown adapter" in err or "/nonexistent" in err
    assert _snapshot(tmp_path) == before


def test_valid_scenario_with_parquet_format(run, tmp_path):
    (tmp_path / "ok.yaml").write_text(OK_BODY + "output: {formats: [parquet]}\n")
    code, out, err = run("validate", "ok.yaml")
    assert code == 0, err
    assert "valid" in out


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("missing", "does not exist"),
        ("folder", "is a folder"),
        ("binary", "byte 1 is not UTF-8"),
        ("nul", "NUL byte at offset 7"),
    ],
)
def test_unreadable_scenario_files(run, tmp_path, kind, needle):
    p = tmp_path / "s.yaml"
    if kind == "folder":
        p.mkdir()
    elif kind == "binary":
        p.write_bytes(b"\x00\xff\xfe\x00garbage")
    elif kind == "nul":
        p.write_bytes(b"name: a\x00\n")
    before = _snapshot(tmp_path)
    for cmd in ("validate", "replay"):
        code, _, err = run(cmd, str(p))
        assert code == 2
        _one_line_error(err, needle)
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- output folders


@pytest.fixture
def scenario(tmp_path) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(OK_BODY)
    return p


@pytest.mark.parametrize(
    "out,prepare,needle",
    [
        ("", None, "--out"),
        ("afile", "file", "not a folder"),
        ("afile/sub", "file", "is a file"),
        ("theirs", "foreign", "holds no p4dsim manifest.json"),
    ],
    ids=["empty", "a_file", "under_a_file", "foreign_folder"],
)
def test_bad_replay_out(run, tmp_path, scenario, out, prepare, needle):
    if prepare == "file":
        (tmp_path / "afile").write_text("x")
    elif prepare == "foreign":
        (tmp_path / "theirs").mkdir()
        (tmp_path / "theirs" / "notes.md").write_text("mine")
    before = _snapshot(tmp_path)
    code, _, err = run("replay", str(scenario), "--out", out, "-q")
    assert code == 2
    _one_line_error(err, needle)
    assert _snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_replay_out_under_read_only_parent(run, tmp_path, scenario):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run("replay", str(scenario), "--out", str(ro / "ds"), "-q")
    finally:
        ro.chmod(0o755)
    assert code == 2
    _one_line_error(err, "not writable")


# ---------------------------------------------------------------- build


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--stride", "0"], "--stride must be between 1 and 8"),
        (["--stride", "100"], "--stride must be between 1 and 8"),
        (["--stride", "8", "-o", "s.ply"], "too coarse"),
        (["-o", "adir"], "is a folder"),
        (["-o", ""], "--out"),
        (["-o", "afile/s.ply"], "not a folder"),
    ],
    ids=["stride0", "stride100", "stride_coarse", "out_dir", "out_empty", "out_under_file"],
)
def test_bad_build(run, tmp_path, args, needle):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    if "-o" not in args:
        args = [*args, "-o", "s.ply"]
    before = _snapshot(tmp_path)
    code, _, err = run("build", "toytown:?width=48&height=24", *args)
    assert code == 2
    _one_line_error(err, needle)
    assert _snapshot(tmp_path) == before  # no .tmp left, nothing written


# ---------------------------------------------------------------- export


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    from p4dsim.replay import replay
    from p4dsim.scenario.load import parse_scenario

    root = tmp_path_factory.mktemp("ds")
    sc = parse_scenario(
        {
            "source": {"adapter": "toytown", "width": 48, "height": 24, "frames": 5},
            "duration_s": 0.2,
        },
        "test",
    )
    return replay(sc, root / "ds").out_dir


@pytest.mark.parametrize(
    "damage,needle",
    [
        ("none_dataset", "no manifest.json"),
        ("truncate", "checksum mismatch"),
        ("delete_shard", "listed in the manifest but missing"),
        ("bad_manifest", "not valid JSON"),
        ("unknown_format", "unknown export format"),
    ],
)
def test_bad_export(run, tmp_path, small_dataset, damage, needle):
    ds = tmp_path / "ds"
    shutil.copytree(small_dataset, ds)
    fmt = "kitti"
    shard = next((ds / "frames").glob("*.parquet"))
    if damage == "none_dataset":
        (ds / "manifest.json").unlink()
    elif damage == "truncate":
        data = shard.read_bytes()
        shard.write_bytes(data[: len(data) // 2])
    elif damage == "delete_shard":
        shard.unlink()
    elif damage == "bad_manifest":
        (ds / "manifest.json").write_text("{not json")
    elif damage == "unknown_format":
        fmt = "nosuch"
    before = _snapshot(tmp_path)
    code, _, err = run("export", str(ds), str(tmp_path / "exp"), "--format", fmt)
    assert code == 2
    _one_line_error(err, needle)
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- corrupted dataset files


def _kitti_copy(real: Path, dst: Path, frames: int = 2) -> Path:
    """A two-frame copy of the KITTI raw sample drive 0052 (files copied, so they can be
    damaged); returns the folder holding 2011_09_26/."""
    src = real / "kitti_raw" / "2011_09_26"
    day = dst / "2011_09_26"
    day.mkdir(parents=True)
    for f in src.glob("calib_*.txt"):
        shutil.copy(f, day / f.name)
    drive = "2011_09_26_drive_0052_sync"
    for sub in ("image_02/data", "velodyne_points/data", "oxts/data"):
        (day / drive / sub).mkdir(parents=True)
        for f in sorted((src / drive / sub).iterdir())[:frames]:
            shutil.copy(f, day / drive / sub / f.name)
    shutil.copy(src / drive / "oxts" / "timestamps.txt", day / drive / "oxts" / "timestamps.txt")
    return dst


KITTI = "kitti-raw:{}?date=2011_09_26&drive=0052"


@pytest.mark.parametrize(
    "damage,needle",
    [
        ("nan_oxts", "oxts/data/0000000001.txt:1: OXTS value 4 (roll) is nan"),
        ("short_oxts", "0000000000.txt:1: expected 30 OXTS values"),
        ("text_oxts", "0000000000.txt:1: bad OXTS value"),
        ("empty_velodyne", "is empty"),
        ("odd_velodyne", "not a multiple of 4"),
        ("missing_oxts", "oxts packets missing for frames 0000000001"),
    ],
)
def test_corrupted_kitti_raw(run, tmp_path, real_data, damage, needle):
    root = _kitti_copy(real_data, tmp_path / "k")
    drive = root / "2011_09_26" / "2011_09_26_drive_0052_sync"
    ox = sorted((drive / "oxts" / "data").iterdir())
    velo = sorted((drive / "velodyne_points" / "data").iterdir())
    if damage == "nan_oxts":
        vals = ox[1].read_text().split()
        vals[3] = "nan"
        ox[1].write_text(" ".join(vals) + "\n")
    elif damage == "short_oxts":
        ox[0].write_text(" ".join(ox[0].read_text().split()[:29]) + "\n")
    elif damage == "text_oxts":
        ox[0].write_text("x " * 30 + "\n")
    elif damage == "empty_velodyne":
        velo[0].write_bytes(b"")
    elif damage == "odd_velodyne":
        velo[0].write_bytes(velo[0].read_bytes()[:-4])
    elif damage == "missing_oxts":
        ox[1].unlink()
    before = _snapshot(tmp_path)
    code, _, err = run("info", KITTI.format(root), "--frame", "0")
    assert code == 2, err
    _one_line_error(err, needle)
    assert _snapshot(tmp_path) == before


def test_kitti_raw_without_timestamps_is_a_documented_choice(run, tmp_path, real_data, caplog):
    root = _kitti_copy(real_data, tmp_path / "k")
    (root / "2011_09_26" / "2011_09_26_drive_0052_sync" / "oxts" / "timestamps.txt").unlink()
    with caplog.at_level("WARNING", logger="p4dsim"):
        code, out, err = run("info", KITTI.format(root), "--frame", "1")
    assert code == 0, err
    assert "assuming KITTI's 10 Hz" in caplog.text
    assert "100000" in out  # frame 1 at 0.1 s


@pytest.mark.parametrize(
    "damage,needle",
    [("truncate", "byte"), ("garbage", "byte"), ("empty", "no records")],
)
def test_corrupted_waymo_tfrecord(run, tmp_path, real_data, damage, needle):
    src = real_data / "waymo_v1" / "pvps_data_one_frame.tfrecord"
    p = tmp_path / "seg.tfrecord"
    data = src.read_bytes()
    if damage == "truncate":
        p.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        p.write_bytes(b"\x07" * 64 + data[64:])
    else:
        p.write_bytes(b"")
    before = _snapshot(tmp_path)
    code, _, err = run("info", f"waymo:{p}")
    assert code == 2, err
    _one_line_error(err, str(p))
    assert needle in err.lower(), err
    assert _snapshot(tmp_path) == before


def test_corrupted_nuscenes_table(run, tmp_path, real_data):
    src = real_data / "nuscenes"
    dst = tmp_path / "nus"
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("samples", "maps"))
    (dst / "samples").symlink_to(src / "samples")
    (dst / "maps").symlink_to(src / "maps")
    (dst / "v1.0-mini" / "sample.json").write_text('[{"token": ')
    code, _, err = run("info", f"nuscenes:{dst}")
    assert code == 2, err
    _one_line_error(err, "sample.json")
