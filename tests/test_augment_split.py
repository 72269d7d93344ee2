"""The split executor of `p4dsim augment`: scenes built in capped CPU processes, passed
through shared memory to a rendering process; same files as the all-in-one workers, no
shared memory left behind, thread caps in the build processes, and when it is chosen."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from augment_helpers import (
    SCENARIO_ONE,
    SCENARIO_SHIFT,
    SCENARIO_SLOW,
    TINY_SOURCE,
    check_dataset,
    file_digests,
    write_scenarios,
)

from p4dsim.augment import shm
from p4dsim.augment.devices import parse_nvidia_smi, split_plan, visible_gpus
from p4dsim.augment.job import AugmentConfig, plan_from_config, run_augment
from p4dsim.augment.split import SplitExecutor, start_build_pool, submit_capped
from p4dsim.augment.threadcaps import THREAD_ENV, thread_caps_report

SHM = Path("/dev/shm")


def _segments(pid: int | None = None) -> set[str]:
    tag = f"p4dsim-scene-{pid}-" if pid is not None else "p4dsim-scene-"
    return {p.name for p in SHM.glob(f"{tag}*")} if SHM.is_dir() else set()


def _cfg(tmp_path: Path, name: str, frames: str = "0:6:2", **kw) -> AugmentConfig:
    folder = write_scenarios(tmp_path / "sc", shift=SCENARIO_SHIFT, slow=SCENARIO_SLOW)
    return AugmentConfig(
        source=TINY_SOURCE,
        scenarios=[str(folder / "*.yaml")],
        out=tmp_path / name,
        frames=frames,
        **kw,
    )


def test_split_writes_the_same_files_as_all_in_one_workers(tmp_path: Path):
    before = _segments(os.getpid())
    outs = {}
    for name, kw in {
        "all-in-one": dict(workers=1),
        "split-1": dict(workers=1, split=True),
        "split-2": dict(workers=2, split=True),
    }.items():
        results = []
        s = run_augment(_cfg(tmp_path, name, **kw), on_result=results.append)
        assert s.ok, [r.error for r in s.failed]
        assert s.shards_done == 3 and s.frames == 12
        assert s.executor.startswith("local-split" if "split" in name else "local")
        # every shard reports both stages and when its first row was made
        assert all(r.build_s > 0 and r.render_s > 0 and r.first_row_at for r in results)
        assert all(r.gpu_peak_bytes is None for r in results)  # CPU rendering: no CUDA
        outs[name] = tmp_path / name
    reference = file_digests(outs["all-in-one"])
    assert len(reference) == 6
    listed = json.loads((outs["all-in-one"] / "manifest.json").read_text())["shards"]
    for name in ("split-1", "split-2"):
        assert file_digests(outs[name]) == reference, name
        assert json.loads((outs[name] / "manifest.json").read_text())["shards"] == listed
        check_dataset(outs[name])
    assert _segments(os.getpid()) == before  # every block was removed


def test_shards_rendered_at_once_write_the_same_files(tmp_path: Path):
    """A rendering process working on several shards at once (threads, as on a GPU) writes
    the same bytes as one working on one shard at a time, and reports every shard once."""
    outs = {}
    for concurrent in (1, 3):
        cfg = _cfg(tmp_path, f"c{concurrent}", frames="0:3")
        ex = SplitExecutor(builders=2, concurrent=concurrent)
        s = run_augment(cfg, executor=ex)
        assert s.ok and s.shards_done == 3, [r.error for r in s.failed]
        outs[concurrent] = cfg.out
    assert file_digests(outs[3]) == file_digests(outs[1]) and len(file_digests(outs[1])) == 6


def test_failed_shards_leave_no_shared_memory(tmp_path: Path):
    """A shard whose build fails, one whose rendering fails (a folder in the way of its file)
    and a good one: two failed results, one written shard, no block left."""
    cfg = _cfg(tmp_path, "out", frames="0:3")
    plan = plan_from_config(cfg)
    bad_build = dataclasses.replace(plan.shards[0], frame=10_000)  # not in the log
    (cfg.out / plan.shards[1].relpath("frames") / "in-the-way").mkdir(parents=True)
    results = []
    SplitExecutor(builders=2).run(
        [bad_build, plan.shards[1], plan.shards[2]], cfg.out, results.append
    )
    by_frame = {r.frame: r for r in results}
    assert sorted(by_frame) == [1, 2, 10_000]
    assert not by_frame[10_000].ok and "10000" in by_frame[10_000].error
    assert not by_frame[1].ok and "Error" in by_frame[1].error
    assert by_frame[1].build_s > 0  # it failed in the renderer, after its build
    assert by_frame[2].ok and by_frame[2].frames == 4
    assert not _segments(os.getpid())


def test_a_render_process_that_dies_is_replaced(tmp_path: Path):
    """The rendering process is killed after the first shard: the shards it held fail, a new
    one renders the rest, every shard is reported once and no block is left."""
    import multiprocessing as mp
    import signal

    folder = write_scenarios(tmp_path / "sc1", one=SCENARIO_ONE)
    cfg = AugmentConfig(
        source=TINY_SOURCE, scenarios=[str(folder / "one.yaml")], out=tmp_path / "o", frames="0:6"
    )
    shards = plan_from_config(cfg).shards
    results = []

    def on_result(res) -> None:
        results.append(res)
        if len(results) == 1:
            (proc,) = [p for p in mp.active_children() if p.name == "p4d-render-0"]
            os.kill(proc.pid, signal.SIGKILL)

    SplitExecutor(builders=1).run(shards, cfg.out, on_result)
    assert sorted(r.frame for r in results) == list(range(6))
    assert results[0].ok
    # shards sent to it before its death was seen fail (none, if it was seen first)
    assert all("died (exit code -9)" in r.error for r in results if not r.ok)
    assert results[-1].ok and results[-1].worker != results[0].worker  # a new process
    assert not _segments(os.getpid())


def test_shared_memory_round_trip_is_exact_and_leaves_no_name():
    rng = np.random.default_rng(0)
    obj = {
        "means": rng.normal(size=(1000, 3)).astype(np.float32),
        "f_order": np.asfortranarray(rng.normal(size=(7, 5))),
        "strided": np.arange(20.0)[::3],  # not contiguous: travels in the pickle stream
        "mask": rng.random(33) > 0.5,
        "meta": {"name": "x", "n": 3},
    }
    name = shm.segment_name("test", 0)
    seg = shm.put_object(obj, name)
    assert (SHM / name).exists() if SHM.is_dir() else True
    taken = shm.take_object(seg)
    assert not (SHM / name).exists()  # the name goes as soon as the block is attached
    got = taken.value
    for k in ("means", "f_order", "strided", "mask"):
        assert got[k].dtype == obj[k].dtype and np.array_equal(got[k], obj[k])
    assert got["f_order"].flags.f_contiguous
    assert got["means"].base is not None and not got["means"].flags.owndata  # a view
    assert got["means"].ctypes.data % shm.ALIGN == 0
    assert got["meta"] == obj["meta"]
    del got
    taken.close()
    other = shm.segment_name("test", 1)
    shm.put_object(obj, other)
    with pytest.raises(FileExistsError):  # an existing block is never overwritten
        shm.put_object(obj, other)
    assert shm.unlink(other) is True
    assert shm.unlink(other) is False


def test_build_workers_have_every_thread_pool_capped(monkeypatch):
    """The caps hold in a build process even when the driver's environment asks for more,
    and the driver's environment is left as it was."""
    for k in THREAD_ENV:
        monkeypatch.setenv(k, "3")
    pool = start_build_pool(2)
    try:
        reports = [submit_capped(pool, thread_caps_report).result(timeout=300) for _ in range(2)]
    finally:
        pool.shutdown()
    assert all(os.environ[k] == "3" for k in THREAD_ENV)
    assert all(r["pid"] != os.getpid() for r in reports)
    for r in reports:
        assert set(r["env"].values()) == {"1"}, r
        for lib in ("numba", "torch", "cv2"):
            if lib in r:
                assert r[lib] == 1, r
        assert set(r.get("threadpools", {}).values()) <= {1}, r


