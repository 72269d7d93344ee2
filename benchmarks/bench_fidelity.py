"""Fidelity benchmark on real logs: every protocol of ``p4dsim eval`` on every dev source
found, with the error anatomy, plus contact sheets to look at.

Sections (``--sections``, comma-separated; all by default):

* ``future``: KITTI raw drive 0052, future protocol k = 1, 5, 10: p4dsim with the default
  actors, ``auto`` (LiDAR-detected vehicles) and ``none`` against ``copy`` and ``lidar_warp``.
  On a drive without labels the default actors *are* ``auto``; the benchmark then renders
  them once and says so.
* ``stereo``: KITTI raw drive 0048, right camera predicted from the left, at full resolution
  and at 640×192.
* ``jumps``: novel-view depth consistency of lateral camera jumps of ±1, ±2, ±3 m (heading
  unchanged) on the KITTI dev frames.
* ``nuscenes``: nuScenes future keyframes k = 1, 2 when the ``nuscenes`` adapter is installed
  (skipped with a message otherwise).
* ``sheets``: contact sheets (RGB over depth): KITTI 0052 frame 5 and 2 m lateral jumps, and
  the frames of ``scenarios/demo.yaml``.

Run with ``make bench-fidelity`` (full: every dev frame, full resolution; about an hour on a 2-core
CPU, minutes on a GPU) or ``make bench-fidelity-quick`` / ``--quick`` (a subset of frames at
640×192). Every table is printed (markdown) and written with eval.json / eval.png per
section under ``--out`` (default ``out/bench_fidelity``), with ``report.md`` collecting them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from p4dsim.errors import P4DSimError
from p4dsim.eval.contact import write_contact_sheet
from p4dsim.eval.future import FutureEval, evaluate_future
from p4dsim.eval.jumps import evaluate_jumps
from p4dsim.eval.report import markdown_table, plot, region_tables, summarize, write_json
from p4dsim.eval.selection import parse_jumps, parse_resolution
from p4dsim.eval.stereo import evaluate_stereo
from p4dsim.selection import parse_selection
from p4dsim.source import SourceSpec

REPO = Path(__file__).resolve().parents[1]
STEREO_LOW = (640, 192)


def data_root(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("P4DSIM_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


class Report:
    """Prints sections and collects them into report.md."""

    def __init__(self, out: Path):
        self.out = out
        self.parts: list[str] = []

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.parts.append(text)

    def result(self, name: str, title: str, result: FutureEval, xlabel: str) -> None:
        rows = summarize(result)
        write_json(result, self.out / name / "eval.json", rows)
        plot(rows, self.out / name / "eval.png", title, xlabel=xlabel)
        m = result.meta
        self.say(
            f"\n### {title}\n\nframes {m.get('frames')}, resolution {m.get('resolution')}, "
            f"{m.get('renderer')}, {m.get('seconds')} s\n"
        )
        self.say(markdown_table(rows))
        tables = region_tables(rows)
        if tables:
            self.say("\n" + tables)

    def write(self) -> Path:
        p = self.out / "report.md"
        p.write_text("\n".join(self.parts) + "\n")
        return p


def kitti(root: Path, drive: str) -> str | None:
    base = root / "kitti_raw"
    if not (base / "2011_09_26" / f"2011_09_26_drive_{drive}_sync").is_dir():
        return None
    return f"kitti-raw:{base}?date=2011_09_26&drive={drive}"


def open_log(source: str):
    return SourceSpec.parse(source).open(Path.cwd(), where=source)


def labelled(log) -> bool:
    return bool(log.tracks()) or any(log.frame(i).boxes for i in range(min(len(log), 3)))


def future_section(rep: Report, args, root: Path) -> None:
    src = kitti(root, "0052")
    if src is None:
        rep.say("\n(future: KITTI raw drive 0052 not found under the data folder; skipped)")
        return
    log = open_log(src)
    frames = parse_selection(args.future_frames, len(log), "--future-frames")
    actors: list[str | None] = [None, "auto", "none"]
    if not labelled(log):
        actors = [None, "none"]
        rep.say(
            "\n(drive 0052 has no labels: the default actors are the LiDAR-detected ones, so "
            "`p4dsim` is `--actors auto` here and is rendered once)"
        )
    res = evaluate_future(
        log,
        frames,
        [1, 5, 10],
        resolution=args.resolution,
        device=args.device,
        actor_sources=actors,
    )
    rep.result("future_0052", "KITTI 0052 future frames", res, "horizon (frames)")


def stereo_section(rep: Report, args, root: Path) -> None:
    src = kitti(root, "0048")
    if src is None:
        rep.say("\n(stereo: KITTI raw drive 0048 not found under the data folder; skipped)")
        return
    log = open_log(src)
    full = parse_selection(args.stereo_full_frames, len(log), "--stereo-full-frames")
    low = parse_selection(args.stereo_frames, len(log), "--stereo-frames")
    for name, frames, res in (("full", full, None), ("640x192", low, STEREO_LOW)):
        r = evaluate_stereo(log, frames, resolution=res, device=args.device)
        rep.result(f"stereo_0048_{name}", f"KITTI 0048 stereo, {name}", r, "")


def jumps_section(rep: Report, args, root: Path) -> None:
    jumps = parse_jumps(args.jumps)
    for drive, sel in (("0052", args.jump_frames_0052), ("0048", args.jump_frames_0048)):
        src = kitti(root, drive)
        if src is None:
            rep.say(f"\n(jumps: KITTI raw drive {drive} not found; skipped)")
            continue
        log = open_log(src)
        frames = parse_selection(sel, len(log), f"--jump-frames-{drive}")
        r = evaluate_jumps(log, frames, jumps, resolution=args.resolution, device=args.device)
        rep.say(jump_summary(r))
        rep.result(
            f"jumps_{drive}",
            f"KITTI {drive} lateral jumps (depth consistency)",
            r,
            "jump (m, + left)",
        )


def jump_summary(result: FutureEval) -> str:
    """Consistency per jump over the samples whose camera stays outside every road user's
    box (mean and median, since a few views through unseen surfaces dominate the mean)."""
    lines = [
        "\nlateral jumps, camera outside every vehicle box:\n",
        "| jump m | n | consistency AbsRel mean | median | empty |",
        "|---|---|---|---|---|",
    ]
    for d in result.meta["horizons"]:
        ss = [
            s
            for s in result.samples
            if s["horizon"] == d and not s["camera_in_vehicle"] and s["consistency"] is not None
        ]
        if not ss:
            lines.append(f"| {d:+g} | 0 | – | – | – |")
            continue
        c = np.array([s["consistency"] for s in ss])
        e = np.mean([s["empty"] for s in ss])
        lines.append(f"| {d:+g} | {len(ss)} | {c.mean():.3f} | {np.median(c):.3f} | {e:.3f} |")
    return "\n".join(lines)


def nuscenes_section(rep: Report, args, root: Path) -> None:
    from p4dsim.plugins import adapters

    if "nuscenes" not in adapters():
        rep.say("\n(nuscenes: the `nuscenes` adapter is not installed; skipped)")
        return
    src = args.nuscenes_source or f"nuscenes:{root / 'nuscenes'}"
    try:
        log = open_log(src)
    except P4DSimError as exc:
        rep.say(f"\n(nuscenes: could not open {src}: {exc}; skipped)")
        return
    frames = parse_selection(args.nuscenes_frames, len(log), "--nuscenes-frames")
    res = evaluate_future(
        log, frames, [1, 2], resolution=args.nuscenes_resolution, device=args.device
    )
    rep.result(
        "future_nuscenes", f"nuScenes {log.log_id} future keyframes", res, "horizon (keyframes)"
    )


def sheets_section(rep: Report, args, root: Path) -> None:
    from p4dsim.eval.consistency import jump_pose
    from p4dsim.eval.future import resize_frame
    from p4dsim.opening import build_config, open_scene
    from p4dsim.perception.select import frame_with_actors
    from p4dsim.render import get_renderer
    from p4dsim.render.frames import render_frame
    from p4dsim.scenario.actors import resolve_motions
    from p4dsim.scenario.load import load_scenario
    from p4dsim.scenario.model import ActorsModel
    from p4dsim.scenario.timeline import Timeline, make_timeline
    from p4dsim.scene.builder import build_scene

    renderer = get_renderer(args.device)
    src = kitti(root, "0052")
    if src is not None:
        log = open_log(src)
        t = 5
        f = log.frame(t)
        if args.resolution:
            f = resize_frame(f, *args.resolution)
        scene = build_scene(frame_with_actors(f, log, t, None, f"frame {t}"))
        jumps = [0.0, 2.0, -2.0]
        motions = resolve_motions(ActorsModel(), scene, log, f"frame {t}")
        times = np.zeros(len(jumps))
        poses = {tid: m.poses(times) for tid, m in motions.items() if m is not None}
        tl = Timeline(times, np.stack([jump_pose(d) for d in jumps]), poses, scene.camera)
        views = [("source image (frame 5), its LiDAR (magenta: no return)", f.image, lidar_view(f))]
        for i, d in enumerate(jumps):
            fr = render_frame(scene, tl, i, renderer)
            side = "source pose" if d == 0 else f"{abs(d):g} m {'left' if d > 0 else 'right'}"
            empty = float(np.mean(fr.alpha < 0.5))
            views.append(
                (
                    f"p4dsim, {side}: coverage {fr.coverage:.2f}, empty {100 * empty:.1f} %",
                    fr.rgb,
                    fr.depth,
                )
            )
        p = write_contact_sheet(args.out / "sheet_kitti_0052_f5_jump2m.png", views)
        rep.say(f"\ncontact sheet: {p}")
    demo = REPO / "scenarios" / "demo.yaml"
    scenario = load_scenario(demo)
    opened = open_scene(
        scenario.source.model_dump(exclude_none=True),
        actors=scenario.actors.source,
        config=build_config(scenario),
        base_dir=demo.parent,
        where=str(demo),
    )
    dlog, f, scene = opened.log, opened.frame, opened.scene
    tl = make_timeline(scenario, scene, dlog, str(demo), metrics=False)
    n = len(tl.times)
    views = [("source image, its LiDAR (magenta: no return)", f.image, lidar_view(f))]
    for k in sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1}):
        fr = render_frame(scene, tl, k, renderer)
        empty = float(np.mean(fr.alpha < 0.5))
        views.append(
            (
                f"demo t={tl.times[k]:.1f} s: coverage {fr.coverage:.2f}, empty {100 * empty:.1f} %",
                fr.rgb,
                fr.depth,
            )
        )
    p = write_contact_sheet(args.out / "sheet_demo.png", views)
    rep.say(f"contact sheet: {p}")


def lidar_view(frame) -> np.ndarray:
    """The frame's LiDAR projected into its image, each return drawn 3×3 pixels (nearest
    wins), 0 where none: what the scene's depth is built from."""
    import cv2

    from p4dsim.scene.depth import project_lidar

    if frame.lidar is None:
        return np.zeros(frame.image.shape[:2], np.float32)
    sp = project_lidar(frame.lidar, frame.camera)
    z = np.where(sp > 0, sp, np.float32(1e9))
    z = cv2.erode(z, np.ones((3, 3), np.uint8))
    return np.where(z < 1e9, z, 0.0).astype(np.float32)


