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
    preview: Annotated[
        bool,
        typer.Option(
            "--preview", help="Also write DATASET/preview.mp4 (GIF without an MP4 encoder)."
        ),
    ] = False,
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
    if s.get("kinematic_warnings"):
        table.add_row("kinematic warnings", f"{s['kinematic_warnings']} frames")
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
    from p4dsim.scenario.variants import expand_variants

    scenario = load_scenario(scenario_file)
    variants = expand_variants(scenario, str(scenario_file))
    _check_track_ids(scenario_file, [v.scenario for v in variants])
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


def _check_track_ids(scenario_file: Path, scenarios: list) -> None:
    """Track ids named in actor rules must exist in the log's tracks (when it has tracks;
    replay checks them again against the source frame's actors)."""
    from p4dsim.errors import ConfigError
    from p4dsim.source import SourceSpec

    named = {
        (i, tid)
        for sc in scenarios
        for i, rule in enumerate(sc.actors.rules)
        for tid in [rule.select.track_id, *(rule.select.track_ids or [])]
        if tid
    }
    if not named:
        return
    sc = scenarios[0]
    spec = SourceSpec.from_mapping(sc.source.model_dump(exclude_none=True))
    log = spec.open(scenario_file.parent, where=f"{scenario_file}: field 'source'")
    known = log.tracks()
    if not known:
        return
    for i, tid in sorted(named):
        if tid not in known:
            raise ConfigError(
                f"{scenario_file}: field 'actors.rules[{i}].select': track id '{tid}' does not "
                f"exist in the source log; its tracks are: {', '.join(sorted(known))}"
            )


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
