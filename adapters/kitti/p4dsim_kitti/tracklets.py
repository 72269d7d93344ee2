"""KITTI raw ``tracklet_labels.xml`` (boost serialisation) -> per-frame ego-frame boxes.

Each tracklet has ``objectType``, ``h``, ``w``, ``l``, ``first_frame`` and ``poses`` whose items
give ``tx ty tz`` (bottom centre of the box in the velodyne frame, metres) and ``rz`` (yaw about
velodyne z, radians) for consecutive frames starting at ``first_frame``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from p4dsim.errors import SourceError
from p4dsim.types import Box3D
from p4dsim_kitti.labels import KITTI_TO_LABEL


def _num(elem: ET.Element, tag: str, where: str) -> float:
    child = elem.find(tag)
    if child is None or child.text is None:
        raise SourceError(f"{where}: missing <{tag}>")
    try:
        return float(child.text)
    except ValueError:
        raise SourceError(f"{where}: <{tag}> is not a number: '{child.text}'") from None


def read_tracklets(path: Path) -> tuple[dict[int, list[Box3D]], dict[str, str]]:
    """({frame index: [Box3D in the velodyne frame]}, {track id: KITTI type}); track ids are
    the tracklets' positions in the file, as strings."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SourceError(f"{path}: not a readable tracklet XML file ({exc})") from None
    tracklets = root.find("tracklets") if root.tag != "tracklets" else root
    if tracklets is None:
        raise SourceError(f"{path}: no <tracklets> element (expected KITTI tracklet_labels.xml)")
    boxes: dict[int, list[Box3D]] = {}
    types: dict[str, str] = {}
    for k, item in enumerate(tracklets.findall("item")):
        where = f"{path}: tracklet {k}"
        typ = (item.findtext("objectType") or "Misc").strip()
        h, w, l = (_num(item, t, where) for t in ("h", "w", "l"))
        first = int(_num(item, "first_frame", where))
        poses = item.find("poses")
        if poses is None:
            raise SourceError(f"{where}: missing <poses>")
        tid = str(k)
        types[tid] = typ
        for j, pose in enumerate(poses.findall("item")):
            pw = f"{where}, pose {j}"
            t = np.array([_num(pose, c, pw) for c in ("tx", "ty", "tz")])
            boxes.setdefault(first + j, []).append(
                Box3D(
                    track_id=tid,
                    label=KITTI_TO_LABEL.get(typ, "other"),
                    center=t + np.array([0.0, 0.0, h / 2]),
                    size=np.array([l, w, h]),
                    yaw=_num(pose, "rz", pw),
                )
            )
    return boxes, types
