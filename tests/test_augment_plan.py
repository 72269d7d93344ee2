"""Frame selections and job planning of `p4dsim augment`."""

from __future__ import annotations

from pathlib import Path

import pytest
from augment_helpers import SCENARIO_SHIFT, SCENARIO_SLOW, TINY_SOURCE, write_scenarios

from p4dsim.augment.tasks import plan_job, scenario_files
from p4dsim.errors import ConfigError
from p4dsim.scenario.model import Scenario
from p4dsim.selection import parse_selection


def test_selection_ranges_lists_and_files(tmp_path: Path):
    assert parse_selection("0:200:5", 1000) == list(range(0, 200, 5))
    assert parse_selection("1,3,7", 10) == [1, 3, 7]
    assert parse_selection("7,1,3,3", 10) == [1, 3, 7]
    assert parse_selection("8:", 10) == [8, 9]
    assert parse_selection(":", 4) == [0, 1, 2, 3]
    assert parse_selection("0:6:2, 9", 10) == [0, 2, 4, 9]
    ids = tmp_path / "ids.txt"
    ids.write_text("# chosen frames\n4 2\n2, 11  # again\n")
    assert parse_selection("@ids.txt", 20, base_dir=tmp_path) == [2, 4, 11]
    assert parse_selection(f"@{ids},0", 20) == [0, 2, 4, 11]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("0:20", "ends after the last frame"),
        ("12", "frame 12 is out of range"),
        ("0:5:0", "positive step"),
        ("a:5", "range start must be an integer"),
        ("1,x", "must be an integer, got 'x'"),
        ("", "empty frame selection"),
        ("1:2:3:4", "START:STOP[:STEP]"),
    ],
)
def test_selection_errors(text: str, needle: str):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_selection(text, 10)


def test_selection_file_errors_name_file_and_line(tmp_path: Path):
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n2 40\n")
    with pytest.raises(ConfigError, match=r"ids.txt:2: frame 40 is out of range"):
        parse_selection(f"@{ids}", 10)
    with pytest.raises(ConfigError, match="does not exist"):
        parse_selection(f"@{tmp_path / 'missing.txt'}", 10)


def test_plan_groups_tasks_by_source_frame(tmp_path: Path):
    folder = write_scenarios(tmp_path / "sc", shift=SCENARIO_SHIFT, slow=SCENARIO_SLOW)
    files = scenario_files([str(folder / "*.yaml")])
    assert [f.name for f in files] == ["shift.yaml", "slow.yaml"]
    plan = plan_job(TINY_SOURCE, [3, 9], files, device="cpu")
    assert plan.n_tasks == 4 and [s.frame for s in plan.shards] == [3, 9]
    shard = plan.shards[1]
    assert shard.shard_id.startswith("000009-")
    assert [r.run_id for r in shard.runs] == ["shift@000009", "slow@000009"]
    # Each run's scenario has the augment source, at the shard's frame.
    sc = Scenario.model_validate(shard.runs[1].scenario)
    assert sc.source.frame == 9 and sc.source.model_extra["width"] == "96"
    assert sc.ego.base == "constant_velocity"
    assert shard.n_frames == 2 + 2  # 0.1 s at 10 Hz, 0.05 s at 20 Hz
    assert shard.relpath("frames") == f"frames/shard-{shard.shard_id}.parquet"
    # Shard ids and the job key depend on content only.
    again = plan_job(TINY_SOURCE, [3, 9], files, device="cpu")
    assert [s.shard_id for s in again.shards] == [s.shard_id for s in plan.shards]
    assert again.key == plan.key
    other = plan_job(TINY_SOURCE, [3, 9], files[:1], device="cpu")
    assert other.shards[0].shard_id != plan.shards[0].shard_id and other.key != plan.key


def test_plan_refuses_duplicate_names_and_missing_globs(tmp_path: Path):
    write_scenarios(tmp_path / "a", x=SCENARIO_SHIFT)
    write_scenarios(tmp_path / "b", y=SCENARIO_SHIFT)
    files = scenario_files([str(tmp_path / "a" / "*.yaml"), str(tmp_path / "b" / "*.yaml")])
    with pytest.raises(ConfigError, match="same name 'shift'"):
        plan_job(TINY_SOURCE, [0], files)
    with pytest.raises(ConfigError, match="matches no file"):
        scenario_files([str(tmp_path / "nothing" / "*.yaml")])