SECTIONS = {
    "future": future_section,
    "stereo": stereo_section,
    "jumps": jumps_section,
    "nuscenes": nuscenes_section,
    "sheets": sheets_section,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="real data folder (default $P4DSIM_REAL_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=Path("out/bench_fidelity"))
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--quick", action="store_true", help="a subset of frames at 640x192")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--resolution", help="WxH for future, jumps and sheets (default: native)")
    ap.add_argument("--future-frames", help="KITTI 0052 source frames (default 0:14; quick 0:5)")
    ap.add_argument(
        "--stereo-frames", help="KITTI 0048 frames at 640x192 (default 0:8; quick 0:8:2)"
    )
    ap.add_argument(
        "--stereo-full-frames", help="KITTI 0048 frames at full resolution (default 0:8; quick 0)"
    )
    ap.add_argument("--jumps", default="1,2,3,-1,-2,-3", help="lateral jumps (m, + left)")
    ap.add_argument("--jump-frames-0052", help="default 0:15; quick 0:15:5")
    ap.add_argument("--jump-frames-0048", help="default 0:8; quick 0:8:4")
    ap.add_argument(
        "--nuscenes-source", help="nuScenes source string (default nuscenes:DATA/nuscenes)"
    )
    ap.add_argument("--nuscenes-frames", help="keyframes (default 0:39; quick 0:40:8)")
    ap.add_argument("--nuscenes-resolution", help="WxH (default native; quick 800x450)")
    args = ap.parse_args(argv)
    q = args.quick
    defaults = {
        "future_frames": ("0:14", "0:5"),
        "stereo_frames": ("0:8", "0:8:2"),
        "stereo_full_frames": ("0:8", "0"),
        "jump_frames_0052": ("0:15", "0:15:5"),
        "jump_frames_0048": ("0:8", "0:8:4"),
        "nuscenes_frames": ("0:39", "0:40:8"),
        "nuscenes_resolution": (None, "800x450"),
        "resolution": (None, "640x192"),
    }
    for k, (full, quick) in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, quick if q else full)
    try:
        args.resolution = parse_resolution(args.resolution) if args.resolution else None
        args.nuscenes_resolution = (
            parse_resolution(args.nuscenes_resolution, "--nuscenes-resolution")
            if args.nuscenes_resolution
            else None
        )
        sections = [s.strip() for s in args.sections.split(",") if s.strip()]
        bad = [s for s in sections if s not in SECTIONS]
        if bad:
            raise P4DSimError(f"--sections: unknown section '{bad[0]}' (use {', '.join(SECTIONS)})")
        root = data_root(args.data)
        args.out.mkdir(parents=True, exist_ok=True)
        rep = Report(args.out)
        rep.say(f"# p4dsim fidelity benchmark ({'quick' if q else 'full'}; data {root})")
        for s in sections:
            t0 = time.perf_counter()
            SECTIONS[s](rep, args, root)
            print(f"[{s}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
        print(f"\nwrote {rep.write()}")
    except P4DSimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
