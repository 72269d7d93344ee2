"""Resolving a scenario's actor rules into one motion per actor."""

from __future__ import annotations

import numpy as np

from p4dsim.errors import ConfigError
from p4dsim.geometry import inv_pose
from p4dsim.scenario.model import (
    ActorSelect,
    ActorsModel,
    Behaviour,
    ConstantVelocityBehaviour,
    LogBehaviour,
)
from p4dsim.scene.motion import Motion, TrackMotion
from p4dsim.scene.scene4d import Actor, Scene4D
from p4dsim.types import Log


def _matches(sel: ActorSelect, actor: Actor, distance: float) -> bool:
    if sel.track_id is not None and actor.track_id != sel.track_id:
        return False
    if sel.track_ids is not None and actor.track_id not in sel.track_ids:
        return False
    if sel.label is not None and actor.label != sel.label:
        return False
    if sel.distance_m is not None and not (sel.distance_m[0] <= distance <= sel.distance_m[1]):
        return False
    return True


def check_rules(model: ActorsModel, scene: Scene4D, where: str) -> None:
    """Every track id a rule names must exist in the scene."""
    known = [a.track_id for a in scene.actors]
    for i, rule in enumerate(model.rules):
        ids = ([rule.select.track_id] if rule.select.track_id else []) + list(
            rule.select.track_ids or []
        )
        for tid in ids:
            if tid not in known:
                raise ConfigError(
                    f"{where}: field 'actors.rules[{i}].select': track id '{tid}' does not exist in "
                    f"the source frame; its actors are: {', '.join(known) or 'none'}"
                )


def behaviour_for(model: ActorsModel, actor: Actor, distance: float) -> Behaviour:
    chosen = model.default
    for rule in model.rules:
        if _matches(rule.select, actor, distance):
            chosen = rule.behaviour
    return chosen


def log_motion(scene: Scene4D, log: Log | None, actor: Actor) -> Motion:
    """The actor's logged track in the scene frame, or its box-velocity motion without one."""
    tracks = log.tracks() if log is not None else {}
    tr = tracks.get(actor.track_id)
    if tr is None or len(tr.timestamps_us) == 0:
        return actor.motion
    times = (np.asarray(tr.timestamps_us, dtype=np.int64) - scene.timestamp_us) / 1e6
    T_scene = inv_pose(scene.T_log_scene) @ np.asarray(tr.T_world_box, dtype=np.float64)
    return TrackMotion(times=times, T_world=T_scene)


def resolve_motions(
    model: ActorsModel, scene: Scene4D, log: Log | None, where: str
) -> dict[str, Motion | None]:
    """track id -> motion (None: the actor is removed)."""
    check_rules(model, scene, where)
    out: dict[str, Motion | None] = {}
    for actor in scene.actors:
        p = actor.motion.pose(0.0)[:3, 3]
        distance = float(np.hypot(p[0], p[1]))
        b = behaviour_for(model, actor, distance)
        if isinstance(b, LogBehaviour):
            out[actor.track_id] = log_motion(scene, log, actor)
        elif isinstance(b, ConstantVelocityBehaviour):
            out[actor.track_id] = actor.motion
        else:  # pragma: no cover - the model's union lists every behaviour
            raise ConfigError(f"{where}: unsupported actor behaviour {b!r}")
    return out
