"""The rows of a dataset, next to their schemas: one place that says what a row holds.

Two tables (:data:`TABLES`): ``frames`` (:data:`FRAMES_SCHEMA`, one row per rendered frame,
built by :func:`frame_row`) and ``actors`` (:data:`ACTORS_SCHEMA`, one row per frame and actor
present, built by :func:`actor_rows`). Every writer (a :class:`~p4dsim.io.sinks.Sink`) turns
rows into Arrow with :func:`rows_to_table`. Poses are row-major 4x4 float64 lists in the
scene's world frame; ``K`` a row-major 3x3 list; encodings as :mod:`p4dsim.io.codecs`.
``observed`` is the frame's observed mask as a 1-bit PNG (:func:`~p4dsim.io.codecs.encode_mask`;
nonzero = rendered from observed content) and ``coverage`` its mean.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from p4dsim.io.codecs import depth_buffer, mask_buffer, rgb_buffer
from p4dsim.labels import LabelGeometry, box2d_from_mask, inside_box_mask, label_geometry

if TYPE_CHECKING:
    from p4dsim.metrics import FrameMetrics
    from p4dsim.render.frames import RenderedFrame
    from p4dsim.scenario.model import OutputModel
    from p4dsim.scenario.timeline import Timeline
    from p4dsim.scene.scene4d import Scene4D

#: table names, defined once
FRAMES, ACTORS = "frames", "actors"

_f64list = pa.list_(pa.float64())

FRAMES_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("variant_id", pa.string()),
        ("frame_index", pa.int32()),
        ("timestamp_us", pa.int64()),
        ("t_s", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("K", _f64list),
        ("T_world_camera", _f64list),
        ("T_world_ego", _f64list),
        ("ego_speed", pa.float64()),
        ("rgb", pa.binary()),
        ("rgb_format", pa.string()),
        ("depth", pa.binary()),
        ("depth_format", pa.string()),
        ("alpha_mean", pa.float32()),
        ("coverage", pa.float32()),
        ("observed", pa.binary()),
        ("source_dataset", pa.string()),
        ("source_log", pa.string()),
        ("source_frame", pa.int32()),
        ("collision", pa.bool_()),
        ("min_distance_m", pa.float64()),
        ("ttc_s", pa.float64()),
        ("kinematic_warning", pa.string()),
    ]
)

ACTORS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("variant_id", pa.string()),
        ("frame_index", pa.int32()),
        ("track_id", pa.string()),
        ("label", pa.string()),
        ("source", pa.string()),
        ("confidence", pa.float32()),
        ("center_world", _f64list),
        ("yaw_world", pa.float64()),
        ("size", _f64list),
        ("center_camera", _f64list),
        ("yaw_camera", pa.float64()),
        ("box2d", _f64list),
        ("visible_pixels", pa.int64()),
        ("visible_fraction", pa.float32()),
        ("truncation", pa.float32()),
        ("distance_m", pa.float64()),
        ("speed", pa.float64()),
        ("velocity_world", _f64list),
        ("acceleration_world", _f64list),
    ]
)

#: the tables of a dataset, by name
TABLES = {FRAMES: FRAMES_SCHEMA, ACTORS: ACTORS_SCHEMA}


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)``, column by column: lists of floats
    without nulls become one flat float64 array plus offsets (ten times faster on label rows,
    and the conversion holds the interpreter lock for that much less)."""
    cols = {}
    for f in schema:
        vals = [r.get(f.name) for r in rows]
        if (
            pa.types.is_list(f.type)
            and pa.types.is_float64(f.type.value_type)
            and all(v is not None for v in vals)
        ):
            lens = np.fromiter((len(v) for v in vals), np.int64, len(vals))
            offsets = np.zeros(len(vals) + 1, np.int32)
            np.cumsum(lens, out=offsets[1:])
            flat = np.fromiter((x for v in vals for x in v), np.float64, int(offsets[-1]))
            cols[f.name] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat), type=f.type)
        elif pa.types.is_binary(f.type) and all(isinstance(v, bytes | memoryview) for v in vals):
            cols[f.name] = _binary_array(vals)
        else:
            cols[f.name] = pa.array(vals, type=f.type)
    return pa.Table.from_pydict(cols, schema=schema)


def _binary_array(vals: list[bytes | memoryview]) -> pa.Array:
    """A binary array of ``vals`` copied into one buffer from Arrow's memory pool (which
    reuses memory, where converting the objects one by one faults in fresh pages: encoded
    images make these columns hundreds of megabytes per shard)."""
    offsets = np.zeros(len(vals) + 1, np.int64)
    np.cumsum(np.fromiter((len(v) for v in vals), np.int64, len(vals)), out=offsets[1:])
    if offsets[-1] >= 2**31:  # beyond 32-bit offsets: let pyarrow say so
        return pa.array(vals, type=pa.binary())
    data = pa.allocate_buffer(int(offsets[-1]))
    dst = np.frombuffer(data, np.uint8)
    for v, a, b in zip(vals, offsets[:-1], offsets[1:], strict=True):
        dst[a:b] = np.frombuffer(v, np.uint8)
    offs = pa.py_buffer(offsets.astype(np.int32))
    return pa.Array.from_buffers(pa.binary(), len(vals), [None, offs, data])


def _flat(T: np.ndarray) -> list[float]:
    return np.asarray(T, dtype=np.float64).reshape(-1).tolist()


