"""Evaluation: how trustworthy a rendered frame is.

:mod:`~p4dsim.eval.metrics` (PSNR, SSIM, depth errors), :mod:`~p4dsim.eval.baselines`
(``copy`` and ``lidar_warp``), :mod:`~p4dsim.eval.regions` (error anatomy per region class),
:mod:`~p4dsim.eval.consistency` (novel-view depth consistency against the static LiDAR),
:mod:`~p4dsim.eval.scoring` (all metrics of one target), the protocols
:mod:`~p4dsim.eval.future` (future frames), :mod:`~p4dsim.eval.stereo` (right camera from
the left) and :mod:`~p4dsim.eval.jumps` (lateral camera jumps), :mod:`~p4dsim.eval.report`
(markdown, JSON and plot) and :mod:`~p4dsim.eval.contact` (contact sheets).
"""
