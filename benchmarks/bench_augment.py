"""Scaling benchmark of ``p4dsim augment``: frames/s against the number of workers or GPUs,
all-in-one workers against the split executor (build processes + rendering processes).

Each configuration renders the same job (``--source-frames`` toytown frames × two scenarios)
into a fresh folder and reports, per configuration:

- wall-clock frames/s including worker start-up, as a user sees it, and steady-state
  frames/s (frames finished after the first shard, over the time since it);
- time to first frame: from the start of the job to the first frame row made in a worker;
- per source frame (shard), the two stages: scene build (open the source, build the
  scenes) and render + write (replay every run, encode, write Parquet), each as wall seconds
  and CPU seconds of the process that ran it (all its threads);
- CPU seconds of every process of the job per source frame (local executors: the driver
  and its worker processes, start-up and imports included);
- peak GPU memory allocated by torch in a rendering process (GPU runs);

and checks that every configuration wrote byte-identical files.

This machine (CPU: all-in-one and split, 1 and 2 workers; the split's renderer is the CPU
one, so only its overheads show)::

    python benchmarks/bench_augment.py --modes all-in-one,split

One GPU, split (one rendering process; ``--counts`` = build processes)::

    python benchmarks/bench_augment.py --device cuda --modes all-in-one,split \\
        --counts 15 --source-frames 48 --width 1242 --height 375 --duration 1.0

Two GPUs through Ray, split (build tasks + one rendering actor per GPU; ``--counts`` =
GPUs)::

    python benchmarks/bench_augment.py --executor ray --modes split --device cuda \\
        --gpus-per-worker 1 --counts 1,2 --source-frames 48 --width 1242 --height 375 \\
        --duration 1.0

``--counts`` lists worker processes (local all-in-one), build processes (local split),
CPUs (Ray without GPUs) or GPUs (Ray with ``--gpus-per-worker``) per configuration.
``--json FILE`` also writes the results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SCENARIOS = {
    "shift": """\
name: shift
source: {{adapter: toytown}}
duration_s: {duration}
fps: 10
ego:
  perturbations:
    - {{type: lateral_offset, offset_m: 1.5, ramp_s: {duration}}}
""",
    "slow": """\
name: slow
source: {{adapter: toytown}}
duration_s: {duration}
fps: 10
ego:
  perturbations:
    - {{type: speed_scale, scale: 0.6, ramp_s: 0.5}}
actors:
  default: constant_velocity
