"""Lazy access to the official Waymo Open Dataset protos (``dataset_pb2``, ``label_pb2``).

They come from the ``waymo-open-dataset-tf-2-12-0`` distribution, installed with
``pip install --no-deps`` because its TensorFlow/numpy pins cannot share an environment with
torch; these two modules import without TensorFlow.
"""

from __future__ import annotations

from types import ModuleType

from p4dsim.errors import SourceError

INSTALL_HINT = "pip install --no-deps waymo-open-dataset-tf-2-12-0"


def dataset_pb2() -> ModuleType:
    """The ``waymo_open_dataset.dataset_pb2`` module; SourceError with the install command
    when it is missing."""
    try:
        from waymo_open_dataset import dataset_pb2 as mod
    except ImportError as exc:
        raise SourceError(
            "reading Waymo v1 TFRecords needs the Waymo Open Dataset protos, which are not "
            f"installed ({exc}); install them with: {INSTALL_HINT}"
        ) from None
    return mod


def label_pb2() -> ModuleType:
    """The ``waymo_open_dataset.label_pb2`` module (see :func:`dataset_pb2`)."""
    try:
        from waymo_open_dataset import label_pb2 as mod
    except ImportError as exc:
        raise SourceError(
            "reading Waymo v1 labels needs the Waymo Open Dataset protos, which are not "
            f"installed ({exc}); install them with: {INSTALL_HINT}"
        ) from None
    return mod
