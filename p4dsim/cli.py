"""The ``p4dsim`` command line."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from p4dsim.cli_console import console, err_console, progress_bar
from p4dsim.cli_eval import eval_app
from p4dsim.errors import P4DSimError
from p4dsim.types import check_device

app = typer.Typer(
    name="p4dsim",
    help="One driving-log frame to a 4D Gaussian scene; counterfactual replays to Parquet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def replay(
    scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Dataset folder (overrides output.dir).")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu or cuda (overrides render.device).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview", help="Also write DATASET/preview.mp4 (GIF without an MP4 encoder)."
        ),
    ] = False,
) -> None:
    """Render a scenario and write the native dataset (manifest.json + Parquet tables)."""

    from p4dsim.replay import replay as run_replay
    from p4dsim.scenario.load import load_scenario

    device = check_device(device)
    scenario = load_scenario(scenario_file)
    with progress_bar(quiet) as progress:
        task = progress.add_task(f"replay {scenario.name}", total=None)

        def on_frame(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = run_replay(
            scenario, out, scenario_path=scenario_file, device=device, on_frame=on_frame
        )
    s = result.summary
    table = Table(title=f"p4dsim replay: {scenario.name}", show_header=False)
    table.add_row("dataset", str(result.out_dir))
    table.add_row("frames", str(s.frames))
    table.add_row("time", f"{s.seconds:.1f} s ({s.frames / max(s.seconds, 1e-9):.2f} frames/s)")
    table.add_row("renderer", f"{s.renderer} ({s.device})")
    table.add_row("gaussians", f"{s.gaussians:,}")
    table.add_row("actors", str(s.actors))
    if s.mean_coverage is not None:
        table.add_row("mean coverage", f"{s.mean_coverage:.3f}")
    for value, label in (
        (s.first_collision_s, "first collision"),
        (s.min_distance_m, "min distance"),
    ):
        table.add_row(label, "none" if value is None else f"{value:.2f}")
    for fmt, path in s.exports.items():
        table.add_row(f"export {fmt}", path)
    if s.kinematic_warnings:
        table.add_row("kinematic warnings", f"{s.kinematic_warnings} frames")
    if preview:
        from p4dsim.preview import write_preview

        table.add_row("preview", str(write_preview(result.out_dir)))
    console.print(table)
    _print_runs(result.out_dir)


def _print_runs(out_dir: Path) -> None:
    """Per-variant safety table when a scenario expanded into several runs."""
    from p4dsim.io.dataset import read_manifest

    runs = read_manifest(out_dir).get("runs", [])
    if len(runs) < 2:
        return
    table = Table(title="runs")
    for col in ("variant", "overrides", "first collision", "min distance", "min TTC"):
        table.add_column(col)

    def num(x):
        return "none" if x is None else f"{x:.2f}"

    for r in runs:
        ov = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in r.get("overrides", {}).items()
        )
        table.add_row(
            r["variant_id"],
            ov,
            num(r.get("first_collision_s")),
            num(r.get("min_distance_m")),
            num(r.get("min_ttc_s")),
        )
    console.print(table)


def _open_frame(source: str, frame: int | None):
    """(spec, log, frame index) of a command-line source; ``frame`` overrides the source's."""
    from p4dsim.source import SourceSpec

    spec = SourceSpec.parse(source)
    log = spec.open(Path.cwd(), where=f"source '{source}'")
    return spec, log, log.check_index(spec.frame if frame is None else frame)


