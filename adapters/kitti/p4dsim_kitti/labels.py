"""KITTI label rows (object ``label_2`` and tracking ``label_02``) and their conversion to and
from p4dsim :class:`~p4dsim.types.Box3D` in the ego (velodyne) frame.

A KITTI 3D label lives in the rectified reference camera frame ``rect0`` (x right, y down,
z forward): ``dimensions`` = (h, w, l) metres, ``location`` = bottom centre of the box, and
``rotation_y`` = rotation about rect0's y axis, 0 when the box's length axis points along +x
(its heading is ``(cos ry, 0, -sin ry)`` in rect0). With the nominal calibration (rect0 x = -y
ego, y = -z ego, z = x ego) the ego yaw is ``-ry - pi/2``; :func:`label_to_box` maps the
heading through the actual calibration rotation, and :func:`box_to_label` inverts it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.geometry import wrap_angle
from p4dsim.types import Box3D

#: KITTI object types -> p4dsim labels
KITTI_TO_LABEL: dict[str, str] = {
    "Car": "vehicle",
    "Van": "vehicle",
    "Truck": "vehicle",
    "Tram": "vehicle",
    "Pedestrian": "pedestrian",
    "Person_sitting": "pedestrian",
    "Person": "pedestrian",
    "Person (sitting)": "pedestrian",
    "Cyclist": "cyclist",
    "Misc": "other",
}

#: p4dsim labels -> the KITTI type written by the exporter
LABEL_TO_KITTI: dict[str, str] = {
    "vehicle": "Car",
    "pedestrian": "Pedestrian",
    "cyclist": "Cyclist",
    "sign": "Misc",
    "other": "Misc",
}


#: mean (length, width, height) in metres of KITTI's vehicle classes over its object
#: training labels (Car 3.88×1.63×1.53, Van 5.08×1.90×2.21, Truck 10.11×2.59×3.25)
KITTI_VEHICLE_MEANS: dict[str, tuple[float, float, float]] = {
    "Car": (3.88, 1.63, 1.53),
    "Van": (5.08, 1.90, 2.21),
    "Truck": (10.11, 2.59, 3.25),
}
#: p4dsim / dataset labels naming one KITTI class outright
_NAMED = {
    "pedestrian": "Pedestrian",
    "person": "Pedestrian",
    "cyclist": "Cyclist",
    "bicycle": "Cyclist",
    "tram": "Tram",
    "train": "Tram",
    "car": "Car",
    "van": "Van",
    "truck": "Truck",
    "bus": "Truck",
    "sign": "Misc",
    "other": "Misc",
}


def kitti_type(label: str, size) -> str:
    """The KITTI object class of a box: a label naming a class maps to it (pedestrian,
    cyclist, tram, car, van, truck; bus -> Truck); a generic ``vehicle`` takes the vehicle
    class (Car, Van, Truck) whose mean size is nearest in log-size (a ratio distance), so an
    8.4×2.5×3.2 m box is a Truck and a 4.5×1.8×1.5 m box a Car; anything else is Misc."""
    key = str(label).lower()
    if key in _NAMED:
        return _NAMED[key]
    if key != "vehicle":
        return "Misc"
    lwh = np.log(np.maximum(np.asarray(size, dtype=np.float64), 1e-3))
    best, best_d = "Car", np.inf
    for name, mean in KITTI_VEHICLE_MEANS.items():
        d = float(np.sum((lwh - np.log(mean)) ** 2))
        if d < best_d:
            best, best_d = name, d
    return best


@dataclass
class KittiLabel:
    """One KITTI label row.

    type: KITTI class name; truncated: 0..1; occluded: 0 (visible) .. 3 (unknown);
    alpha: observation angle, radians; bbox: [4] left, top, right, bottom in KITTI pixels
    (pixel centres at integers); dimensions: [3] h, w, l metres; location: [3] bottom centre in
    rect0, metres; rotation_y: radians; score: detection score or None; frame, track_id: the
    tracking benchmark's frame index and track id (None for object labels).
    """

    type: str
    truncated: float
    occluded: int
    alpha: float
    bbox: np.ndarray
    dimensions: np.ndarray
    location: np.ndarray
    rotation_y: float
    score: float | None = None
    frame: int | None = None
    track_id: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def is_dontcare(self) -> bool:
        return self.type == "DontCare"


def parse_label_line(line: str, tracking: bool = False, where: str = "label") -> KittiLabel:
    """Parse one row; ``tracking`` rows start with ``frame track_id``. Raises SourceError."""
    parts = line.split()
    lead = 2 if tracking else 0
    if len(parts) not in (lead + 15, lead + 16):
        raise SourceError(
            f"{where}: expected {lead + 15} or {lead + 16} fields "
            f"({'frame track_id ' if tracking else ''}type truncated occluded alpha "
            f"left top right bottom h w l x y z rotation_y [score]), got {len(parts)}"
        )
    try:
        head = [int(float(v)) for v in parts[:lead]]
        typ = parts[lead]
        nums = [float(v) for v in parts[lead + 1 :]]
    except ValueError as exc:
        raise SourceError(f"{where}: a field is not a number ({exc})") from None
    return KittiLabel(
        type=typ,
        truncated=nums[0],
        occluded=int(nums[1]),
        alpha=nums[2],
        bbox=np.array(nums[3:7]),
        dimensions=np.array(nums[7:10]),
        location=np.array(nums[10:13]),
        rotation_y=nums[13],
        score=nums[14] if len(nums) > 14 else None,
        frame=head[0] if tracking else None,
        track_id=head[1] if tracking else None,
    )


def read_label_file(path: Path, tracking: bool = False) -> list[KittiLabel]:
    """All rows of a ``label_2`` (object) or ``label_02`` (tracking) file, DontCare included."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"KITTI label file {path} does not exist")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            rows.append(parse_label_line(line, tracking=tracking, where=f"{path}:{lineno}"))
    return rows


