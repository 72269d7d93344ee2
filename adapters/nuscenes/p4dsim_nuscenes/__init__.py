"""nuScenes plugin for p4dsim.

Reader (entry-point group ``p4dsim.adapters``): ``nuscenes``, one scene of a nuScenes release
(``nuscenes:ROOT?version=v1.0-mini&scene=scene-0916``) read through the official
``nuscenes-devkit``: frames are the scene's keyframes, the frame's camera is ``CAM_FRONT`` (or
the ``camera`` option), the LiDAR is ``LIDAR_TOP`` moved into the ego frame at the camera's
timestamp.

Exporter (group ``p4dsim.exporters``): ``nuscenes`` writes a p4dsim dataset as a nuScenes
folder (13 tables + ``samples/CAM_FRONT/*.jpg``).

The nuScenes ego frame already is p4dsim's (x forward, y left, z up) and its camera frame is
OpenCV's; only the pixel convention differs (nuScenes pixel centres at integers, p4dsim's at
integer + 0.5).
"""

__version__ = "0.1.0"
