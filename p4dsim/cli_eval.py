"""``p4dsim eval``: the evaluation protocols (future frames, stereo, lateral jumps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p4dsim.cli_console import console, progress_bar
from p4dsim.errors import P4DSimError
from p4dsim.types import check_device

eval_app = typer.Typer(help="Evaluate rendered frames against real ones.", no_args_is_help=True)


@eval_app.command("future")
def eval_future(
    source: Annotated[str, typer.Option("--source", help="ADAPTER[:PATH][?key=value&...]")],
    frames: Annotated[
        str, typer.Option("--frames", help="Source frames t: 0:10, 0:200:5 or 1,3,7.")
    ] = "0:10",
    horizons: Annotated[
        str, typer.Option("--horizons", help="Frame offsets k to predict, e.g. 1,5,10.")
    ] = "1,5,10",
    resolution: Annotated[
        str | None, typer.Option("--resolution", help="WxH (default: the source camera's).")
    ] = None,
    perturb: Annotated[
        list[str] | None,
        typer.Option(
            "--perturb",
            help="Also evaluate a perturbed ego path (toytown only): lateral_offset=M or "
            "speed_scale=F; repeatable.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for eval.json and eval.png.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    actors: Annotated[
        str,
        typer.Option(
            "--actors",
            help="Comma-separated actor sources, one p4dsim method each: default (labels, or "
            "LiDAR-detected vehicles when the frame has none), auto, labels, none.",
        ),
    ] = "default",
) -> None:
    """Future-frame protocol: build the scene at frame t, render the logged views of t+k,
    compare with the real frames (PSNR, SSIM, depth AbsRel/RMSE vs LiDAR, coverage) next to
    the copy and lidar_warp baselines; writes eval.json and eval.png."""

    from p4dsim.eval.future import evaluate_future
    from p4dsim.eval.report import markdown_table, plot, region_tables, summarize, write_json
    from p4dsim.eval.selection import (
        parse_horizons,
        parse_perturbation,
        parse_resolution,
    )
    from p4dsim.perception.select import parse_actor_sources
    from p4dsim.selection import parse_selection
    from p4dsim.source import SourceSpec

    device = check_device(device)
    ks = parse_horizons(horizons)
    actor_sources = parse_actor_sources(actors, "--actors")
    res = parse_resolution(resolution) if resolution else None
    perts = [parse_perturbation(p) for p in perturb or []]
    spec = SourceSpec.parse(source)
    if res is not None:
        spec = spec.at_resolution(*res)
    log = spec.open(Path.cwd(), where=f"--source '{source}'")
    ts = parse_selection(frames, len(log), "--frames", Path.cwd())
    out_dir = out or Path("out") / "eval" / f"{log.dataset}-{log.log_id}".replace("/", "_")
    with progress_bar(quiet) as progress:
        task = progress.add_task("eval future", total=len(ts))
        result = evaluate_future(
            log,
            ts,
            ks,
            resolution=res,
            perturbations=perts,
            device=device,
            on_step=lambda done, total: progress.update(task, completed=done, total=total),
            actor_sources=actor_sources,
        )
    if not result.samples:
        raise P4DSimError(
            f"--frames '{frames}' with --horizons '{horizons}': no frame t has a frame t+k in "
            f"the log ({len(log)} frames)"
        )
    result.meta["source"] = spec.to_string()
    rows = summarize(result)
    json_path = write_json(result, out_dir / "eval.json", rows)
    png_path = plot(rows, out_dir / "eval.png", f"{log.dataset} {log.log_id}: future frames")
    console.print(markdown_table(rows), markup=False, highlight=False, soft_wrap=True)
    console.print("\n" + region_tables(rows), markup=False, highlight=False, soft_wrap=True)
    console.print(f"\nwrote {json_path} and {png_path}", highlight=False)


def _eval_options(device: str, actors: str, resolution: str | None):
    """Checked --device, --actors (actor sources, None = default) and --resolution."""
    from p4dsim.eval.selection import parse_resolution

    if device not in ("auto", "cpu", "cuda"):
        raise P4DSimError(f"--device must be auto, cpu or cuda, got '{device}'")
    sources: list[str | None] = []
    for a in (x.strip() for x in actors.split(",")):
        if a not in ("default", "auto", "labels", "none"):
            raise P4DSimError(
                f"--actors: unknown actor source '{a}' (use default, auto, labels or none)"
            )
        sources.append(None if a == "default" else a)
    return sources, parse_resolution(resolution) if resolution else None


def _eval_report(result, out_dir: Path, title: str, xlabel: str) -> None:
    """Print the whole-image and per-region tables; write eval.json and eval.png."""
    from p4dsim.eval.report import markdown_table, plot, region_tables, summarize, write_json

    rows = summarize(result)
    json_path = write_json(result, out_dir / "eval.json", rows)
    png_path = plot(rows, out_dir / "eval.png", title, xlabel=xlabel)
    console.print(markdown_table(rows), markup=False, highlight=False, soft_wrap=True)
    console.print("\n" + region_tables(rows), markup=False, highlight=False, soft_wrap=True)
    console.print(f"\nwrote {json_path} and {png_path}", highlight=False)


_ACTORS_HELP = (
    "Comma-separated actor sources, one p4dsim method each: default (labels, or "
    "LiDAR-detected vehicles when the frame has none), auto, labels, none."
)


@eval_app.command("stereo")
def eval_stereo(
    source: Annotated[str, typer.Option("--source", help="ADAPTER[:PATH][?key=value&...]")],
    frames: Annotated[
        str, typer.Option("--frames", help="Source frames t: 0:10, 0:200:5 or 1,3,7.")
    ] = "0:10",
    resolution: Annotated[
        str | None, typer.Option("--resolution", help="WxH (default: the source camera's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for eval.json and eval.png.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    actors: Annotated[str, typer.Option("--actors", help=_ACTORS_HELP)] = "default",
) -> None:
    """Stereo protocol: build the scene from the left camera of frame t, render the right
    camera's view of the same instant, compare with the real right image next to the copy and
    lidar_warp baselines; writes eval.json and eval.png."""
    from p4dsim.eval.stereo import evaluate_stereo
    from p4dsim.selection import parse_selection
    from p4dsim.source import SourceSpec

    actor_sources, res = _eval_options(device, actors, resolution)
    spec = SourceSpec.parse(source)
    log = spec.open(Path.cwd(), where=f"--source '{source}'")
    ts = parse_selection(frames, len(log), "--frames", Path.cwd())
    log.stereo_frame(ts[0])  # a log without a stereo camera fails here, before any work
    out_dir = out or Path("out") / "eval" / f"{log.dataset}-{log.log_id}-stereo".replace("/", "_")
    with progress_bar(quiet) as progress:
        task = progress.add_task("eval stereo", total=len(ts))
        result = evaluate_stereo(
            log,
            ts,
            resolution=res,
            device=device,
            on_step=lambda done, total: progress.update(task, completed=done, total=total),
            actor_sources=actor_sources,
        )
    result.meta["source"] = spec.to_string()
    _eval_report(result, out_dir, f"{log.dataset} {log.log_id}: stereo (right from left)", "")


@eval_app.command("consistency")
def eval_consistency(
    source: Annotated[str, typer.Option("--source", help="ADAPTER[:PATH][?key=value&...]")],
    frames: Annotated[
        str, typer.Option("--frames", help="Source frames t: 0:10, 0:200:5 or 1,3,7.")
    ] = "0:10",
    jumps: Annotated[
        str,
        typer.Option(
            "--jumps", help="Lateral camera jumps in metres (positive = left), e.g. 1,-2."
        ),
    ] = "1,2,3,-1,-2,-3",
    resolution: Annotated[
        str | None, typer.Option("--resolution", help="WxH (default: the source camera's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for eval.json and eval.png.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    actors: Annotated[str, typer.Option("--actors", help=_ACTORS_HELP)] = "default",
) -> None:
    """Novel-view depth consistency: render each source frame from the camera moved sideways
    (heading unchanged) and compare its depth with the frame's static LiDAR reprojected into
    that view (AbsRel); writes eval.json and eval.png."""
    from p4dsim.eval.jumps import evaluate_jumps
    from p4dsim.eval.selection import parse_jumps
    from p4dsim.selection import parse_selection
    from p4dsim.source import SourceSpec

    actor_sources, res = _eval_options(device, actors, resolution)
    ds = parse_jumps(jumps)
    spec = SourceSpec.parse(source)
    log = spec.open(Path.cwd(), where=f"--source '{source}'")
    ts = parse_selection(frames, len(log), "--frames", Path.cwd())
    out_dir = out or Path("out") / "eval" / f"{log.dataset}-{log.log_id}-jumps".replace("/", "_")
    with progress_bar(quiet) as progress:
        task = progress.add_task("eval consistency", total=len(ts))
        result = evaluate_jumps(
            log,
            ts,
            ds,
            resolution=res,
            device=device,
            on_step=lambda done, total: progress.update(task, completed=done, total=total),
            actor_sources=actor_sources,
        )
    result.meta["source"] = spec.to_string()
    _eval_report(
        result, out_dir, f"{log.dataset} {log.log_id}: lateral jumps", "lateral jump (m, + left)"
    )
