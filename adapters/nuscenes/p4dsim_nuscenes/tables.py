"""Opening a nuScenes release through the devkit, with errors that name the file.

The devkit answers a missing file, a broken JSON table, a dangling token or a missing map
with a bare ``FileNotFoundError``, ``JSONDecodeError``, ``KeyError(token)`` or
``AssertionError``. :func:`open_nuscenes` checks what the devkit would trip over first (table
files, map files) and, when the devkit fails anyway, finds which table and which field hold
the bad token, so the user reads one line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from p4dsim.errors import SourceError

#: the 13 tables of a nuScenes release
TABLES = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
)

#: table -> (field, referenced table); "" is a valid empty reference for prev/next fields
REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "instance": (
        ("category_token", "category"),
        ("first_annotation_token", "sample_annotation"),
        ("last_annotation_token", "sample_annotation"),
    ),
    "calibrated_sensor": (("sensor_token", "sensor"),),
    "scene": (
        ("log_token", "log"),
        ("first_sample_token", "sample"),
        ("last_sample_token", "sample"),
    ),
    "sample": (("scene_token", "scene"), ("prev", "sample"), ("next", "sample")),
    "sample_data": (
        ("sample_token", "sample"),
        ("ego_pose_token", "ego_pose"),
        ("calibrated_sensor_token", "calibrated_sensor"),
        ("prev", "sample_data"),
        ("next", "sample_data"),
    ),
    "sample_annotation": (
        ("sample_token", "sample"),
        ("instance_token", "instance"),
        ("visibility_token", "visibility"),
        ("attribute_tokens", "attribute"),
        ("prev", "sample_annotation"),
        ("next", "sample_annotation"),
    ),
    "map": (("log_tokens", "log"),),
}

LAYOUT = (
    "a nuScenes root holding VERSION/{category,attribute,...,map}.json (the 13 tables), "
    "samples/ and maps/"
)


def table_path(root: Path, version: str, table: str) -> Path:
    return Path(root) / version / f"{table}.json"


def read_table(root: Path, version: str, table: str) -> list[dict[str, Any]]:
    """One table as a list of records; SourceError naming the file when missing or broken."""
    path = table_path(root, version, table)
    if not path.is_file():
        raise SourceError(f"nuScenes table {path} does not exist (expected {LAYOUT})")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"nuScenes table {path} is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) and "token" in r for r in data):
        raise SourceError(f"nuScenes table {path}: expected a JSON list of records with 'token'")
    return data


def check_tables(root: Path, version: str) -> dict[str, list[dict[str, Any]]]:
    """Read every table and check every token reference; the first problem is raised as a
    SourceError naming the table file, the record and the field."""
    tables = {t: read_table(root, version, t) for t in TABLES}
    tokens = {t: {r["token"] for r in recs} for t, recs in tables.items()}
    for table, refs in REFERENCES.items():
        path = table_path(root, version, table)
        for i, rec in enumerate(tables[table]):
            for fld, target in refs:
                if fld not in rec:
                    if fld == "visibility_token":
                        continue
                    raise SourceError(
                        f"nuScenes table {path}: record {i} (token {rec['token']}) has no "
                        f"field '{fld}'"
                    )
                values = rec[fld] if isinstance(rec[fld], list) else [rec[fld]]
                for v in values:
                    if v == "" and fld in ("prev", "next"):
                        continue
                    if v not in tokens[target]:
                        raise SourceError(
                            f"nuScenes table {path}: record {i} (token {rec['token']}) field "
                            f"'{fld}' refers to {target} token '{v}', which "
                            f"{table_path(root, version, target)} does not hold"
                        )
    return tables


def check_maps(root: Path, version: str) -> None:
    """Every map file the map table names exists (the devkit opens them on load)."""
    for rec in read_table(root, version, "map"):
        f = Path(root) / str(rec.get("filename", ""))
        if not rec.get("filename") or not f.is_file():
            raise SourceError(
                f"nuScenes map file {f} (map token {rec['token']} in "
                f"{table_path(root, version, 'map')}) does not exist; restore it from the "
                "nuScenes maps download"
            )


def open_nuscenes(root: Path, version: str):
    """``nuscenes.nuscenes.NuScenes(version, root)``, quiet, with p4dsim errors."""
    root = Path(root)
    if not (root / version).is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("v"))
        raise SourceError(
            f"nuScenes: folder {root / version} does not exist (versions under {root}: "
            f"{', '.join(have) or 'none'}; expected {LAYOUT})"
        )
    for t in TABLES:
        if not table_path(root, version, t).is_file():
            raise SourceError(
                f"nuScenes table {table_path(root, version, t)} does not exist (expected {LAYOUT})"
            )
    check_maps(root, version)
    try:
        from nuscenes.nuscenes import NuScenes
    except ImportError as exc:
        raise SourceError(
            f"the nuscenes adapter needs nuscenes-devkit ({exc}); install it with "
            "`pip install --no-deps nuscenes-devkit==1.2.0` (its numpy/Shapely pins cannot "
            "share an environment with p4dsim; p4dsim-nuscenes brings the modules it imports)"
        ) from None
    try:
        return NuScenes(version=version, dataroot=str(root), verbose=False)
    except (KeyError, ValueError, TypeError, AssertionError, OSError) as exc:
        check_tables(root, version)  # raises naming the file when it finds the cause
        raise SourceError(
            f"nuScenes: the devkit cannot load {root / version}: {type(exc).__name__}: {exc}"
        ) from None
