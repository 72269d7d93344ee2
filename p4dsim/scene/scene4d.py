"""Scene4D: a static Gaussian world plus rigidly moving actors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from p4dsim.geometry import quat_multiply, rotmat_to_quat
from p4dsim.scene.gaussians import GaussianSet
from p4dsim.scene.motion import Motion
from p4dsim.types import Box3D, Camera, Label, SourceInfo


@dataclass
class Actor:
    """A rigid actor.

    track_id, label: as in the log; size: [3] box length, width, height (m);
    gaussians: in the actor's own frame (origin at the box centre, x along its heading, z up);
    motion: T_world_actor(t) in the scene's world frame; source: "labels" or "auto";
    confidence: how sure the scene is that this actor exists and moves as modelled (0..1).
    """

    track_id: str
    label: Label
    size: np.ndarray
    gaussians: GaussianSet
    motion: Motion
    source: str = "labels"
    confidence: float = 1.0


@dataclass
class Scene4D:
    """A 4D Gaussian scene built from one source frame.

    static: Gaussians of the static world, scene world frame (origin = source frame's ego pose);
    actors: moving rigid bodies; camera: the source camera; T_log_scene: [4, 4] the source
    frame's ``T_world_ego`` in the log's own world frame (maps scene world to log world);
    source: provenance; timestamp_us: the source frame's time; ground: (normal [3], offset d)
    of the ground plane ``n·x + d = 0`` in the scene world, or None; sky_depth: metres at which
    sky Gaussians were placed (their rendered depth is reported as infinity).
    is_sky: [N_static] bool, Gaussians of the sky dome. boxes: the source frame's boxes the
    actors were built from (ego frame); ego_velocity: [3] m/s, the ego's velocity at the
    source frame (ego frame), or None; depth_confidence: [H, W] confidence of the completed
    source depth, or None.
    """

    static: GaussianSet
    actors: list[Actor]
    camera: Camera
    T_log_scene: np.ndarray
    source: SourceInfo
    timestamp_us: int
    ground: tuple[np.ndarray, float] | None = None
    sky_depth: float = 1000.0
    is_sky: np.ndarray | None = None
    boxes: list[Box3D] = field(default_factory=list)
    ego_velocity: np.ndarray | None = None
    depth_confidence: np.ndarray | None = None

    def actor_index(self, track_id: str) -> int:
        for i, a in enumerate(self.actors):
            if a.track_id == track_id:
                return i
        raise KeyError(track_id)

    def num_gaussians(self) -> int:
        return len(self.static) + sum(len(a.gaussians) for a in self.actors)

    def compose(
        self,
        actor_poses: dict[str, np.ndarray],
        visible: set[str] | None = None,
    ) -> tuple[GaussianSet, np.ndarray]:
        """All Gaussians in the world frame for one instant.

        actor_poses: track id -> T_world_actor [4, 4]; actors absent from it (or from
        ``visible`` when given) are left out. Returns the set and ``owner`` [N] int32: -1 for
        static Gaussians, -2 for sky, otherwise the actor's index in ``self.actors``.
        """
        parts = [self.static]
        owner = [np.where(self.sky_mask(), -2, -1).astype(np.int32)]
        for i, a in enumerate(self.actors):
            if a.track_id not in actor_poses or (visible is not None and a.track_id not in visible):
                continue
            parts.append(_move(a.gaussians, actor_poses[a.track_id]))
            owner.append(np.full(len(a.gaussians), i, dtype=np.int32))
        return GaussianSet.concat(parts), np.concatenate(owner)

    def sky_mask(self) -> np.ndarray:
        if self.is_sky is None:
            return np.zeros(len(self.static), dtype=bool)
        return self.is_sky


def _move(g: GaussianSet, T: np.ndarray) -> GaussianSet:
    T = np.asarray(T, dtype=np.float64)
    R = T[:3, :3]
    means = g.means @ R.T.astype(np.float32) + T[:3, 3].astype(np.float32)
    q = quat_multiply(rotmat_to_quat(R)[None, :], g.quats).astype(np.float32)
    return GaussianSet(means, q, g.scales, g.opacities, g.colors, g.confidence)
