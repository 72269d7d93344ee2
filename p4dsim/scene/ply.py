"""Saving and loading a :class:`~p4dsim.scene.scene4d.Scene4D`.

``scene.ply`` is a binary little-endian 3DGS PLY that common Gaussian-splatting viewers open:
x, y, z, nx, ny, nz, f_dc_0..2 (colour as degree-0 spherical harmonics), opacity (logit),
scale_0..2 (log), rot_0..3 (w, x, y, z) for every static Gaussian and every actor Gaussian
placed at its pose at t = 0 (scene world frame). Extra properties carry what p4dsim needs to
read the scene back bit-exactly: ``p4_owner`` (-1 static, -2 sky, else the actor's index),
``p4_confidence``, and the stored float32 values themselves (``p4_x..``: position and
rotation in the owner's frame, ``p4_r..``: colour, ``p4_opacity``, ``p4_scale_*``), since
the logit/log/SH encodings do not round-trip exactly in float32.

``scene.ply.json`` is the sidecar: actors (track id, label, size, source, confidence,
motion), camera, ``T_log_scene``, source, timestamp, ground plane, sky depth, boxes and ego
velocity, and provenance.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from p4dsim.errors import P4DSimError
from p4dsim.scene.gaussians import GaussianSet
from p4dsim.scene.motion import RigidMotion, TrackMotion
from p4dsim.scene.scene4d import Actor, Scene4D
from p4dsim.types import Box3D, Camera, SourceInfo

SH_C0 = 0.28209479177387814
_STD = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"]
_STD += ["scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
_EXTRA = ["p4_confidence", "p4_x", "p4_y", "p4_z", "p4_q0", "p4_q1", "p4_q2", "p4_q3"]
_EXTRA += ["p4_r", "p4_g", "p4_b", "p4_opacity", "p4_scale_0", "p4_scale_1", "p4_scale_2"]
_FLOATS = _STD + _EXTRA


def sidecar_path(path: Path) -> Path:
    return Path(str(path) + ".json")


def _motion_to_json(m) -> dict:
    if isinstance(m, RigidMotion):
        d = {f.name: getattr(m, f.name) for f in dataclasses.fields(m)}
        d["T0"] = np.asarray(m.T0).tolist()
        return {"type": "rigid", **d}
    if isinstance(m, TrackMotion):
        return {
            "type": "track",
            **{f.name: np.asarray(getattr(m, f.name)).tolist() for f in dataclasses.fields(m)},
        }
    raise P4DSimError(f"cannot save motion of type {type(m).__name__}")


def _motion_from_json(d: dict):
    d = dict(d)
    kind = d.pop("type")
    if kind == "rigid":
        d["T0"] = np.asarray(d["T0"], dtype=np.float64)
        return RigidMotion(**d)
    return TrackMotion(**{k: np.asarray(v, dtype=np.float64) for k, v in d.items()})


def _box_to_json(b: Box3D) -> dict:
    out = {}
    for f in dataclasses.fields(b):
        v = getattr(b, f.name)
        out[f.name] = np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
    return out


def save_scene(scene: Scene4D, path: str | Path, provenance: dict | None = None) -> Path:
    """Write ``path`` (PLY) and ``path + '.json'`` (sidecar); returns the PLY path."""
    path = Path(path)
    parts = [(scene.static, np.where(scene.sky_mask(), -2, -1).astype(np.int32), None)]
    for i, a in enumerate(scene.actors):
        parts.append((a.gaussians, np.full(len(a.gaussians), i, np.int32), a.motion.pose(0.0)))
    rows = []
    for g, owner, T in parts:
        world = g if T is None else g.transformed(T)
        n = len(g)
        nrm = np.zeros((n, 3), np.float32)
        op = np.clip(g.opacities.astype(np.float64), 1e-6, 1 - 1e-6)
        cols = [
            world.means,
            nrm,
            (g.colors - 0.5) / SH_C0,
            np.log(op / (1 - op))[:, None],
            np.log(np.maximum(g.scales, 1e-30)),
            world.quats,
            g.confidence[:, None],
            g.means,
            g.quats,
            g.colors,
            g.opacities[:, None],
            g.scales,
        ]
        widths = (3, 3, 3, 1, 3, 4, 1, 3, 4, 3, 1, 3)
        f = np.concatenate(
            [np.asarray(c, np.float32).reshape(n, w) for c, w in zip(cols, widths, strict=True)],
            axis=1,
        )
        rows.append((f, owner))
    floats = np.concatenate([r[0] for r in rows]) if rows else np.zeros((0, len(_FLOATS)))
    owners = np.concatenate([r[1] for r in rows])
    dtype = np.dtype([(name, "<f4") for name in _FLOATS] + [("p4_owner", "<i4")])
    rec = np.empty(len(floats), dtype=dtype)
    for k, name in enumerate(_FLOATS):
        rec[name] = floats[:, k]
    rec["p4_owner"] = owners
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(rec)}"]
    header += [f"property float {name}" for name in _FLOATS] + ["property int p4_owner"]
    header += ["end_header"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(rec.tobytes())
    tmp.replace(path)
    from p4dsim import __version__

    cam = scene.camera
    side = {
        "format": "p4dsim-scene/1",
        "p4dsim_version": __version__,
        "camera": {
            "K": np.asarray(cam.K).tolist(),
            "width": cam.width,
            "height": cam.height,
            "T_ego_camera": np.asarray(cam.T_ego_camera).tolist(),
        },
        "T_log_scene": np.asarray(scene.T_log_scene).tolist(),
        "source": dataclasses.asdict(scene.source),
        "timestamp_us": int(scene.timestamp_us),
        "ground": None
        if scene.ground is None
        else {"normal": np.asarray(scene.ground[0]).tolist(), "d": float(scene.ground[1])},
        "sky_depth": float(scene.sky_depth),
        "actors": [
            {
                "index": i,
                "track_id": a.track_id,
                "label": a.label,
                "size": np.asarray(a.size).tolist(),
                "source": a.source,
                "confidence": float(a.confidence),
                "motion": _motion_to_json(a.motion),
                "gaussians": len(a.gaussians),
            }
            for i, a in enumerate(scene.actors)
        ],
        "boxes": [_box_to_json(b) for b in scene.boxes],
        "ego_velocity": np.asarray(
            scene.ego_velocity if scene.ego_velocity is not None else np.zeros(3)
        ).tolist(),
        "provenance": provenance or {},
    }
    tmp = sidecar_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(side, indent=1))
    tmp.replace(sidecar_path(path))
    return path


def _read_ply(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        if fh.readline().strip() != b"ply":
            raise P4DSimError(f"{path}: not a PLY file (first line is not 'ply')")
        props: list[tuple[str, str]] = []
        n = None
        fmt = None
        while True:
            line = fh.readline()
            if not line:
                raise P4DSimError(f"{path}: PLY header has no 'end_header'")
            w = line.decode("ascii", "replace").split()
            if not w:
                continue
            if w[0] == "format":
                fmt = w[1]
            elif w[0] == "element":
                if w[1] != "vertex":
                    raise P4DSimError(f"{path}: only a 'vertex' element is supported")
                n = int(w[2])
            elif w[0] == "property":
                types = {"float": "<f4", "float32": "<f4", "int": "<i4", "int32": "<i4"}
                types |= {"double": "<f8", "uchar": "u1", "uint8": "u1"}
                if w[1] not in types:
                    raise P4DSimError(f"{path}: unsupported PLY property type '{w[1]}'")
                props.append((w[2], types[w[1]]))
            elif w[0] == "end_header":
                break
        if fmt != "binary_little_endian" or n is None:
            raise P4DSimError(f"{path}: expected a binary_little_endian PLY with vertices")
        dtype = np.dtype(props)
        data = np.frombuffer(fh.read(n * dtype.itemsize), dtype=dtype, count=n)
    return data


def load_scene(path: str | Path) -> Scene4D:
    """Read a scene written by :func:`save_scene` (PLY + sidecar) back, bit-exactly."""
    path = Path(path)
    side_p = sidecar_path(path)
    if not path.exists():
        raise P4DSimError(f"{path}: no such scene file")
    if not side_p.exists():
        raise P4DSimError(f"{path}: its sidecar {side_p.name} is missing (written by p4dsim build)")
    side = json.loads(side_p.read_text())
    rec = _read_ply(path)
    names = rec.dtype.names or ()
    if "p4_owner" not in names:
        raise P4DSimError(f"{path}: not a p4dsim scene PLY (no 'p4_owner' property)")

    def col(*keys):
        return np.stack([rec[k] for k in keys], axis=1)

    def subset(mask) -> GaussianSet:
        return GaussianSet(
            means=col("p4_x", "p4_y", "p4_z")[mask],
            quats=col("p4_q0", "p4_q1", "p4_q2", "p4_q3")[mask],
            scales=col("p4_scale_0", "p4_scale_1", "p4_scale_2")[mask],
            opacities=rec["p4_opacity"][mask],
            colors=col("p4_r", "p4_g", "p4_b")[mask],
            confidence=rec["p4_confidence"][mask],
        )

    owner = rec["p4_owner"]
    static_mask = owner < 0
    actors = []
    for a in side["actors"]:
        actors.append(
            Actor(
                track_id=a["track_id"],
                label=a["label"],
                size=np.asarray(a["size"], dtype=np.float64),
                gaussians=subset(owner == a["index"]),
                motion=_motion_from_json(a["motion"]),
                source=a["source"],
                confidence=a["confidence"],
            )
        )
    c = side["camera"]
    cam = Camera(
        K=np.asarray(c["K"], dtype=np.float64),
        width=int(c["width"]),
        height=int(c["height"]),
        T_ego_camera=np.asarray(c["T_ego_camera"], dtype=np.float64),
    )
    boxes = []
    for b in side.get("boxes", []):
        b = {
            k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v) for k, v in b.items()
        }
        boxes.append(Box3D(**b))
    g = side["ground"]
    return Scene4D(
        static=subset(static_mask),
        actors=actors,
        camera=cam,
        T_log_scene=np.asarray(side["T_log_scene"], dtype=np.float64),
        source=SourceInfo(**side["source"]),
        timestamp_us=int(side["timestamp_us"]),
        ground=None if g is None else (np.asarray(g["normal"], dtype=np.float64), float(g["d"])),
        sky_depth=float(side["sky_depth"]),
        is_sky=owner[static_mask] == -2,
        boxes=boxes,
        ego_velocity=np.asarray(side["ego_velocity"]),
    )