def actor_rows(
    scene: Scene4D,
    timeline: Timeline,
    fr: RenderedFrame,
    base: dict[str, Any],
    alone: np.ndarray | None = None,
    geom: LabelGeometry | None = None,
) -> list[dict[str, Any]]:
    """The ``actors`` table rows (:data:`ACTORS_SCHEMA`) of every actor present at this time
    step. ``alone`` [A]: pixels each actor
    covers when rendered alone (:func:`p4dsim.labels.alone_pixels`), for visible_fraction;
    ``geom``: the timeline's :func:`~p4dsim.labels.label_geometry` covering this step
    (computed for this step alone when not given)."""
    if geom is None:
        geom = label_geometry(scene, timeline, [fr.index])
    r = geom.row_of(fr.index)
    cam = timeline.camera
    # one conversion to Python numbers per frame (not one per value)
    c_world, yaw_world = geom.center_world[r].tolist(), geom.yaw_world[r].tolist()
    c_cam, yaw_cam = geom.center_camera[r].tolist(), geom.yaw_camera[r].tolist()
    dist, speed = geom.distance_m[r].tolist(), geom.speed[r].tolist()
    truncs = geom.truncation[r].tolist()
    vel = geom.velocity_world[r].tolist() if geom.velocity_world is not None else None
    acc = geom.acceleration_world[r].tolist() if geom.acceleration_world is not None else None
    alone_n = alone.tolist() if alone is not None else None
    gpu = fr.actor_pixels is not None and fr.actor_boxes is not None  # from the GPU renderer
    if gpu:
        pixels = fr.actor_pixels.tolist()
        boxes = np.asarray(fr.actor_boxes, dtype=np.float64).tolist()
    rows = []
    for i, actor in enumerate(scene.actors):
        if not geom.present[r, i]:
            continue
        if gpu:
            n_vis = int(pixels[i])
            box2d = boxes[i] if n_vis else None
        else:
            # The actor's mask, limited to rendered surface within its 3D box.
            T = timeline.actor_poses[actor.track_id][fr.index]
            mask = (fr.actor_masks[..., i] > 0.5) & inside_box_mask(
                fr.depth, cam.K, timeline.T_world_camera[fr.index], T, actor.size
            )
            n_vis = int(mask.sum())
            box2d = box2d_from_mask(mask) if n_vis else None
        # Every visible pixel is covered by the actor: the alone count is at least it.
        n_alone = max(int(alone_n[i]), n_vis) if alone_n is not None else 0
        trunc = truncs[i]
        rows.append(
            {
                **base,
                "track_id": actor.track_id,
                "label": actor.label,
                "source": actor.source,
                "confidence": float(actor.confidence),
                "center_world": c_world[i],
                "yaw_world": yaw_world[i],
                "size": np.asarray(actor.size, dtype=np.float64).tolist(),
                "center_camera": c_cam[i],
                "yaw_camera": yaw_cam[i],
                "box2d": box2d,
                "visible_pixels": n_vis,
                "visible_fraction": n_vis / n_alone if n_alone > 0 else None,
                "truncation": None if math.isnan(trunc) else trunc,
                "distance_m": dist[i],
                "speed": speed[i],
                "velocity_world": vel[i] if vel is not None else None,
                "acceleration_world": acc[i] if acc is not None else None,
            }
        )
    return rows


def frame_row(
    scene: Scene4D,
    timeline: Timeline,
    fr: RenderedFrame,
    base: dict[str, Any],
    output: OutputModel,
    metric: FrameMetrics | None = None,
) -> dict[str, Any]:
    """The ``frames`` table row of one rendered frame (:data:`FRAMES_SCHEMA`);
    ``metric``: this step's safety metrics (default: the timeline's)."""
    k, n = fr.index, len(timeline.times)
    T_ego = timeline.T_world_ego[k]
    if timeline.ego_velocity is not None:
        v = timeline.ego_velocity[k]
    elif k + 1 < n:
        v = (timeline.T_world_ego[k + 1, :3, 3] - T_ego[:3, 3]) / (timeline.times[k + 1] - fr.t)
    elif k > 0:
        v = (T_ego[:3, 3] - timeline.T_world_ego[k - 1, :3, 3]) / (fr.t - timeline.times[k - 1])
    else:
        v = np.zeros(3)
    m = metric
    if m is None and timeline.metrics is not None:
        m = timeline.metrics[k]
    kin = timeline.kinematics
    cam = timeline.camera
    return {
        **base,
        "timestamp_us": int(scene.timestamp_us + round(fr.t * 1e6)),
        "t_s": fr.t,
        "width": cam.width,
        "height": cam.height,
        "K": _flat(cam.K),
        "T_world_camera": _flat(timeline.T_world_camera[k]),
        "T_world_ego": _flat(T_ego),
        "ego_speed": math.hypot(float(v[0]), float(v[1])),
        "rgb": fr.encoded_rgb[1]
        if fr.encoded_rgb is not None and fr.encoded_rgb[0] == output.rgb
        else rgb_buffer(fr.rgb, output.rgb, output.jpeg_quality),
        "rgb_format": output.rgb,
        "depth": depth_buffer(fr.depth, output.depth),
        "depth_format": output.depth,
        "alpha_mean": fr.alpha_mean if fr.alpha is None else float(fr.alpha.mean()),
        "coverage": fr.coverage,
        "observed": mask_buffer(fr.observed) if fr.observed is not None else None,
        "source_dataset": scene.source.dataset,
        "source_log": scene.source.log_id,
        "source_frame": scene.source.frame_index,
        "collision": m.collision if m is not None else None,
        "min_distance_m": m.min_distance_m if m is not None else None,
        "ttc_s": m.ttc_s if m is not None else None,
        "kinematic_warning": kin.warning[k] if kin is not None else None,
    }
