"""GaussianSet: a struct of arrays describing 3D Gaussians."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from p4dsim.geometry import quat_multiply, rotmat_to_quat


@dataclass
class GaussianSet:
    """N 3D Gaussians, one row each, all arrays float32.

    means: [N, 3] centres (metres, in the frame of whoever holds the set);
    quats: [N, 4] unit rotations (w, x, y, z); scales: [N, 3] standard deviations along the
    rotated axes (metres); opacities: [N] in [0, 1]; colors: [N, 3] linear RGB in [0, 1];
    confidence: [N] in [0, 1], 1 for content observed in the source frame, 0 (the scene
    builder's default) for synthesised content (hidden layers, mirrored actor sides, extended
    borders): the rendered mean of this channel is a frame's coverage.
    """

    means: np.ndarray
    quats: np.ndarray
    scales: np.ndarray
    opacities: np.ndarray
    colors: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        shapes = {
            "means": (n, 3),
            "quats": (n, 4),
            "scales": (n, 3),
            "opacities": (n,),
            "colors": (n, 3),
            "confidence": (n,),
        }
        for f in fields(self):
            arr = np.ascontiguousarray(getattr(self, f.name), dtype=np.float32)
            if arr.shape != shapes[f.name]:
                raise ValueError(
                    f"GaussianSet.{f.name} has shape {arr.shape}, expected {shapes[f.name]}"
                )
            setattr(self, f.name, arr)

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @classmethod
    def empty(cls) -> GaussianSet:
        z = np.zeros
        return cls(z((0, 3)), z((0, 4)), z((0, 3)), z(0), z((0, 3)), z(0))

    @classmethod
    def concat(cls, sets: list[GaussianSet]) -> GaussianSet:
        sets = [s for s in sets if len(s)] or [cls.empty()]
        return cls(
            **{f.name: np.concatenate([getattr(s, f.name) for s in sets]) for f in fields(cls)}
        )

    def subset(self, mask_or_index: np.ndarray) -> GaussianSet:
        return GaussianSet(**{f.name: getattr(self, f.name)[mask_or_index] for f in fields(self)})

    def transformed(self, T: np.ndarray) -> GaussianSet:
        """This set moved by the rigid pose T [4, 4] (means rotated and translated, quats rotated)."""
        T = np.asarray(T, dtype=np.float64)
        R = T[:3, :3]
        means = self.means.astype(np.float64) @ R.T + T[:3, 3]
        q = quat_multiply(rotmat_to_quat(R)[None, :], self.quats.astype(np.float64))
        return GaussianSet(means, q, self.scales, self.opacities, self.colors, self.confidence)

    def covariances(self) -> np.ndarray:
        """World covariances [N, 3, 3] = R diag(s²) Rᵀ."""
        from p4dsim.geometry import quat_to_rotmat

        R = quat_to_rotmat(self.quats.astype(np.float64))
        S2 = self.scales.astype(np.float64) ** 2
        return np.einsum("nij,nj,nkj->nik", R, S2, R)
