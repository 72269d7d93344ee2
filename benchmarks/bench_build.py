"""CPU cost per source frame of batch augmentation, split by stage: frame synthesis or
loading, each major step of the scene build, and row encoding per rendered frame.

Every native thread pool is capped at one thread (as in the augment build workers: one
single-threaded process per core), so the numbers are CPU seconds of one core. Sources:
toytown at 1242×375 and a smaller size, and the KITTI raw drive 0052 frames
($P4DSIM_REAL_DATA/kitti_raw or ../shared/data/kitti_raw; actors ``none`` and ``auto``).

Row encoding is measured on frames rendered (CPU renderer, not timed) along the two
scenarios of ``benchmarks/bench_augment.py`` and reported per frame; the per-source-frame
total counts ``--run-frames`` frames per scenario (11 = 1 s at 10 fps, two scenarios).

``--base REV`` measures the code of git revision REV too (extracted with ``git archive`` into
a temporary folder) and prints both side by side, with a digest per tree of the built
scenes' arrays and of the encoded rows, so output changes show. Each tree runs in its own
fresh process, which first synthesises and builds a small toytown frame twice: the
difference is what a fresh worker pays once (numba's start, the compiled kernels loaded from
its cache) and is reported apart from the per-frame stages.

    make bench-build                        # this tree
    make bench-build ARGS="--base main"     # before/after
    python benchmarks/bench_build.py --quick --base HEAD~3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: builder-module names timed as stages (exclusive time: a stage's callees are not counted
#: in it), in table order; absent names are skipped
STAGES = {
    "depth: ground plane": ["fit_ground_plane", "ground_prior"],
    "depth: LiDAR projection": ["project_lidar"],
    "depth: completion": ["complete_depth"],
    "depth: above the LiDAR": ["depth_above_lidar"],
    "depth: confidence": ["lidar_confidence"],
    "depth: prior / sky": ["prior_depth", "detect_sky"],
    "vehicles: segmentation": ["segment_vehicles"],
    "vehicles: box pixels, depth": ["_join_box_pixels", "vehicle_depth"],
    "normals": ["_normals"],
    "footprint Gaussians": ["_gaussians"],
    "backing discs": ["_backing"],
    "hidden: ray-box depths": ["ray_box_depths"],
    "hidden: behind layer": ["behind_layer"],
    "hidden: border layer": ["border_layer"],
    "hidden: sky backdrop": ["sky_backdrop"],
    "hidden: rest": ["_hidden_layers"],
    "actors: mirror": ["mirror_actor", "hidden_from_source"],
}

SCENARIOS = {
    "shift": {
        "name": "shift",
        "source": {"adapter": "toytown"},
        "duration_s": 1.0,
        "fps": 10,
        "ego": {"perturbations": [{"type": "lateral_offset", "offset_m": 1.5, "ramp_s": 1.0}]},
    },
    "slow": {
        "name": "slow",
        "source": {"adapter": "toytown"},
        "duration_s": 1.0,
        "fps": 10,
        "ego": {"perturbations": [{"type": "speed_scale", "scale": 0.6, "ramp_s": 0.5}]},
        "actors": {"default": "constant_velocity"},
    },
}


# --------------------------------------------------------------------------- worker side
class StageClock:
    """Exclusive CPU time per stage of wrapped functions (a stack subtracts callees)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self._stack: list[list[float]] = []

    def wrap(self, module, name: str, stage: str) -> None:
        fn = getattr(module, name, None)
        if fn is None:
            return

        def timed(*a, **k):
            self._stack.append([time.process_time(), 0.0])
            try:
                return fn(*a, **k)
            finally:
                t0, child = self._stack.pop()
                dt = time.process_time() - t0
                self.total[stage] = self.total.get(stage, 0.0) + dt - child
                if self._stack:
                    self._stack[-1][1] += dt

        setattr(module, name, timed)

    def take(self) -> dict[str, float]:
        out, self.total = self.total, {}
        return out


def _scene_digest(scene) -> str:
    import numpy as np

    h = hashlib.sha256()
    sets = [scene.static] + [a.gaussians for a in scene.actors]
    for g in sets:
        for arr in (g.means, g.quats, g.scales, g.opacities, g.colors, g.confidence):
            h.update(np.ascontiguousarray(arr).tobytes())
    h.update(np.ascontiguousarray(scene.is_sky).tobytes())
    return h.hexdigest()[:12]


