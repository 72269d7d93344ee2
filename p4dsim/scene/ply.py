"""Saving and loading a :class:`~p4dsim.scene.scene4d.Scene4D`.

``scene.ply`` is a binary little-endian 3DGS PLY with exactly the standard properties, in the
reference implementation's order, so that the reference loader (which asserts 3·15 = 45
``f_rest_*`` at SH degree 3) and fixed-layout viewers (SIBR, 62 floats a vertex) open it:
x, y, z, nx, ny, nz (zero), f_dc_0..2 (colour as degree-0 spherical harmonics),
f_rest_0..44 (zero: view-independent colour), opacity (logit), scale_0..2 (log),
rot_0..3 (w, x, y, z), for every static Gaussian and every actor Gaussian placed at its pose
at t = 0 (scene world frame). Every value is finite.

``scene.ply.json`` is the sidecar: actors (track id, label, size, source, confidence,
motion), camera, ``T_log_scene``, source, timestamp, ground plane, sky depth, boxes and ego
velocity, provenance, and ``gaussians``: what p4dsim needs to read the scene back
bit-exactly, per PLY vertex in PLY order (owner: -1 static, -2 sky, else the actor's index;
confidence; and the stored float32 values, since the logit/log/SH encodings do not
round-trip exactly in float32: position and rotation in the owner's frame, colour, opacity,
scale), each a zlib-compressed, base64-encoded little-endian array.
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
SH_REST = 45  #: f_rest_* properties of SH degree 3 (3 colours × 15 coefficients)
#: the standard 3DGS vertex properties, in the reference implementation's order
STANDARD_PROPERTIES = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
STANDARD_PROPERTIES += [f"f_rest_{i}" for i in range(SH_REST)]
STANDARD_PROPERTIES += ["opacity", "scale_0", "scale_1", "scale_2"]
STANDARD_PROPERTIES += ["rot_0", "rot_1", "rot_2", "rot_3"]
#: per-Gaussian values kept in the sidecar (name, dtype, columns)
_EXTRA = [
    ("owner", "<i4", 1),
    ("confidence", "<f4", 1),
    ("means", "<f4", 3),
    ("quats", "<f4", 4),
    ("colors", "<f4", 3),
    ("opacities", "<f4", 1),
    ("scales", "<f4", 3),
]


def _encode_array(a: np.ndarray) -> str:
    import base64
    import zlib

    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 6)).decode("ascii")


def _decode_array(text: str, dtype: str, cols: int, n: int, where: str) -> np.ndarray:
    import base64
    import binascii
    import zlib

    try:
        raw = zlib.decompress(base64.b64decode(text))
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise P4DSimError(f"{where}: corrupt per-Gaussian data ({exc})") from None
    a = np.frombuffer(raw, dtype=dtype)
    if a.size != n * cols:
        raise P4DSimError(f"{where}: {a.size} values where {n}×{cols} were expected")
    return a.reshape(n, cols) if cols > 1 else a


def sidecar_path(path: Path) -> Path:
    return Path(str(path) + ".json")


def check_scene_path(path: Path) -> None:
    """A clear error, before anything is built, for a scene path that cannot be written."""
    from p4dsim.io.outdir import check_out_path

    path = Path(path)
    if str(path).strip() in ("", "."):
        raise P4DSimError("--out: give the path of the scene .ply file to write")
    if path.is_dir():
        raise P4DSimError(f"--out: '{path}' is a folder; give the path of a .ply file to write")
    check_out_path(path.parent, "--out", dataset=False)


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


#: Box3D fields written only when set (older sidecars lack them; upright boxes have none)
_OPTIONAL_BOX_FIELDS = ("rotation",)


def _box_to_json(b: Box3D) -> dict:
    out = {}
    for f in dataclasses.fields(b):
        v = getattr(b, f.name)
        if v is None and f.name in _OPTIONAL_BOX_FIELDS:
            continue
        out[f.name] = np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
    return out


def save_scene(scene: Scene4D, path: str | Path, provenance: dict | None = None) -> Path:
    """Write ``path`` (PLY) and ``path + '.json'`` (sidecar); returns the PLY path."""
    path = Path(path)
    check_scene_path(path)
    parts = [(scene.static, np.where(scene.sky_mask(), -2, -1).astype(np.int32), None)]
    for i, a in enumerate(scene.actors):
        parts.append((a.gaussians, np.full(len(a.gaussians), i, np.int32), a.motion.pose(0.0)))
    std, extra = [], {name: [] for name, _, _ in _EXTRA}
    for g, owner, T in parts:
        world = g if T is None else g.transformed(T)
        n = len(g)
        op = np.clip(g.opacities.astype(np.float64), 1e-6, 1 - 1e-6)
        cols = [
            (world.means, 3),
            (np.zeros((n, 3)), 3),
            ((g.colors - 0.5) / SH_C0, 3),
            (np.zeros((n, SH_REST)), SH_REST),
            (np.log(op / (1 - op)), 1),
            (np.log(np.maximum(g.scales, 1e-30)), 3),
            (world.quats, 4),
        ]
        std.append(np.concatenate([np.asarray(c, np.float32).reshape(n, w) for c, w in cols], 1))
        for name, dtype, _ in _EXTRA:
            v = owner if name == "owner" else getattr(g, name)
            extra[name].append(np.asarray(v, dtype))
    floats = np.concatenate(std) if std else np.zeros((0, len(STANDARD_PROPERTIES)), np.float32)
    bad = ~np.isfinite(floats).all(axis=1)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(
            f"{path}: {int(bad.sum())} Gaussians have non-finite values (first: vertex {k}); "
            "the scene builder produced them, which is a bug"
        )
    rec = np.ascontiguousarray(floats.astype("<f4"))
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(rec)}"]
    header += [f"property float {name}" for name in STANDARD_PROPERTIES] + ["end_header"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(rec.tobytes())
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
        "gaussians": {
            "count": len(rec),
            "encoding": "zlib+base64, little-endian, row-major [count, columns]",
            **{
                name: {
                    "dtype": dtype,
                    "columns": c,
                    "data": _encode_array(np.concatenate(extra[name])),
                }
                for name, dtype, c in _EXTRA
            },
        },
    }
    side_tmp = sidecar_path(path).with_name(f".{sidecar_path(path).name}.tmp")
    try:
        side_tmp.write_text(json.dumps(side, indent=1))
        # PLY and sidecar together or not at all: both renamed only once both are written.
        tmp.replace(path)
        side_tmp.replace(sidecar_path(path))
    finally:
        tmp.unlink(missing_ok=True)
        side_tmp.unlink(missing_ok=True)
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
        body = fh.read(n * dtype.itemsize)
        if len(body) < n * dtype.itemsize:
            raise P4DSimError(
                f"{path}: truncated PLY: {n} vertices need {n * dtype.itemsize} bytes after the "
                f"header, the file has {len(body)}"
            )
        data = np.frombuffer(body, dtype=dtype, count=n)
    return data


def load_scene(path: str | Path) -> Scene4D:
    """Read a scene written by :func:`save_scene` (PLY + sidecar) back, bit-exactly."""
    path = Path(path)
    side_p = sidecar_path(path)
    if not path.exists():
        raise P4DSimError(f"{path}: no such scene file")
    if not side_p.exists():
        raise P4DSimError(f"{path}: its sidecar {side_p.name} is missing (written by p4dsim build)")
    try:
        side = json.loads(side_p.read_text())
    except (OSError, ValueError) as exc:
        raise P4DSimError(f"{side_p}: unreadable sidecar ({exc})") from None
    rec = _read_ply(path)
    names = rec.dtype.names or ()
    if "gaussians" in side:
        gs = side["gaussians"]
        n = int(gs["count"])
        if n != len(rec):
            raise P4DSimError(f"{path}: {len(rec)} vertices but its sidecar describes {n}")
        cols = {
            name: _decode_array(gs[name]["data"], dtype, c, n, f"{side_p}: gaussians.{name}")
            for name, dtype, c in _EXTRA
        }
    elif "p4_owner" in names:  # scenes saved with the extras as PLY properties

        def col(*keys):
            return np.stack([rec[k] for k in keys], axis=1)

        cols = {
            "owner": rec["p4_owner"],
            "confidence": rec["p4_confidence"],
            "means": col("p4_x", "p4_y", "p4_z"),
            "quats": col("p4_q0", "p4_q1", "p4_q2", "p4_q3"),
            "colors": col("p4_r", "p4_g", "p4_b"),
            "opacities": rec["p4_opacity"],
            "scales": col("p4_scale_0", "p4_scale_1", "p4_scale_2"),
        }
    else:
        raise P4DSimError(
            f"{path}: not a p4dsim scene (its sidecar has no 'gaussians'); p4dsim reads the "
            "scenes p4dsim build writes"
        )

    def subset(mask) -> GaussianSet:
        return GaussianSet(
            means=cols["means"][mask],
            quats=cols["quats"][mask],
            scales=cols["scales"][mask],
            opacities=cols["opacities"][mask],
            colors=cols["colors"][mask],
            confidence=cols["confidence"][mask],
        )

    owner = cols["owner"]
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
