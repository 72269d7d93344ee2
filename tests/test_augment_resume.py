"""Resumability of `p4dsim augment`: skip complete shards, redo partial or corrupt ones, never
duplicate rows; failing shards do not stop the others. Includes the SIGKILL fault test."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest
from augment_helpers import (
    SCENARIO_ONE,
    SCENARIO_SHIFT,
    SCENARIO_SLOW,
    TINY_SOURCE,
    InlineExecutor,
    check_dataset,
    file_digests,
    sha256,
    write_scenarios,
)

from p4dsim.augment.job import AugmentConfig, plan_from_config, run_augment
from p4dsim.augment.manifest import AugmentManifest
from p4dsim.augment.shard import run_shard
from p4dsim.errors import OutputError
from p4dsim.io.dataset import read_table
from p4dsim.io.outdir import shard_stage_path

REPO = Path(__file__).resolve().parents[1]


def _cfg(tmp_path: Path, frames: str = "0:4", **kw) -> AugmentConfig:
    folder = write_scenarios(tmp_path / "sc", shift=SCENARIO_SHIFT, slow=SCENARIO_SLOW)
    return AugmentConfig(
        source=TINY_SOURCE,
        scenarios=[str(folder / "*.yaml")],
        out=tmp_path / "out",
        frames=frames,
        **kw,
    )


def test_resume_skips_complete_and_redoes_partial_shards(tmp_path: Path):
    cfg = _cfg(tmp_path)
    s = run_augment(cfg, executor=InlineExecutor())
    assert s.ok and s.shards_done == 4 and s.tasks == 8 and s.frames == 16
    out = cfg.out
    manifest = check_dataset(out)
    assert manifest["augment"]["complete"] is True
    assert [r["source_frame"] for r in manifest["augment"]["shards"]] == [0, 1, 2, 3]
    frames = read_table(out, "frames")
    assert frames.num_rows == 16
    keys = list(
        zip(
            frames["run_id"].to_pylist(),
            frames["variant_id"].to_pylist(),
            frames["frame_index"].to_pylist(),
            strict=True,
        )
    )
    assert len(set(keys)) == 16
    assert sorted(set(frames["source_frame"].to_pylist())) == [0, 1, 2, 3]
    actors = read_table(out, "actors")
    assert actors.num_rows == sum(s["rows"] for s in manifest["shards"] if s["table"] == "actors")
    assert actors.num_rows > 0
    good = file_digests(out)

    # Nothing to do on a second run.
    again = run_augment(cfg, executor=InlineExecutor())
    assert again.shards_skipped == 4 and again.shards_done == 0 and again.frames == 0

    # Damage: a corrupt file, a missing file, a temp file and an unlisted shard file.
    shards = manifest["augment"]["shards"]
    corrupt = out / shards[1]["files"][0]["path"]
    corrupt.write_bytes(corrupt.read_bytes() + b"x")
    (out / shards[2]["files"][1]["path"]).unlink()
    (out / "frames" / ".shard-000003-abc.parquet.tmp-12345678").write_bytes(b"partial")
    (out / "actors" / "shard-000042-deadbeef0000.parquet").write_bytes(b"stale")
    fixed = run_augment(cfg, executor=InlineExecutor())
    assert fixed.shards_skipped == 2 and fixed.shards_done == 2 and fixed.frames == 8
    check_dataset(out)
    assert file_digests(out) == good  # the redone shards are byte-identical; strays are gone
    assert read_table(out, "frames").num_rows == 16


def test_other_job_is_refused_unless_forced(tmp_path: Path):
    cfg = _cfg(tmp_path, frames="0:2")
    run_augment(cfg, executor=InlineExecutor())
    other = _cfg(tmp_path, frames="2:4")
    with pytest.raises(OutputError, match="different augment job"):
        run_augment(other, executor=InlineExecutor())
    other.force = True
    s = run_augment(other, executor=InlineExecutor())
    assert s.shards_done == 2
    m = check_dataset(other.out)
    assert [r["source_frame"] for r in m["augment"]["shards"]] == [2, 3]
    # A non-empty folder that is no dataset is never touched.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    other.out, other.force = foreign, True
    with pytest.raises(OutputError, match="holds no p4dsim manifest"):
        run_augment(other, executor=InlineExecutor())
    assert (foreign / "notes.txt").read_text() == "mine"


def _block(cfg: AugmentConfig, frame: int) -> Path:
    """Start the job's dataset (no shards yet) and make the shard of ``frame`` fail: a folder
    sits where its frames file goes."""
    plan = plan_from_config(cfg)
    AugmentManifest.open(Path(cfg.out), plan).close()
    spec = next(s for s in plan.shards if s.frame == frame)
    blocker = Path(cfg.out) / spec.relpath("frames")
    (blocker / "in-the-way").mkdir(parents=True)
    return blocker


def test_failing_shard_does_not_stop_others(tmp_path: Path):
    cfg = _cfg(tmp_path, frames="0:3")
    blocker = _block(cfg, 1)
    s = run_augment(cfg, executor=InlineExecutor())
    assert not s.ok and s.shards_done == 2
    assert [r.frame for r in s.failed] == [1] and "Error" in s.failed[0].error
    m = json.loads((cfg.out / "manifest.json").read_text())
    assert [r["source_frame"] for r in m["augment"]["shards"]] == [0, 2]
    assert m["augment"]["complete"] is False and len(m["summary"]["failed_shards"]) == 1
    assert not list((cfg.out / "actors").glob("*000001-*"))  # no half-written shard left
    # Once the cause is gone, the re-run does only the failed shard.
    import shutil

    shutil.rmtree(blocker)
    s2 = run_augment(cfg, executor=InlineExecutor())
    assert s2.ok and s2.shards_done == 1 and s2.shards_skipped == 2
    assert check_dataset(cfg.out)["augment"]["complete"] is True


def test_cli_reports_failed_shards_with_nonzero_exit(tmp_path: Path):
    cfg = _cfg(tmp_path, frames="0:2")
    _block(cfg, 0)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "p4dsim.cli", "augment", "--source", TINY_SOURCE]
        + ["--scenarios", cfg.scenarios[0], "--frames", "0:2", "--out", str(cfg.out)]
        + ["--workers", "1", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "failed shards" in proc.stderr and "000000-" in proc.stderr
    assert "frames/s" in proc.stdout
    m = check_dataset(cfg.out)
    assert [r["source_frame"] for r in m["augment"]["shards"]] == [1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_five_times_then_resume(tmp_path: Path):
    """40 one-frame shards, 2 workers; the driver is SIGKILLed at random points five times
    and resumed each time. The final dataset has exactly the expected rows, no duplicates,
    valid checksums, and shards equal to freshly rendered ones."""
    n = 40
    folder = write_scenarios(tmp_path / "sc", one=SCENARIO_ONE)
    out = tmp_path / "out"
    source = "toytown:?width=96&height=32&frames=40"
    cmd = [sys.executable, "-m", "p4dsim.cli", "augment", "--source", source]
    cmd += ["--scenarios", str(folder / "one.yaml"), "--frames", f"0:{n}", "--out", str(out)]
    cmd += ["--workers", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = random.Random(8)
    progress = []
    for _ in range(5):
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            time.sleep(rng.uniform(2.0, 6.0))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            # The pool workers die with the driver (no orphan keeps writing).
            deadline = time.monotonic() + 10
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _group_alive(proc.pid), "worker processes outlived the killed driver"
        finally:
            if _group_alive(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
        if (out / "manifest.json").exists():
            m = json.loads((out / "manifest.json").read_text())  # always valid JSON
            for s in m["shards"]:
                assert sha256(out / s["path"]) == s["sha256"]
            progress.append(len(m["augment"]["shards"]))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    m = check_dataset(out)  # listed == present (no temp or stray files), checksums, rows
    assert m["augment"]["complete"] is True and len(m["augment"]["shards"]) == n
    assert progress == sorted(progress)  # completed shards are never lost
    frames = read_table(out, "frames")
    assert frames.num_rows == n
    assert sorted(frames["run_id"].to_pylist()) == [f"one@{i:06d}" for i in range(n)]
    assert sorted(frames["source_frame"].to_pylist()) == list(range(n))
    assert pc.all(pc.equal(frames["frame_index"], 0)).as_py()
    actors = read_table(out, "actors")
    assert actors.num_rows == sum(r["rows"] for r in m["shards"] if r["table"] == "actors")
    assert set(actors["run_id"].to_pylist()) <= set(frames["run_id"].to_pylist())
    # Two shards rendered afresh in this process are byte-identical to the resumed ones.
    plan = plan_from_config(
        AugmentConfig(source=source, scenarios=[str(folder / "one.yaml")], out=out, frames=f"0:{n}")
    )
    fresh = tmp_path / "fresh"
    for spec in rng.sample(plan.shards, 2):
        res = run_shard(spec, str(fresh))
        assert res.ok, res.error
        for f in res.files:
            assert sha256(shard_stage_path(fresh, f.path)) == sha256(out / f.path)