def _build_timed(frame, clock: StageClock) -> tuple[dict[str, float], object]:
    from p4dsim.scene.builder import build_scene

    clock.take()
    t0 = time.process_time()
    scene = build_scene(frame)
    total = time.process_time() - t0
    stages = clock.take()
    stages["build: rest"] = total - sum(stages.values())
    stages["build total"] = total
    return stages, scene


def _mean(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = dict.fromkeys(k for d in dicts for k in d)  # first-seen order
    return {k: sum(d.get(k, 0.0) for d in dicts) / len(dicts) for k in keys}


def _rows_costs(scene, log, n_frames: int, digest, decoded) -> dict[str, float]:
    """Mean CPU seconds per rendered frame of each encoding and of the label rows; ``digest``
    takes the encoded bytes and the rows, ``decoded`` what the encodings decode to."""
    from p4dsim.io import codecs
    from p4dsim.io.rows import actor_rows, frame_row
    from p4dsim.labels import label_geometry
    from p4dsim.render import get_renderer
    from p4dsim.scenario.model import Scenario
    from p4dsim.scenario.timeline import make_timeline, timeline_metrics

    renderer = get_renderer("cpu")
    costs: list[dict[str, float]] = []
    for sc in SCENARIOS.values():
        scenario = Scenario.model_validate(sc)
        tl = make_timeline(scenario, scene, log, "bench", metrics=False)
        ks = list(range(min(n_frames, len(tl.times))))
        frames = renderer.render_steps(scene, tl, ks, scenario.output)
        metrics = timeline_metrics(scenario, scene, tl, slice(0, len(ks)))
        geom = label_geometry(scene, tl, ks)
        for fr in frames:
            c = {}
            for name, fn in (
                ("rgb png", lambda fr=fr: codecs.rgb_buffer(fr.rgb, "png")),
                ("rgb jpeg", lambda fr=fr: codecs.rgb_buffer(fr.rgb, "jpeg", 95)),
                ("depth float16", lambda fr=fr: codecs.depth_buffer(fr.depth, "float16")),
                ("depth png16", lambda fr=fr: codecs.depth_buffer(fr.depth, "png16")),
                ("observed mask", lambda fr=fr: codecs.mask_buffer(fr.observed)),
            ):
                t0 = time.process_time()
                buf = fn()
                c[name] = time.process_time() - t0
                digest.update(bytes(buf))
                c[f"{name} KB"] = len(buf) / 1024.0
                if name == "rgb png" or name == "rgb jpeg":
                    decoded.update(codecs.decode_rgb(bytes(buf)).tobytes())
                elif name == "depth png16":
                    h, w = fr.depth.shape
                    decoded.update(codecs.decode_depth(bytes(buf), "png16", w, h).tobytes())
                elif name == "observed mask":
                    decoded.update(codecs.decode_mask(bytes(buf)).tobytes())
                else:
                    decoded.update(bytes(buf))
            base = {"run_id": "bench", "variant_id": "base", "frame_index": fr.index}
            t0 = time.process_time()
            frow = frame_row(scene, tl, fr, base, scenario.output, metrics[fr.index])
            c["frame row (png, float16, mask)"] = time.process_time() - t0
            t0 = time.process_time()
            arows = actor_rows(scene, tl, fr, base, fr.alone, geom)
            c["actor rows (labels)"] = time.process_time() - t0
            for k in sorted(frow):
                v = frow[k]
                digest.update(bytes(v) if isinstance(v, bytes | memoryview) else repr(v).encode())
            digest.update(repr(arows).encode())
            costs.append(c)
    return _mean(costs)


def worker(args: argparse.Namespace) -> dict:
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    t0 = time.process_time()
    import p4dsim.scene.builder as builder
    from p4dsim.source import SourceSpec

    result: dict = {"import": time.process_time() - t0, "sources": {}}
    clock = StageClock()
    for stage, names in STAGES.items():
        for name in names:
            clock.wrap(builder, name, stage)

    # A fresh worker's first source frame pays once for numba's start and for loading every
    # compiled kernel from its cache (and OpenCV's, open3d's first calls): a small toytown
    # frame synthesised and built twice, the first time minus the second.
    small = SourceSpec.parse("toytown:?width=124&height=38&frames=1").open()
    once = []
    for _ in range(2):
        t0 = time.process_time()
        builder.build_scene(small.frame(0))
        once.append(time.process_time() - t0)
    result["first frame"], result["steady frame"] = once
    for w, h in args.sizes:
        log = SourceSpec.parse(f"toytown:?width={w}&height={h}&frames=40").open()
        synth, builds, digests, rows, scene = [], [], [], None, None
        for i in args.toytown_frames:
            t0 = time.process_time()
            frame = log.frame(i)
            synth.append(time.process_time() - t0)
            stages, scene = _build_timed(frame, clock)
            builds.append(stages)
            digests.append(_scene_digest(scene))
        rd, dd = hashlib.sha256(), hashlib.sha256()
        if args.run_frames_rendered > 0:
            rows = _rows_costs(scene, log, args.run_frames_rendered, rd, dd)
        result["sources"][f"toytown {w}x{h}"] = {
            "frame synthesis": float(np.mean(synth)),
            "build": _mean(builds),
            "rows": rows,
            "scene digest": ",".join(digests),
            "rows digest": rd.hexdigest()[:12] if rows else "",
            "decoded digest": dd.hexdigest()[:12] if rows else "",
        }
    if args.kitti is not None:
        from p4dsim.perception.select import frame_with_actors

        spec = SourceSpec.from_mapping(
            {"adapter": "kitti-raw", "path": str(args.kitti), "date": "2011_09_26", "drive": "0052"}
        )
        log = spec.open()
        for actors in ("none", "auto"):
            load, act, builds, digests = [], [], [], []
            for i in args.kitti_frames:
                t0 = time.process_time()
                frame = log.frame(i)
                load.append(time.process_time() - t0)
                t0 = time.process_time()
                frame = frame_with_actors(frame, log, i, actors, "bench")
                act.append(time.process_time() - t0)
                stages, scene = _build_timed(frame, clock)
                builds.append(stages)
                digests.append(_scene_digest(scene))
            rows = None
            rd, dd = hashlib.sha256(), hashlib.sha256()
            if actors == "none" and args.run_frames_rendered > 0:  # the rows of the last frame
                rows = _rows_costs(scene, log, args.run_frames_rendered, rd, dd)
            result["sources"][f"KITTI 0052 actors={actors}"] = {
                "frame loading": float(np.mean(load)),
                "actors": float(np.mean(act)),
                "build": _mean(builds),
                "rows": rows,
                "scene digest": ",".join(digests),
                "rows digest": rd.hexdigest()[:12] if rows else "",
                "decoded digest": dd.hexdigest()[:12] if rows else "",
            }
    return result


# --------------------------------------------------------------------------- parent side
def _tree_of(rev: str, into: Path) -> Path:
    """The p4dsim and adapters folders of git revision ``rev``, extracted under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    tar = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "p4dsim", "adapters"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    return into


def _run_tree(root: Path, argv: list[str]) -> dict:
    env = dict(os.environ)
    for v in THREAD_VARS:
        env[v] = "1"
    paths = [str(root)] + [str(p) for p in sorted((root / "adapters").glob("*")) if p.is_dir()]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(
            [sys.executable, __file__, "--worker", f.name, *argv], env=env, check=True, cwd=root
        )
        return json.loads(Path(f.name).read_text())


def _fmt(x: float | None, scale: float = 1.0, nd: int = 3) -> str:
    return "" if x is None else f"{x * scale:.{nd}f}"


def _print(results: dict[str, dict], run_frames: int) -> None:
    labels = list(results)
    two = len(labels) == 2
    head = (
        f"{'stage':40s}" + "".join(f"{lab:>12s}" for lab in labels) + ("  speed-up" if two else "")
    )
    for src in results[labels[-1]]["sources"]:
        per = [results[lab]["sources"].get(src) for lab in labels]
        print(f"\n## {src} (CPU seconds, one thread)\n")
        print(head)
        lines: list[tuple[str, list[float | None], float]] = []
        for key in ("frame synthesis", "frame loading", "actors"):
            if key in per[-1]:
                lines.append((key, [p.get(key) if p else None for p in per], 1.0))
        stages = list(STAGES) + ["build: rest", "build total"]
        for st in stages:
            vals = [p["build"].get(st) if p else None for p in per]
            if all(v is None or v < 5e-4 for v in vals):
                continue
            lines.append((st, vals, 1.0))
        if per[-1].get("rows"):
            for k in per[-1]["rows"]:
                vals = [p["rows"].get(k) if p and p["rows"] else None for p in per]
                lines.append((f"per frame: {k}" + ("" if k.endswith("KB") else " (ms)"), vals, 1.0))
        for name, vals, _ in lines:
            ms = name.endswith("(ms)")
            row = f"{name:40s}" + "".join(
                f"{_fmt(v, 1000.0 if ms else 1.0, 2 if ms else 3):>12s}" for v in vals
            )
            if two and vals[0] and vals[1] and not name.endswith("KB"):
                row += f"  {vals[0] / vals[1]:7.2f}x"
            print(row)
        tot = []
        for p in per:
            if p is None:
                tot.append(None)
                continue
            t = p.get("frame synthesis", 0.0) + p.get("frame loading", 0.0) + p.get("actors", 0.0)
            t += p["build"]["build total"]
            if p.get("rows"):
                t += 2 * run_frames * p["rows"]["frame row (png, float16, mask)"]
            tot.append(t)
        extra = f" + rows of {2 * run_frames} frames" if per[-1].get("rows") else ""
        row = f"{'per source frame: synthesis + build' + extra:40s}"
        row += "".join(f"{_fmt(v):>12s}" for v in tot)
        if two and tot[0] and tot[1]:
            row += f"  {tot[0] / tot[1]:7.2f}x"
        print(row)
        print(
            "scene digests: "
            + " | ".join(
                f"{lab}: {p['scene digest']}" for lab, p in zip(labels, per, strict=True) if p
            )
        )
        if per[-1].get("decoded digest"):
            print(
                "decoded images digests: "
                + " | ".join(
                    f"{lab}: {p['decoded digest']}" for lab, p in zip(labels, per, strict=True) if p
                )
            )
        if per[-1].get("rows digest"):
            print(
                "rows digests:  "
                + " | ".join(
                    f"{lab}: {p['rows digest']}" for lab, p in zip(labels, per, strict=True) if p
                )
            )
    print()
    for lab in labels:
        r = results[lab]
        print(
            f"{lab}: import p4dsim.scene.builder {r['import']:.2f} s; a fresh process's first "
            f"small frame (124x38, synthesis + build) {r['first frame']:.2f} s vs "
            f"{r['steady frame']:.2f} s after it: +{r['first frame'] - r['steady frame']:.2f} s "
            "once per worker"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=None, help="git revision to compare against")
    ap.add_argument("--sizes", default="1242x375,621x188", help="toytown sizes WxH,...")
    ap.add_argument("--toytown-frames", default="0,5", help="toytown source frames")
    ap.add_argument("--kitti-frames", default="0,7", help="KITTI 0052 frames")
    ap.add_argument("--kitti", type=Path, default=None, help="kitti_raw folder")
    ap.add_argument("--run-frames", type=int, default=11, help="frames per scenario run")
    ap.add_argument(
        "--rendered", type=int, default=3, help="frames rendered per scenario to time rows on"
    )
    ap.add_argument("--quick", action="store_true", help="one small size, one frame each")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.toytown_frames, args.kitti_frames, args.rendered = "414x125", "0", "0", 1
    if args.worker:
        ns = argparse.Namespace(
            sizes=[tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")],
            toytown_frames=[int(x) for x in args.toytown_frames.split(",")],
            kitti_frames=[int(x) for x in args.kitti_frames.split(",")],
            kitti=args.kitti,
            run_frames_rendered=args.rendered,
        )
        Path(args.worker).write_text(json.dumps(worker(ns)))
        return 0
    if args.kitti is None:
        data = Path(os.environ.get("P4DSIM_REAL_DATA", REPO.parent / "shared" / "data"))
        if (data / "kitti_raw").is_dir():
            args.kitti = (data / "kitti_raw").resolve()
        else:
            print(f"no KITTI data under {data}: KITTI 0052 skipped", file=sys.stderr)
    fwd = [
        f"--sizes={args.sizes}",
        f"--toytown-frames={args.toytown_frames}",
        f"--kitti-frames={args.kitti_frames}",
        f"--rendered={args.rendered}",
    ]
    if args.kitti is not None:
        fwd.append(f"--kitti={args.kitti}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="p4dsim-bench-build-") as tmp:
        trees = {}
        if args.base:
            trees[f"base {args.base}"[:12]] = _tree_of(args.base, Path(tmp))
        trees["this tree"] = REPO
        for label, root in trees.items():
            # a short run first, so that numba's cache holds every kernel the tree compiles
            _run_tree(
                root,
                ["--quick", "--rendered=1", "--kitti-frames=0"][: 2 if args.kitti is None else 3]
                + ([f"--kitti={args.kitti}"] if args.kitti else []),
            )
            results[label] = _run_tree(root, fwd)
    _print(results, args.run_frames)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
