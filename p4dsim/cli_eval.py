"""``p4dsim eval``: the evaluation protocols (future frames, stereo, lateral jumps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p4dsim.cli_console import console, progress_bar
from p4dsim.errors import P4DSimError
from p4dsim.types import check_device

#: options every ``eval`` protocol shares (one definition: the same flag, help and checks)
SourceOpt = Annotated[str, typer.Option("--source", help="ADAPTER[:PATH][?key=value&...]")]
FramesOpt = Annotated[
    str, typer.Option("--frames", help="Source frames t: 0:10, 0:200:5 or 1,3,7.")
]
ResolutionOpt = Annotated[
    str | None, typer.Option("--resolution", help="WxH (default: the source camera's).")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Folder for eval.json and eval.png.")
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
ActorsOpt = Annotated[
    str,
    typer.Option(
        "--actors",
        help="Comma-separated actor sources, one p4dsim method each: default (labels, or "
        "LiDAR-detected vehicles when the frame has none), auto, labels, none.",
    ),
]

eval_app = typer.Typer(help="Evaluate rendered frames against real ones.", no_args_is_help=True)


@eval_app.command("future")
def eval_future(
    source: SourceOpt,
    frames: FramesOpt = "0:10",
    horizons: Annotated[
        str, typer.Option("--horizons", help="Frame offsets k to predict, e.g. 1,5,10.")
    ] = "1,5,10",
    resolution: ResolutionOpt = None,
    perturb: Annotated[
        list[str] | None,
        typer.Option(
            "--perturb",
            help="Also evaluate a perturbed ego path (toytown only): lateral_offset=M or "
            "speed_scale=F; repeatable.",
        ),
    ] = None,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    actors: ActorsOpt = "default",
) -> None:
    """Future-frame protocol: build the scene at frame t, render the logged views of t+k,
    compare with the real frames (PSNR, SSIM, depth AbsRel/RMSE vs LiDAR, coverage) next to
    the copy and lidar_warp baselines; writes eval.json and eval.png."""

    from p4dsim.eval.future import evaluate_future
    from p4dsim.eval.selection import (
        parse_horizons,
        parse_perturbation,
    )
    from p4dsim.source import SourceSpec

    actor_sources, res = _eval_options(device, actors, resolution)
    ks = parse_horizons(horizons)
    perts = [parse_perturbation(p) for p in perturb or []]
    spec = SourceSpec.parse(source)
    if res is not None:
        spec = spec.at_resolution(*res)
    spec, log, ts = _open_frames(source, frames, spec)
    out_dir = out or _default_out(log)
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
    _eval_report(result, out_dir, f"{log.dataset} {log.log_id}: future frames")


def _eval_options(device: str, actors: str, resolution: str | None):
    """Checked --device, --actors (actor sources, None = default) and --resolution."""
    from p4dsim.eval.selection import parse_resolution
    from p4dsim.perception.select import parse_actor_sources

    check_device(device)
    sources = parse_actor_sources(actors, "--actors")
    return sources, parse_resolution(resolution) if resolution else None


def _open_frames(source: str, frames: str, spec=None):
    """The --source log and its --frames selection: (spec, log, frame ids)."""
    from p4dsim.selection import parse_selection
    from p4dsim.source import SourceSpec

    spec = spec or SourceSpec.parse(source)
    log = spec.open(Path.cwd(), where=f"--source '{source}'")
    return spec, log, parse_selection(frames, len(log), "--frames", Path.cwd())


def _default_out(log, suffix: str = "") -> Path:
    """``out/eval/<dataset>-<log>[-suffix]`` (slashes of log ids replaced)."""
    return Path("out") / "eval" / f"{log.dataset}-{log.log_id}{suffix}".replace("/", "_")


def _eval_report(result, out_dir: Path, title: str, xlabel: str = "horizon (frames)") -> None:
    """Print the whole-image and per-region tables; write eval.json and eval.png."""
    from p4dsim.eval.report import markdown_table, plot, region_tables, summarize, write_json

    rows = summarize(result)
    json_path = write_json(result, out_dir / "eval.json", rows)
    png_path = plot(rows, out_dir / "eval.png", title, xlabel=xlabel)
    console.print(markdown_table(rows), markup=False, highlight=False, soft_wrap=True)
    console.print("\n" + region_tables(rows), markup=False, highlight=False, soft_wrap=True)
    console.print(f"\nwrote {json_path} and {png_path}", highlight=False)


@eval_app.command("stereo")
def eval_stereo(
    source: SourceOpt,
    frames: FramesOpt = "0:10",
    resolution: ResolutionOpt = None,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    actors: ActorsOpt = "default",
) -> None:
    """Stereo protocol: build the scene from the left camera of frame t, render the right
    camera's view of the same instant, compare with the real right image next to the copy and
    lidar_warp baselines; writes eval.json and eval.png."""
    from p4dsim.eval.stereo import evaluate_stereo

    actor_sources, res = _eval_options(device, actors, resolution)
    spec, log, ts = _open_frames(source, frames)
    log.stereo_frame(ts[0])  # a log without a stereo camera fails here, before any work
    out_dir = out or _default_out(log, "-stereo")
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
    source: SourceOpt,
    frames: FramesOpt = "0:10",
    jumps: Annotated[
        str,
        typer.Option(
            "--jumps", help="Lateral camera jumps in metres (positive = left), e.g. 1,-2."
        ),
    ] = "1,2,3,-1,-2,-3",
    resolution: ResolutionOpt = None,
    out: OutOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
    actors: ActorsOpt = "default",
) -> None:
    """Novel-view depth consistency: render each source frame from the camera moved sideways
    (heading unchanged) and compare its depth with the frame's static LiDAR reprojected into
    that view (AbsRel); writes eval.json and eval.png."""
    from p4dsim.eval.jumps import evaluate_jumps
    from p4dsim.eval.selection import parse_jumps

    actor_sources, res = _eval_options(device, actors, resolution)
    ds = parse_jumps(jumps)
    spec, log, ts = _open_frames(source, frames)
    out_dir = out or _default_out(log, "-jumps")
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
