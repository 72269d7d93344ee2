"""Where a GPU replay batch spends its time: each stage of
:meth:`p4dsim.render.gsplat.GsplatRenderer.render_steps` timed alone with CUDA events, the
rasterizer's cost against its channel count, and the host-side encoders per frame.

Needs a CUDA GPU::

    python benchmarks/bench_gpu_stages.py [--width 1242 --height 375 --batch 32 --repeats 10 --profile]

Stages (ms per frame, batch of ``--batch`` time steps of the ``p4dsim bench`` scenario):
raster_dense / raster_packed (the renderer's two projection modes), render_steps_* (the whole
batch), finish (depth rule, last fill, observed mask), pack (mask
bits), visible (label statistics), alone (actors rendered alone), host (copy back);
``raster_chN``: the same Gaussians and cameras rasterized with N-1 feature channels plus depth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _timed(fn, repeats: int) -> float:
    """Mean ms per call of ``fn`` on the GPU (one warm-up call first)."""
    import torch

    fn()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(repeats):
        fn()
    e1.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1) / repeats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=1242)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--profile", action="store_true", help="also list the rasterizer's kernels")
    args = ap.parse_args(argv)

    import torch

    from p4dsim.bench import _load_scene, _scenario
    from p4dsim.geometry import inv_pose
    from p4dsim.io.codecs import depth_buffer, mask_buffer, rgb_buffer
    from p4dsim.render.fill import fill_empty_torch
    from p4dsim.render.frames import CH_CONFIDENCE, CH_SKY, scene_extra
    from p4dsim.render.gsplat import GsplatRenderer
    from p4dsim.render.gsplat.labels import alone_pixels, visible_stats
    from p4dsim.render.gsplat.rasterizer import rasterize, to_host
    from p4dsim.render.gsplat.renderer import finish_frames_torch, pack_bits_torch
    from p4dsim.scenario.timeline import make_timeline

    scene, log, label = _load_scene(None, args.width, args.height)
    B = args.batch
    sc = _scenario(B, 10.0, "jpeg", "float16")
    tl = make_timeline(sc, scene, log, "bench")
    r = GsplatRenderer()
    st = r.upload_scene(scene, scene_extra(scene))
    A = len(scene.actors)
    poses, present = tl.pose_array([a.track_id for a in scene.actors], slice(0, B))
    cam = tl.camera
    T_wc = tl.T_world_camera[:B]
    views = inv_pose(T_wc)
    ks = list(range(B))
    res: dict[str, float] = {}
    rep = args.repeats

    def raster():
        return r.render_tensors(st, views, cam.K, cam.width, cam.height, poses, present)

    for packed in (False, True):
        r.packed = packed
        name = "packed" if packed else "dense"
        res[f"raster_{name}"] = _timed(raster, rep)
        res[f"render_steps_{name}"] = _timed(lambda: r.render_steps(scene, tl, ks, sc.output), rep)
    r.packed = False
    out = raster()
    ex = out.extra

    def finish():
        return finish_frames_torch(
            out.rgb, out.depth, out.alpha, ex[..., CH_SKY], ex[..., CH_CONFIDENCE]
        )

    res["finish"] = _timed(finish, rep)
    res["fill_torch_x2"] = 2 * _timed(lambda: fill_empty_torch(out.rgb, out.depth, out.alpha), rep)
    rgb8, depth, observed, cov = finish()
    res["pack"] = _timed(lambda: pack_bits_torch(observed), rep)
    T_ac = inv_pose(poses) @ T_wc[:, None]
    res["visible"] = _timed(lambda: visible_stats(out.actors, depth, cam.K, T_ac, st), rep)
    res["alone"] = _timed(
        lambda: alone_pixels(r.settings, st, views, cam, poses, present, T_ac), rep
    )
    bits = pack_bits_torch(observed)
    res["host"] = _timed(lambda: to_host(rgb8.flip(-1), depth.half(), bits), rep)

    # rasterization cost against channel count, same Gaussians and cameras
    N = int(st.means.shape[0])
    vm = torch.as_tensor(views, dtype=torch.float32, device=r.device)[:, None]
    Ks = torch.as_tensor(cam.K, dtype=torch.float32, device=r.device).expand(B, 1, 3, 3)
    static_means = st.means.expand(B, N, 3)
    for ch in (4, 5, 8, 9, 16, 17):
        feats = st.feats[:, :1].expand(N, ch - 1).contiguous()

        def go(feats=feats, ch=ch):
            return rasterize(
                r.settings,
                static_means,
                st.quats.expand(B, N, 4),
                st.scales.expand(B, N, 3),
                st.opacities.expand(B, N),
                feats.expand(B, N, ch - 1),
                vm,
                Ks.contiguous(),
                cam.width,
                cam.height,
                None,
            )

        res[f"raster_ch{ch}"] = _timed(go, rep)

    per_frame = {k: v / B for k, v in res.items()}
    if args.profile:  # the CUDA kernels of three rasterizations, by GPU time
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                raster()
            torch.cuda.synchronize()
        table = prof.key_averages().table(
            sort_by="cuda_time_total", row_limit=14, max_name_column_width=60
        )
        print(table)
    # host encoders, one frame, one thread
    h_rgb, h_depth = to_host(rgb8, depth)
    obs = observed[0].cpu().numpy()
    enc = {}
    for name, fn in (
        ("jpeg95", lambda: rgb_buffer(h_rgb[0], "jpeg", 95)),
        ("depth_f16", lambda: depth_buffer(h_depth[0], "float16")),
        ("mask_png", lambda: mask_buffer(obs)),
    ):
        fn()
        t0 = time.perf_counter()
        for _ in range(20):
            fn()
        enc[name] = (time.perf_counter() - t0) / 20 * 1e3
    channels = int(st.feats.shape[1]) + 1
    print(f"scene: {label}, {N} Gaussians, {A} actors, {channels} raster channels, batch {B}")
    print("| stage | ms per frame (GPU) |\n|---|---|")
    for k, v in per_frame.items():
        print(f"| {k} | {v:.3f} |")
    print("| host encoder | ms per frame (one thread) |\n|---|---|")
    for k, v in enc.items():
        print(f"| {k} | {v:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"gpu_ms_per_frame": per_frame, "host_ms": enc}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
