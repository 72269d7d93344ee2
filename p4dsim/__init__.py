"""p4dsim: one driving-log frame to a 4D Gaussian scene, replayed along counterfactual paths."""

__version__ = "0.1.0"


def load_scene(path):  # noqa: ANN001, ANN201
    """Read a scene saved by ``p4dsim build`` (PLY + ``.json`` sidecar); see
    :func:`p4dsim.scene.ply.load_scene`."""
    from p4dsim.scene.ply import load_scene as _load

    return _load(path)
