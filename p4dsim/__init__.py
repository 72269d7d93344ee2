"""p4dsim: one driving-log frame to a 4D Gaussian scene, replayed along counterfactual paths."""

import warnings as _warnings

# numba probes TBB before falling back to OpenMP; an old TBB (pulled in by other packages)
# only costs that probe, so its warning is noise for users.
_warnings.filterwarnings("ignore", message="The TBB threading layer requires TBB")

__version__ = "0.1.0"


def load_scene(path):  # noqa: ANN001, ANN201
    """Read a scene saved by ``p4dsim build`` (PLY + ``.json`` sidecar); see
    :func:`p4dsim.scene.ply.load_scene`."""
    from p4dsim.scene.ply import load_scene as _load

    return _load(path)
