"""Memory stays flat: peak RSS of a long replay against a short one (each in a fresh process).

    python benchmarks/bench_memory.py [--short 200] [--long 2000] [--width 310 --height 94]
                                      [--device cpu]

Each run renders toytown through the full replay pipeline (batched render, threaded encoding,
background Parquet writes) into a temporary dataset and reports its process's peak resident
memory. Passes when the long run's peak is within 20 % of the short run's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(frames: int, width: int, height: int, device: str) -> dict:
    from p4dsim.io.dataset import DatasetWriter, read_manifest
    from p4dsim.pipeline import BackgroundWriter
    from p4dsim.render import get_renderer
    from p4dsim.replay import iter_rows
    from p4dsim.scenario.model import Scenario
    from p4dsim.scene.builder import build_scene
    from p4dsim.source import SourceSpec

    log = SourceSpec.parse(f"toytown:?width={width}&height={height}").open()
    scene = build_scene(log.frame(0))
    fps = 10.0
    sc = Scenario.model_validate(
        {
            "source": {"adapter": "toytown"},
            "duration_s": (frames - 0.5) / fps,
            "fps": fps,
            "ego": {"base": "constant_velocity"},
            "output": {"rgb": "png", "depth": "float16"},
        }
    )
    renderer = get_renderer(device)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        writer = BackgroundWriter(DatasetWriter(out, rows_per_shard=64))
        t0 = time.perf_counter()
        n = 0
        for row, actors in iter_rows(scene, log, sc, renderer, "mem"):
            writer.add(row, actors)
            n += 1
        writer.commit({})
        seconds = time.perf_counter() - t0
        # rows on disk, from the Parquet footers (reading the tables back would itself cost
        # memory proportional to the run)
        import pyarrow.parquet as pq

        shards = [s for s in read_manifest(out)["shards"] if s["table"] == "frames"]
        rows = sum(pq.ParquetFile(out / s["path"]).metadata.num_rows for s in shards)
    return {
        "frames": n,
        "rows": rows,
        "seconds": round(seconds, 2),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=int, default=200)
    ap.add_argument("--long", type=int, default=2000)
    ap.add_argument("--width", type=int, default=310)
    ap.add_argument("--height", type=int, default=94)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.width, a.height, a.device)))
        return 0
    results = {}
    for frames in (a.short, a.long):
        cmd = [sys.executable, __file__, "--child", str(frames), "--width", str(a.width)]
        cmd += ["--height", str(a.height), "--device", a.device]
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[frames] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{frames:>6} frames: {results[frames]}", flush=True)
    s, lg = results[a.short]["peak_rss_mib"], results[a.long]["peak_rss_mib"]
    ratio = lg / s
    ok = ratio <= 1.2 and results[a.long]["rows"] == a.long
    print(
        f"peak RSS {a.long} frames / {a.short} frames = {lg:.0f} / {s:.0f} MiB = {ratio:.3f} "
        f"({'within' if ok else 'NOT within'} 20 %)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