def format_label_line(label: KittiLabel, decimals: int = 4) -> str:
    """The object-benchmark text row of ``label`` (tracking fields are not written)."""
    f = f"{{:.{decimals}f}}"
    nums = [
        f"{label.truncated:.2f}",
        str(int(label.occluded)),
        f.format(label.alpha),
        *(f"{v:.2f}" for v in label.bbox),
        *(f.format(v) for v in label.dimensions),
        *(f.format(v) for v in label.location),
        f.format(label.rotation_y),
    ]
    if label.score is not None:
        nums.append(f.format(label.score))
    return " ".join([label.type, *nums])


def observation_angle(location: np.ndarray, rotation_y: float) -> float:
    """KITTI's alpha: ``rotation_y - atan2(x, z)`` of the location, wrapped to (-pi, pi]."""
    x, _, z = np.asarray(location, dtype=np.float64)
    return float(wrap_angle(rotation_y - np.arctan2(x, z)))


def yaw_from_rotation_y(rotation_y: float, T_velo_rect0: np.ndarray) -> float:
    """Ego yaw of a box whose rect0 heading is ``(cos ry, 0, -sin ry)``: the heading mapped
    through the calibration rotation and projected onto the ego xy plane."""
    h = T_velo_rect0[:3, :3] @ np.array([np.cos(rotation_y), 0.0, -np.sin(rotation_y)])
    return float(np.arctan2(h[1], h[0]))


def rotation_y_from_yaw(yaw: float, T_velo_rect0: np.ndarray) -> float:
    """Exact inverse of :func:`yaw_from_rotation_y`: the ry whose mapped heading has ego
    direction ``yaw`` (the heading lies in the plane spanned by ``(cos yaw, sin yaw, 0)`` and
    ego z; solved in closed form)."""
    R = T_velo_rect0[:3, :3]
    n = np.array([-np.sin(yaw), np.cos(yaw), 0.0])  # normal of that plane
    a = R @ np.array([1.0, 0.0, 0.0])
    b = R @ np.array([0.0, 0.0, -1.0])
    ry = float(np.arctan2(-(n @ a), n @ b))
    h = np.cos(ry) * a + np.sin(ry) * b
    if h[0] * np.cos(yaw) + h[1] * np.sin(yaw) < 0:
        ry += np.pi
    return float(wrap_angle(ry))


def label_to_box(label: KittiLabel, T_velo_rect0: np.ndarray, track_id: str) -> Box3D:
    """A KITTI label -> :class:`Box3D` in the ego (velodyne) frame.

    Centre = bottom centre raised by h/2 along rect0's up (-y), mapped into the ego frame;
    size = (l, w, h); yaw from :func:`yaw_from_rotation_y`. Velocities are left None.
    """
    h, w, l = (float(v) for v in label.dimensions)
    c_rect = np.asarray(label.location, dtype=np.float64) - np.array([0.0, h / 2, 0.0])
    center = T_velo_rect0[:3, :3] @ c_rect + T_velo_rect0[:3, 3]
    return Box3D(
        track_id=track_id,
        label=KITTI_TO_LABEL.get(label.type, "other"),
        center=center,
        size=np.array([l, w, h]),
        yaw=yaw_from_rotation_y(label.rotation_y, T_velo_rect0),
        source="labels",
        confidence=1.0 if label.score is None else float(label.score),
    )


def box_to_label(
    box: Box3D,
    T_velo_rect0: np.ndarray,
    kitti_type: str | None = None,
    bbox: np.ndarray | None = None,
    truncated: float = 0.0,
    occluded: int = 0,
) -> KittiLabel:
    """Inverse of :func:`label_to_box`: an ego-frame box -> a KITTI label in rect0.

    ``kitti_type`` defaults to :data:`LABEL_TO_KITTI` of the box's label; ``bbox`` is the 2D box
    in KITTI pixels (zeros when not given); alpha is computed from the location.
    """
    l, w, h = (float(v) for v in box.size)
    T_rect0_velo = np.linalg.inv(T_velo_rect0)
    c_rect = T_rect0_velo[:3, :3] @ np.asarray(box.center, dtype=np.float64) + T_rect0_velo[:3, 3]
    location = c_rect + np.array([0.0, h / 2, 0.0])
    ry = rotation_y_from_yaw(float(box.yaw), T_velo_rect0)
    return KittiLabel(
        type=kitti_type or LABEL_TO_KITTI.get(box.label, "Misc"),
        truncated=float(truncated),
        occluded=int(occluded),
        alpha=observation_angle(location, ry),
        bbox=np.zeros(4) if bbox is None else np.asarray(bbox, dtype=np.float64),
        dimensions=np.array([h, w, l]),
        location=location,
        rotation_y=ry,
    )
