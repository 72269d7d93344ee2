"""Scaling benchmark of ``p4dsim augment``: frames/s against the number of workers or GPUs.

Each configuration renders the same job (``--source-frames`` toytown frames × two scenarios)
into a fresh folder and reports wall-clock frames/s, including worker start-up, as a user
sees it, and steady-state frames/s (frames finished after the first shard, over the time
since it), which leaves worker start-up out. Checks that every configuration wrote
byte-identical files.

This machine (CPU, process pool with 1 and 2 workers)::

    python benchmarks/bench_augment.py

A GPU host through Ray, one shard per GPU (1 GPU, then 2 GPUs)::

    python benchmarks/bench_augment.py --executor ray --gpus-per-worker 1 --device cuda \\
        --counts 1,2 --source-frames 32 --width 1242 --height 375 --duration 1.0

``--counts`` lists worker processes (local), CPUs (Ray without GPUs) or GPUs (Ray with
``--gpus-per-worker``) per configuration. ``--json FILE`` also writes the results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--counts", default="1,2", help="workers / CPUs / GPUs per configuration")
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

    from p4dsim.augment.job import AugmentConfig, run_augment

    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    work = Path(tempfile.mkdtemp(prefix="p4dsim-bench-augment-"))
    scen_dir = work / "scenarios"
    scen_dir.mkdir()
    for name, text in SCENARIOS.items():
        (scen_dir / f"{name}.yaml").write_text(text.format(duration=args.duration))
    frames_in_log = max(args.source_frames, 1)
    source = f"toytown:?width={args.width}&height={args.height}&frames={frames_in_log}"
    results = []
    reference: dict[str, str] | None = None
    console = Console(width=None if sys.stdout.isatty() else 120)
    try:
        for count in counts:
            out = work / f"out-{count}"
            cfg = AugmentConfig(
                source=source,
                scenarios=[str(scen_dir / "*.yaml")],
                out=out,
                frames=f"0:{args.source_frames}",
                executor=args.executor,
                workers=count,
                address=args.address,
                gpus_per_worker=args.gpus_per_worker,
                device=args.device,
            )
            started_ray = False
            if args.executor == "ray" and args.address is None:
                import ray

                env = {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
                if args.gpus_per_worker > 0:
                    res = {"num_gpus": count, "num_cpus": max(count, os.cpu_count() or 1)}
                else:
                    res = {"num_cpus": count}
                ray.init(
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": env},
                    **res,
                )
                started_ray = True
            done_at: list[tuple[float, int]] = []

            def on_result(res, done_at=done_at) -> None:
                done_at.append((time.perf_counter(), res.frames))

            t0 = time.perf_counter()
            try:
                s = run_augment(cfg, on_result=on_result)
            finally:
                if started_ray:
                    ray.shutdown()
            wall = time.perf_counter() - t0
            if s.failed:
                console.print(f"[red]{len(s.failed)} shards failed:[/] {s.failed[0].error}")
                return 1
            # Steady state: frames finished after the first shard, over the time since it.
            steady = None
            if len(done_at) > 1 and done_at[-1][0] > done_at[0][0]:
                later = sum(n for _, n in done_at[1:])
                steady = round(later / (done_at[-1][0] - done_at[0][0]), 3)
            digests = _digests(out)
            same = reference is None or digests == reference
            reference = reference or digests
            results.append(
                {
                    "executor": args.executor,
                    "count": count,
                    "unit": "gpus"
                    if args.gpus_per_worker > 0
                    else ("workers" if args.executor == "local" else "cpus"),
                    "device": args.device,
                    "tasks": s.tasks,
                    "shards": s.shards_total,
                    "frames": s.frames,
                    "seconds": round(wall, 2),
                    "frames_per_s": round(s.frames / wall, 3),
                    "steady_frames_per_s": steady,
                    "identical_to_first": same,
                }
            )
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = results[0]["frames_per_s"]
    table = Table(
        title=f"p4dsim augment scaling ({args.source_frames} source frames × 2 scenarios, "
        f"{args.width}×{args.height}, {args.duration} s at 10 fps; {platform.node()}, "
        f"{os.cpu_count()} CPUs)"
    )
    for col in ("executor", "count", "device", "tasks", "frames", "seconds", "frames/s"):
        table.add_column(col, justify="right")
    table.add_column("speed-up", justify="right")
    table.add_column("steady frames/s", justify="right")
    table.add_column("identical files")
    for r in results:
        table.add_row(
            r["executor"],
            f"{r['count']} {r['unit']}",
            r["device"],
            str(r["tasks"]),
            str(r["frames"]),
            f"{r['seconds']:.1f}",
            f"{r['frames_per_s']:.2f}",
            f"{r['frames_per_s'] / base:.2f}×",
            "-" if r["steady_frames_per_s"] is None else f"{r['steady_frames_per_s']:.2f}",
            "yes" if r["identical_to_first"] else "NO",
        )
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["identical_to_first"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