def test_nvidia_smi_listing_and_visible_devices(monkeypatch):
    text = (
        "GPU 0: NVIDIA H200 (UUID: GPU-aaa)\n"
        "GPU 1: NVIDIA H200 (UUID: GPU-bbb)\n"
        "  MIG 3g.71gb     Device  0: (UUID: MIG-111)\n"
        "  MIG 3g.71gb     Device  1: (UUID: MIG-222)\n"
        "GPU 2: NVIDIA H200 (UUID: GPU-ccc)\n"
    )
    assert parse_nvidia_smi(text) == ["0", "MIG-111", "MIG-222", "2"]
    assert parse_nvidia_smi("No devices found.") == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,-1,2")  # CUDA stops at an invalid entry
    assert visible_gpus() == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_split_is_chosen_for_cuda_rendering_only(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU
    shards = plan_from_config(_cfg(tmp_path, "o", device=None)).shards  # scenarios say cpu
    assert split_plan(shards, None, None) is None
    assert split_plan(shards, False, None) is None
    forced = split_plan(shards, True, None)
    assert forced is not None and forced.renderers == 1 and forced.gpus == []
    assert forced.warm == ["cpu"]
    auto = plan_from_config(_cfg(tmp_path, "o", device="auto")).shards
    assert split_plan(auto, None, None) is None  # auto without a GPU renders on the CPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    cuda = plan_from_config(_cfg(tmp_path, "o", device="cuda")).shards
    two = split_plan(cuda, None, None)
    assert two is not None and two.renderers == 2 and two.gpus == ["0", "1"]
    assert split_plan(cuda, None, 3).renderers == 3
    assert split_plan(cuda, False, None) is None
    monkeypatch.setattr("p4dsim.augment.devices.gsplat_installed", lambda: True)
    assert split_plan(auto, None, None) is not None  # auto with a GPU and gsplat: CUDA


@pytest.mark.parametrize(
    "kw, needle",
    [
        (dict(render_procs=0), "--render-procs must be at least 1"),
        (dict(render_procs=2, split=False), "--render-procs is for split jobs"),
        (dict(gpus_per_worker=1.0), "--gpus-per-worker is for --executor ray"),
    ],
)
def test_split_options_are_checked(kw, needle):
    from p4dsim.augment.executors import make_executor
    from p4dsim.errors import ConfigError

    with pytest.raises(ConfigError, match=needle):
        make_executor("local", **kw)
