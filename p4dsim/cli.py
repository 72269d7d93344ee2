"""The ``p4dsim`` command line."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from p4dsim.errors import P4DSimError

app = typer.Typer(
    name="p4dsim",
    help="One driving-log frame to a 4D Gaussian scene; counterfactual replays to Parquet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


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
) -> None:
    """Render a scenario and write the native dataset (manifest.json + Parquet tables)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from p4dsim.replay import replay as run_replay
    from p4dsim.scenario.load import load_scenario

    if device is not None and device not in ("auto", "cpu", "cuda"):
        raise P4DSimError(f"--device must be auto, cpu or cuda, got '{device}'")
    scenario = load_scenario(scenario_file)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
        transient=False,
    ) as progress:
        task = progress.add_task(f"replay {scenario.name}", total=None)

        def on_frame(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = run_replay(
            scenario, out, scenario_path=scenario_file, device=device, on_frame=on_frame
        )
    s = result.summary
    table = Table(title=f"p4dsim replay: {scenario.name}", show_header=False)
    table.add_row("dataset", str(result.out_dir))
    table.add_row("frames", str(s["frames"]))
    table.add_row(
        "time", f"{s['seconds']:.1f} s ({s['frames'] / max(s['seconds'], 1e-9):.2f} frames/s)"
    )
    table.add_row("renderer", f"{s['renderer']} ({s['device']})")
    table.add_row("gaussians", f"{s['gaussians']:,}")
    table.add_row("actors", str(s["actors"]))
    if s.get("mean_coverage") is not None:
        table.add_row("mean coverage", f"{s['mean_coverage']:.3f}")
    for key, label in (
        ("first_collision_s", "first collision"),
        ("min_distance_m", "min distance"),
    ):
        if key in s:
            table.add_row(label, "none" if s[key] is None else f"{s[key]:.2f}")
    console.print(table)


@app.command()
def info(
    source: Annotated[str, typer.Argument(help="ADAPTER[:PATH][?key=value&...]")],
    frame: Annotated[
        int | None, typer.Option(help="Frame to describe (default: the source's frame or 0).")
    ] = None,
) -> None:
    """Summarise a source: frames, camera, LiDAR points, boxes by label."""
    from p4dsim.source import SourceSpec

    spec = SourceSpec.parse(source)
    log = spec.open(Path.cwd(), where=f"source '{source}'")
    idx = log.check_index(spec.frame if frame is None else frame)
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
    from p4dsim.scenario.load import load_scenario

    scenario = load_scenario(scenario_file)
    table = Table(title=f"{scenario_file}: valid")
    table.add_column("run")
    table.add_column("variant")
    table.add_column("source")
    table.add_column("frames")
    table.add_row(
        scenario.name or "",
        "base",
        f"{scenario.source.adapter} frame {scenario.source.frame}",
        str(len(scenario.times())),
    )
    console.print(table)


@app.command()
def bench(
    scene: Annotated[
        Path | None, typer.Option(help="PLY scene (default: toytown at --width x --height).")
    ] = None,
    frames: Annotated[int, typer.Option(help="Frames of the end-to-end replay.")] = 256,
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

    if device not in ("auto", "cpu", "cuda"):
        raise P4DSimError(f"--device must be auto, cpu or cuda, got '{device}'")
    if rgb not in ("jpeg", "png") or depth not in ("float16", "png16"):
        raise P4DSimError("--rgb must be jpeg or png and --depth float16 or png16")
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
    """Entry point: user errors print a message and exit 2, without a traceback."""
    try:
        app(standalone_mode=False)
    except P4DSimError as exc:
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was published")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
