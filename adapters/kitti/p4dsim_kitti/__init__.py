"""KITTI plugin for p4dsim.

Readers (entry-point group ``p4dsim.adapters``):

* ``kitti-raw``: raw drives (``YYYY_MM_DD/YYYY_MM_DD_drive_NNNN_sync``) through ``pykitti.raw``;
* ``kitti-tracking``: the tracking benchmark layout (``training/label_02/SSSS.txt`` ...);
* ``kitti-object``: the object benchmark layout (``training/label_2/NNNNNN.txt`` ...).

Exporter (group ``p4dsim.exporters``): ``kitti`` writes a native p4dsim dataset as a KITTI
object-benchmark training set plus ``depth/`` maps.

The ego frame of every reader is KITTI's velodyne frame (x forward, y left, z up); the camera is
the rectified left colour camera (``image_02``, projection ``P2``).
"""

__version__ = "0.1.0"