@app.command()
def info(
    source: Annotated[str, typer.Argument(help="ADAPTER[:PATH][?key=value&...]")],
    frame: Annotated[
        int | None, typer.Option(help="Frame to describe (default: the source's frame or 0).")
    ] = None,
    actors: Annotated[
        bool, typer.Option("--actors", help="Find vehicles in the LiDAR and list them.")
    ] = False,
    bev: Annotated[
        Path | None, typer.Option(help="With --actors: write a bird's-eye PNG here.")
    ] = None,
) -> None:
    """Summarise a source: frames, camera, LiDAR points, boxes by label."""
    _, log, idx = _open_frame(source, frame)
    fr = log.frame(idx)
    traj = log.ego_trajectory()
    table = Table(title=f"{log.dataset}: {log.log_id}", show_header=False)
    table.add_row("frames", str(len(log)))
    table.add_row("ego poses", "yes" if traj is not None else "no")
    table.add_row("tracks", str(len(log.tracks())))
    table.add_row("frame", str(idx))
    table.add_row("timestamp_us", str(fr.timestamp_us))
    K = fr.camera.K
    table.add_row(
        "camera",
        f"{fr.camera.width}×{fr.camera.height}, fx={K[0, 0]:.1f} fy={K[1, 1]:.1f} "
        f"cx={K[0, 2]:.1f} cy={K[1, 2]:.1f}",
    )
    table.add_row("lidar points", "none" if fr.lidar is None else f"{len(fr.lidar):,}")
    counts = Counter(b.label for b in fr.boxes)
    table.add_row("boxes", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none")
    table.add_row(
        "ego speed", f"{float((fr.ego_velocity[0] ** 2 + fr.ego_velocity[1] ** 2) ** 0.5):.2f} m/s"
    )
    console.print(table)
    if actors or bev is not None:
        _print_actors(log, idx, fr, bev)


def _print_actors(log, idx: int, fr, bev: Path | None) -> None:
    """The vehicles found in frame ``idx``'s LiDAR (see p4dsim.perception), and a bird's-eye
    PNG of them when ``bev`` is given."""
    import time

    from p4dsim.perception.track import detect

    if fr.lidar is None or len(fr.lidar) == 0:
        raise P4DSimError(f"--actors: frame {idx} has no LiDAR points to find vehicles in")
    t0 = time.perf_counter()
    found = detect(log, idx)
    seconds = time.perf_counter() - t0
    table = Table(title=f"auto actors of frame {idx} ({seconds:.1f} s)")
    for col in ("id", "x, y (m)", "l×w×h (m)", "yaw", "speed", "scans", "points", "confidence"):
        table.add_column(col)
    for i, a in enumerate(found):
        c = a.cluster
        table.add_row(
            f"auto{i}",
            f"{c.center[0]:.1f}, {c.center[1]:.1f}",
            "×".join(f"{x:.1f}" for x in c.size),
            f"{a.yaw:+.2f}",
            "static?" if a.static else f"{a.speed:.2f} m/s",
            str(a.matched),
            str(len(c.points)),
            f"{a.confidence:.2f}",
        )
    console.print(table)
    if bev is not None:
        from p4dsim.perception.bev import write_bev

        console.print(f"bird's-eye view: {write_bev(bev, fr.lidar, found)}")


@app.command()
def export(
    dataset: Annotated[Path, typer.Argument(help="A p4dsim dataset folder (with manifest.json).")],
    out: Annotated[Path, typer.Argument(help="Destination folder.")],
    format: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="Exporter name, e.g. kitti or waymo-v2 (see `p4dsim adapters`)."
        ),
    ],
) -> None:
    """Export a dataset to another layout (KITTI object, Waymo v2, ...)."""
    from p4dsim.io.export import export_dataset

    s = export_dataset(dataset, format, out)
    console.print(f"exported {s.frames} frames and {s.objects} objects as {format} to {s.out_dir}")


