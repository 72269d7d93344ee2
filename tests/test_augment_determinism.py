"""Determinism of `p4dsim augment`: local with 1 and 2 workers and Ray (tasks, and split into
build tasks and a rendering actor) give identical files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from augment_helpers import (
    SCENARIO_SHIFT,
    SCENARIO_SLOW,
    TINY_SOURCE,
    check_dataset,
    file_digests,
    write_scenarios,
)

from p4dsim.augment.job import AugmentConfig, run_augment
from p4dsim.io.dataset import read_table

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, name: str, **kw):
    folder = write_scenarios(tmp_path / "sc", shift=SCENARIO_SHIFT, slow=SCENARIO_SLOW)
    cfg = AugmentConfig(
        source=TINY_SOURCE,
        scenarios=[str(folder / "*.yaml")],
        out=tmp_path / name,
        frames="0:10:2",
        **kw,
    )
    summary = run_augment(cfg)
    assert summary.ok, [r.error for r in summary.failed]
    assert summary.shards_done == 5 and summary.frames == 20
    assert summary.executor.startswith(f"{kw['executor']}-split") == bool(kw.get("split"))
    return cfg.out


def _shard_list(out: Path) -> list:
    return json.loads((out / "manifest.json").read_text())["shards"]


def test_local_one_and_two_workers_and_ray_give_identical_files(tmp_path: Path):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    one = _run(tmp_path, "local1", executor="local", workers=1)
    two = _run(tmp_path, "local2", executor="local", workers=2)
    reference = file_digests(one)
    assert len(reference) == 10  # frames + actors file per shard
    assert file_digests(two) == reference
    assert _shard_list(two) == _shard_list(one)  # manifest shard list: same order and sums
    check_dataset(one)

    # Ray: a local instance, workers importing this checkout.
    env = {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    try:
        via_ray = _run(tmp_path, "ray", executor="ray")
        via_ray_split = _run(tmp_path, "ray-split", executor="ray", split=True)
        # the split's build tasks run with every native thread pool capped to one thread
        from p4dsim.augment.rayexec import build_runtime_env, build_task_caps

        probe = ray.remote(num_cpus=1, runtime_env=build_runtime_env(ray))(build_task_caps)
        caps = ray.get(probe.remote())
    finally:
        ray.shutdown()
    assert set(caps["env"].values()) == {"1"}, caps
    assert all(caps.get(lib, 1) == 1 for lib in ("numba", "torch", "cv2")), caps
    assert set(caps.get("threadpools", {}).values()) <= {1}, caps
    for out in (via_ray, via_ray_split):
        assert file_digests(out) == reference, out.name
        assert _shard_list(out) == _shard_list(one)

    # The rows are in a fixed order: shards by source frame, runs in scenario order.
    frames = read_table(one, "frames")
    assert frames["run_id"].to_pylist()[:4] == [
        "shift@000000",
        "shift@000000",
        "slow@000000",
        "slow@000000",
    ]
    assert frames["source_frame"].to_pylist()[::4] == [0, 2, 4, 6, 8]