""",
}


def _digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for table in ("frames", "actors")
        for p in sorted((out / table).glob("shard-*.parquet"))
    }


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _start_ray(args: argparse.Namespace, count: int) -> None:
    import ray

    env = {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if args.gpus_per_worker > 0:
        res = {"num_gpus": count, "num_cpus": max(count, os.cpu_count() or 1)}
    else:
        res = {"num_cpus": count}
    ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env}, **res)


def run_config(args: argparse.Namespace, source: str, scen_dir: Path, out: Path, mode: str, count):
    """One configuration; returns its row of results (None if a shard failed)."""
    from p4dsim.augment.job import AugmentConfig, run_augment

    split = mode == "split"
    cfg = AugmentConfig(
        source=source,
        scenarios=[str(scen_dir / "*.yaml")],
        out=out,
        frames=f"0:{args.source_frames}",
        executor=args.executor,
        workers=count if args.executor == "local" or args.gpus_per_worker <= 0 else None,
        address=args.address,
        gpus_per_worker=args.gpus_per_worker,
        split=split,
        render_procs=args.render_procs if split else None,
        device=args.device,
    )
    started_ray = args.executor == "ray" and args.address is None
    if started_ray:
        _start_ray(args, count)
    results = []
    t0_wall = time.time()
    cpu0 = _cpu_self() + _cpu_children()
    t0 = time.perf_counter()
    try:
        s = run_augment(cfg, on_result=lambda r: results.append((time.perf_counter(), r)))
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    wall = time.perf_counter() - t0
    cpu_all = _cpu_self() + _cpu_children() - cpu0
    if s.failed:
        print(f"{len(s.failed)} shards failed: {s.failed[0].error}", file=sys.stderr)
        return None
    steady = None
    if len(results) > 1 and results[-1][0] > results[0][0]:
        later = sum(r.frames for _, r in results[1:])
        steady = round(later / (results[-1][0] - results[0][0]), 3)
    firsts = [r.first_row_at for _, r in results if r.first_row_at is not None]
    n = max(1, len(results))
    peaks = [r.gpu_peak_bytes for _, r in results if r.gpu_peak_bytes is not None]
    return {
        "executor": s.executor,
        "mode": mode,
        "count": count,
        "unit": "gpus"
        if args.gpus_per_worker > 0
        else ("cpus" if args.executor == "ray" else ("build procs" if split else "workers")),
        "device": args.device,
        "tasks": s.tasks,
        "shards": s.shards_total,
        "frames": s.frames,
        "seconds": round(wall, 2),
        "frames_per_s": round(s.frames / wall, 3),
        "steady_frames_per_s": steady,
        "first_frame_s": round(min(firsts) - t0_wall, 2) if firsts else None,
        "build_s_per_source_frame": round(sum(r.build_s for _, r in results) / n, 3),
        "build_cpu_s_per_source_frame": round(sum(r.build_cpu_s for _, r in results) / n, 3),
        "render_s_per_source_frame": round(sum(r.render_s for _, r in results) / n, 3),
        "render_cpu_s_per_source_frame": round(sum(r.render_cpu_s for _, r in results) / n, 3),
        # local: the driver and every worker process it waited for (start-up included)
        "cpu_s_per_source_frame": round(cpu_all / n, 3) if args.executor == "local" else None,
        "gpu_peak_gib": round(max(peaks) / 2**30, 2) if peaks else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument(
        "--modes", default="all-in-one", help="all-in-one, split or both (comma-separated)"
    )
    ap.add_argument("--counts", default="1,2", help="workers / build procs / CPUs / GPUs")
    ap.add_argument("--render-procs", type=int, default=None, help="split: rendering processes")
    ap.add_argument("--gpus-per-worker", type=float, default=0.0)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    ap.add_argument("--address", default=None, help="running Ray cluster (default: local)")
    ap.add_argument("--source-frames", type=int, default=8)
    ap.add_argument("--width", type=int, default=414)
    ap.add_argument("--height", type=int, default=125)
    ap.add_argument("--duration", type=float, default=0.5, help="seconds per run (10 fps)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = set(modes) - {"all-in-one", "split"}
    if bad:
        ap.error(f"--modes: unknown {sorted(bad)}; use all-in-one and/or split")
    work = Path(tempfile.mkdtemp(prefix="p4dsim-bench-augment-"))
    scen_dir = work / "scenarios"
    scen_dir.mkdir()
    for name, text in SCENARIOS.items():
        (scen_dir / f"{name}.yaml").write_text(text.format(duration=args.duration))
    frames_in_log = max(args.source_frames, 1)
    source = f"toytown:?width={args.width}&height={args.height}&frames={frames_in_log}"
    results = []
    reference: dict[str, str] | None = None
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        for count in counts:
            for mode in modes:
                out = work / f"out-{mode}-{count}"
                row = run_config(args, source, scen_dir, out, mode, count)
                if row is None:
                    return 1
                digests = _digests(out)
                row["identical_to_first"] = reference is None or digests == reference
                reference = reference or digests
                results.append(row)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = results[0]["frames_per_s"]
    table = Table(
        title=f"p4dsim augment ({args.source_frames} source frames × 2 scenarios, "
        f"{args.width}×{args.height}, {args.duration} s at 10 fps; {platform.node()}, "
        f"{os.cpu_count()} CPUs); stage columns: per source frame, wall / CPU s"
    )
    cols = ["executor", "count", "frames", "s", "frames/s", "×", "steady", "first frame s"]
    cols += ["build s", "render+write s", "CPU s all", "GPU peak GiB", "same files"]
    for col in cols:
        table.add_column(col, justify="right")

    def opt(v, fmt="{:.2f}") -> str:
        return "-" if v is None else fmt.format(v)

    for r in results:
        table.add_row(
            f"{args.executor} {r['mode']}",
            f"{r['count']} {r['unit']}",
            str(r["frames"]),
            f"{r['seconds']:.1f}",
            f"{r['frames_per_s']:.2f}",
            f"{r['frames_per_s'] / base:.2f}",
            opt(r["steady_frames_per_s"]),
            opt(r["first_frame_s"]),
            f"{r['build_s_per_source_frame']:.2f} / {r['build_cpu_s_per_source_frame']:.2f}",
            f"{r['render_s_per_source_frame']:.2f} / {r['render_cpu_s_per_source_frame']:.2f}",
            opt(r["cpu_s_per_source_frame"]),
            opt(r["gpu_peak_gib"]),
            "yes" if r["identical_to_first"] else "NO",
        )
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["identical_to_first"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
