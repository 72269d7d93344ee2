"""Loading scenario files with errors that name the file and the field."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from p4dsim.errors import ConfigError
from p4dsim.scenario.model import Scenario


def format_loc(loc: tuple) -> str:
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "(top level)"


@lru_cache(maxsize=1)
def _type_tags() -> frozenset[str]:
    """The ``type`` values of every perturbation and behaviour (pydantic's union tags)."""
    from typing import get_args

    from p4dsim.scenario.model import Behaviour, Perturbation

    tags = set()
    for union in (Perturbation, Behaviour):
        for cls in get_args(get_args(union)[0]):
            tags.update(get_args(cls.model_fields["type"].annotation))
    return frozenset(tags)


def validation_message(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        # Drop discriminator tags pydantic inserts (e.g. 'lateral_offset') from the path.
        loc = tuple(
            p
            for p in err["loc"]
            if not (isinstance(p, str) and (p.endswith("]") or p in _type_tags()))
        )
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (remove it or check its spelling)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif "input" in err and err["type"] not in ("union_tag_invalid",):
            msg += f" (got {err['input']!r})"
        lines.append(f"{where}: field '{format_loc(loc)}': {msg}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the
    last one silently, so a typo'd duplicate would override the intended value)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue  # pyyaml reports unhashable keys itself
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first at line {seen[key] + 1})", mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"scenario file '{path}' does not exist")
    if path.is_dir():
        raise ConfigError(f"scenario file '{path}' is a folder; give a scenario .yaml file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"scenario file '{path}' cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); a scenario file is YAML"
        ) from None
    if "\x00" in text:
        raise ConfigError(
            f"{path}: not a text file (NUL byte at offset {text.index(chr(0))}); a scenario "
            "file is YAML"
        )
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{pos}: {getattr(exc, 'problem', exc)}") from None


def parse_scenario(data: Any, where: str) -> Scenario:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: a scenario file must be a mapping of keys (source, duration_s, ...)"
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, where)) from None


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; the run name defaults to the file's stem."""
    path = Path(path)
    scenario = parse_scenario(read_yaml(path), str(path))
    if scenario.name is None:
        scenario = scenario.model_copy(update={"name": path.stem})
    return scenario
