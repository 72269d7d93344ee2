"""``p4dsim bench``: raw render rate against end-to-end replay rate, measured in one run.

* raw render: the renderer alone on the replay's time steps — on CUDA, gsplat on batches of
  ``batch_size`` steps with actors posed on the GPU, synchronised, results left on the GPU; on
  the CPU, composing the posed scene and rasterizing it, one step at a time;
* end to end: the replay pipeline (:func:`p4dsim.replay.iter_rows`: batched render, labels,
  RGB/depth encoding in a thread pool) into a background Parquet writer, until the dataset is
  committed on disk.

Both exclude building the scene and compiling kernels (a warm-up batch runs first).
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from p4dsim.errors import ConfigError


@dataclass
class BenchResult:
    """One bench run. Rates in frames/s; memory in MiB (peak RSS of the process; GPU peak
    allocated by torch, None on the CPU)."""

    device: str
    renderer: str
    scene: str
    gaussians: int
    actors: int
    width: int
    height: int
    frames: int
    batch_size: int
    rgb_format: str
    depth_format: str
    raw_fps: float
    e2e_fps: float
    peak_rss_mib: float
    gpu_peak_mib: float | None

    @property
    def ratio(self) -> float:
        return self.e2e_fps / self.raw_fps if self.raw_fps > 0 else 0.0

    @property
    def raw_ms_per_frame(self) -> float:
        return 1000.0 / self.raw_fps if self.raw_fps > 0 else float("inf")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _load_scene(scene_path: Path | None, width: int, height: int):
    """(scene, log, scene label). Toytown at width×height unless a PLY scene is given."""
    from p4dsim.opening import open_scene

    if scene_path is not None:
        from p4dsim.scene.ply import load_scene

        scene = load_scene(scene_path)
        if (scene.camera.width, scene.camera.height) != (width, height):
            scene.camera = scene.camera.with_resolution(width, height)
        return scene, None, str(scene_path)
    opened = open_scene(f"toytown:?width={width}&height={height}", 0, where="bench")
    return opened.scene, opened.log, f"toytown {width}x{height}"


def _scenario(frames: int, fps: float, rgb: str, depth: str):
    from p4dsim.scenario.model import Scenario

    return Scenario.model_validate(
        {
            "name": "bench",
            "source": {"adapter": "toytown"},
            "duration_s": (frames - 0.5) / fps,
            "fps": fps,
            "ego": {
                "base": "constant_velocity",
                "perturbations": [{"type": "lateral_offset", "offset_m": 1.0, "ramp_s": 2.0}],
            },
            "output": {"rgb": rgb, "depth": depth},
        }
    )


def _raw_rate(scene, timeline, renderer, batch_size: int, repeats: int = 1) -> float:
    """Frames/s of the renderer alone over all time steps of ``timeline``."""
    from p4dsim.geometry import inv_pose
    from p4dsim.render.gsplat import GsplatRenderer

    n = len(timeline.times)
    cam = timeline.camera
    if isinstance(renderer, GsplatRenderer):  # the GPU's tensor path: results stay on the GPU
        import torch

        from p4dsim.render.frames import scene_extra

        st = renderer.upload_scene(scene, scene_extra(scene))
        poses, present = timeline.pose_array([a.track_id for a in scene.actors], slice(None))
        views = inv_pose(timeline.T_world_camera)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            for s in range(0, n, batch_size):
                sl = slice(s, min(s + batch_size, n))
                renderer.render_tensors(
                    st, views[sl], cam.K, cam.width, cam.height, poses[sl], present[sl]
                )
        torch.cuda.synchronize()
        return repeats * n / (time.perf_counter() - t0)
    total = 0.0
    for k in range(n):
        g, _ = scene.compose({tid: P[k] for tid, P in timeline.actor_poses.items()})
        view = inv_pose(timeline.T_world_camera[k])[None]
        t0 = time.perf_counter()
        renderer.render(g, view, cam.K[None], cam.width, cam.height)
        total += time.perf_counter() - t0
    return n / total


#: default replay lengths: on a GPU long enough that set-up (timeline, threads, the last
#: shard's write) is a small part, as in the long replays users run; short on the CPU
DEFAULT_FRAMES = {"gsplat": 2048, "cpu": 64}


def run_bench(
    scene_path: Path | None = None,
    frames: int | None = None,
    device: str = "auto",
    width: int = 1242,
    height: int = 375,
    rgb: str = "jpeg",
    depth: str = "float16",
    raw_frames: int | None = None,
) -> BenchResult:
    """Measure raw and end-to-end rates on one scene; see the module docstring.

    raw_frames: time steps for the raw rate (default ``frames``; on the CPU a smaller number
    keeps the run short)."""
    from p4dsim.io.dataset import DatasetWriter
    from p4dsim.pipeline import BackgroundWriter
    from p4dsim.render import get_renderer
    from p4dsim.replay import iter_rows
    from p4dsim.scenario.timeline import make_timeline

    if rgb not in ("jpeg", "png") or depth not in ("float16", "png16"):
        raise ConfigError("--rgb must be jpeg or png and --depth float16 or png16")
    if frames is not None and frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {frames}")
    renderer = get_renderer(device)  # type: ignore[arg-type]
    frames = frames or DEFAULT_FRAMES.get(renderer.name, 64)
    scene, log, label = _load_scene(scene_path, width, height)
    bs = renderer.batch_size
    sc = _scenario(frames, 10.0, rgb, depth)
    timeline = make_timeline(sc, scene, log, "bench")
    n = len(timeline.times)

    # warm-up: kernels compiled, scene uploaded
    renderer.render_steps(scene, timeline, list(range(min(bs, n))), sc.output)

    raw_tl = timeline
    if raw_frames is not None and raw_frames < n:
        sub = make_timeline(_scenario(raw_frames, 10.0, rgb, depth), scene, log, "bench")
        raw_tl = sub
    raw_fps = _raw_rate(scene, raw_tl, renderer, bs)

    with tempfile.TemporaryDirectory(prefix="p4dsim-bench-") as tmp:
        writer = BackgroundWriter(DatasetWriter(Path(tmp) / "ds", rows_per_shard=64))
        t0 = time.perf_counter()
        done = 0
        for row, actors in iter_rows(scene, log, sc, renderer, "bench"):
            writer.add(row, actors)
            done += 1
        writer.commit({"bench": True})
        e2e_fps = done / (time.perf_counter() - t0)

    gpu_peak = None
    if renderer.name == "gsplat":
        import torch

        gpu_peak = torch.cuda.max_memory_allocated() / 2**20
    return BenchResult(
        device=renderer.device_name,
        renderer=renderer.name,
        scene=label,
        gaussians=scene.num_gaussians(),
        actors=len(scene.actors),
        width=timeline.camera.width,
        height=timeline.camera.height,
        frames=n,
        batch_size=bs,
        rgb_format=rgb,
        depth_format=depth,
        raw_fps=raw_fps,
        e2e_fps=e2e_fps,
        peak_rss_mib=_peak_rss_mib(),
        gpu_peak_mib=gpu_peak,
    )