@app.command()
def build(
    source: Annotated[str, typer.Argument(help="ADAPTER[:PATH][?key=value&...]")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Scene PLY to write.")],
    frame: Annotated[
        int | None, typer.Option(help="Source frame (default: the source's frame or 0).")
    ] = None,
    stride: Annotated[int, typer.Option(help="One Gaussian per stride×stride pixels.")] = 1,
    depth: Annotated[str, typer.Option(help="Depth source: auto, lidar, prior or mono.")] = "auto",
    mono_model: Annotated[
        Path | None, typer.Option(help="Local transformers depth model (for --depth mono).")
    ] = None,
) -> None:
    """Build the scene of one frame and save it as a 3DGS PLY plus a JSON sidecar."""
    import time

    from p4dsim.preflight import check_stride
    from p4dsim.scene.builder import BuildConfig, build_scene
    from p4dsim.scene.ply import check_scene_path, save_scene, sidecar_path

    check_scene_path(out)  # before anything is built
    spec, log, idx = _open_frame(source, frame)
    cam = log.frame(idx).camera
    check_stride(stride, cam.width, cam.height)
    cfg = BuildConfig(
        stride=stride,
        depth_source=depth,
        mono_model=None if mono_model is None else str(mono_model),
    )
    t0 = time.perf_counter()
    scene = build_scene(log.frame(idx), cfg)
    seconds = time.perf_counter() - t0
    save_scene(
        scene, out, provenance={"source": spec.with_frame(idx).to_string(), "stride": stride}
    )
    table = Table(title=f"p4dsim build: {log.log_id} frame {idx}", show_header=False)
    table.add_row("scene", f"{out} (+ {sidecar_path(out).name})")
    table.add_row("gaussians", f"{scene.num_gaussians():,}")
    table.add_row("actors", str(len(scene.actors)))
    table.add_row("build time", f"{seconds:.2f} s")
    console.print(table)


@app.command()
def adapters() -> None:
    """List installed adapter and exporter plugins."""
    from p4dsim.plugins import adapters as list_adapters
    from p4dsim.plugins import exporters as list_exporters

    table = Table(title="p4dsim plugins")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("description")
    for name, cls in list_adapters().items():
        table.add_row("adapter", name, cls.description)
    for name, cls in list_exporters().items():
        table.add_row("exporter", name, cls.description)
    console.print(table)
    from p4dsim.plugins import broken_plugins

    for key, why in broken_plugins().items():
        err_console.print(f"warning: plugin {key} could not be loaded: {why}", highlight=False)


@app.command()
def validate(scenario_file: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Validate a scenario file and print the runs it expands to, without rendering."""
    from p4dsim.preflight import preflight
    from p4dsim.scenario.load import load_scenario

    scenario = load_scenario(scenario_file)
    # The same checks replay makes before it builds anything (source, frame, budget, ...).
    variants = preflight(scenario, scenario_file, scenario.output.dir, out_from_file=True).variants
    table = Table(title=f"{scenario_file}: valid, {len(variants)} run(s)")
    table.add_column("run")
    table.add_column("variant")
    table.add_column("overrides")
    table.add_column("source")
    table.add_column("frames")
    for v in variants:
        sc = v.scenario
        table.add_row(
            sc.name or "",
            v.variant_id,
            ", ".join(f"{k}={x!r}" for k, x in v.overrides.items()) or "-",
            f"{sc.source.adapter} frame {sc.source.frame}",
            str(len(sc.times())),
        )
    console.print(table)


app.add_typer(eval_app, name="eval")


@app.command()
def augment(
    source: Annotated[
        str, typer.Option(help="Source log ADAPTER[:PATH][?key=value&...] (as in p4dsim info).")
    ],
    scenarios: Annotated[
        list[str],
        typer.Option(help="Scenario file or glob (quoted), e.g. 'scenarios/*.yaml'; repeatable."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Dataset folder (resumed if it exists).")
    ],
    frames: Annotated[
        str, typer.Option(help="Source frames: '0:200:5', '1,3,7', '@ids.txt'; ':' = all.")
    ] = ":",
    executor: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes (local; scene-building processes of a split job) or CPUs "
            "of a local Ray (default: all cores; split: all but one per renderer)."
        ),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: start Ray locally).")
    ] = None,
    gpus_per_worker: Annotated[
        float,
        typer.Option(
            help="Ray: GPUs per task (all-in-one) or per rendering actor (split); > 0 splits."
        ),
    ] = 0.0,
    split: Annotated[
        bool | None,
        typer.Option(
            "--split/--no-split",
            help="Build scenes in CPU processes and render in one process per GPU (default: "
            "when rendering on CUDA; --split also with the CPU renderer).",
            show_default=False,
        ),
    ] = None,
    render_procs: Annotated[
        int | None,
        typer.Option(help="Rendering processes of a split job (default: one per GPU, else 1)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu or cuda (overrides each render.device).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Redo every shard, even completed ones.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Render (source frame × scenario × variant) into one dataset, one shard per source frame;
    re-running the same command resumes it."""
    from rich.markup import escape
    from rich.progress import (
        TextColumn,
        TimeRemainingColumn,
    )

    from p4dsim.augment.job import AugmentConfig, run_augment

    cfg = AugmentConfig(
        source=source,
        scenarios=scenarios,
        out=out,
        frames=frames,
        executor=executor,
        workers=workers,
        address=address,
        gpus_per_worker=gpus_per_worker,
        split=split,
        render_procs=render_procs,
        device=device,
        force=force,
    )
    with progress_bar(quiet, TextColumn("shards"), TimeRemainingColumn()) as progress:
        bar = progress.add_task("augment", total=None)

        def on_plan(plan, skipped: int) -> None:
            progress.update(bar, total=len(plan.shards), completed=skipped)

        def on_result(res) -> None:
            progress.advance(bar)
            if not res.ok:
                first = (res.error or "").splitlines()[0] if res.error else ""
                progress.console.print(
                    f"[red]shard {res.shard_id} failed:[/] {escape(first)}", highlight=False
                )

        s = run_augment(cfg, on_plan=on_plan, on_result=on_result)
    table = Table(title=f"p4dsim augment: {s.out_dir}", show_header=False)
    table.add_row("executor", s.executor)
    table.add_row("tasks", str(s.tasks))
    table.add_row(
        "shards",
        f"{s.shards_total} ({s.shards_done} rendered, {s.shards_skipped} already complete, "
        f"{len(s.failed)} failed)",
    )
    table.add_row("frames", f"{s.frames} rendered now, {s.dataset_frames} in the dataset")
    table.add_row("time", f"{s.seconds:.1f} s")
    table.add_row("frames/s", f"{s.frames_per_s:.2f}")
    table.add_row("failed shards", str(len(s.failed)))
    console.print(table)
    if s.failed:
        ft = Table(title="failed shards")
        ft.add_column("shard")
        ft.add_column("source frame")
        ft.add_column("error")
        for r in s.failed:
            ft.add_row(r.shard_id, str(r.frame), escape((r.error or "").strip().splitlines()[0]))
        err_console.print(ft)
        err_console.print("some shards failed; re-run the same command to retry them")
        sys.exit(1)


@app.command()
def bench(
    scene: Annotated[
        Path | None, typer.Option(help="PLY scene (default: toytown at --width x --height).")
    ] = None,
    frames: Annotated[
        int | None,
        typer.Option(
            help="Frames of the end-to-end replay (default: 2048 on a GPU, a long replay's "
            "steady rate; 64 on the CPU)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    width: Annotated[int, typer.Option(help="Image width (pixels).")] = 1242,
    height: Annotated[int, typer.Option(help="Image height (pixels).")] = 375,
    rgb: Annotated[str, typer.Option(help="RGB encoding: jpeg or png.")] = "jpeg",
    depth: Annotated[str, typer.Option(help="Depth encoding: float16 or png16.")] = "float16",
    raw_frames: Annotated[
        int | None, typer.Option(help="Frames for the raw render rate (default: --frames).")
    ] = None,
) -> None:
    """Raw render frames/s against end-to-end replay frames/s (render + encode + write)."""
    from p4dsim.bench import run_bench

    device = check_device(device)
    r = run_bench(scene, frames, device, width, height, rgb, depth, raw_frames)
    table = Table(title="p4dsim bench")
    for col in ("device", "scene", "frames", "raw render", "end to end", "e2e / raw", "peak RSS"):
        table.add_column(col)
    if r.gpu_peak_mib is not None:
        table.add_column("GPU peak alloc.")
    row = [
        r.device,
        f"{r.scene}, {r.gaussians:,} Gaussians, {r.actors} actors, {r.width}x{r.height}",
        f"{r.frames} ({r.rgb_format} + {r.depth_format}, batch {r.batch_size})",
        f"{r.raw_fps:,.1f} frames/s ({r.raw_ms_per_frame:.2f} ms/frame)",
        f"{r.e2e_fps:,.1f} frames/s",
        f"{r.ratio:.0%}",
        f"{r.peak_rss_mib:,.0f} MiB",
    ]
    if r.gpu_peak_mib is not None:
        row.append(f"{r.gpu_peak_mib:,.0f} MiB")
    table.add_row(*row)
    Console(width=250).print(table)


def main() -> None:
    """Entry point. Exit status (see p4dsim.exitcodes): 0 success, 2 a user mistake or a
    usage error (one line, no traceback), 130 SIGINT, 143 SIGTERM."""
    from rich.markup import escape

    from p4dsim.exitcodes import SIGINT_EXIT, SIGTERM_EXIT, run_cli

    def print_error(msg: str) -> None:
        head, _, rest = msg.partition(": ")
        line = escape(" ".join(rest.split()))
        err_console.print(f"[bold red]{escape(head)}:[/] {line}", highlight=False, soft_wrap=True)

    status = run_cli(app, print_error, (P4DSimError,))
    if status in (SIGINT_EXIT, SIGTERM_EXIT):
        # Clean-up has run. Exit now with the documented status: an interrupt that landed
        # inside an extension's import makes CPython re-raise SIGINT at shutdown otherwise.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    main()
