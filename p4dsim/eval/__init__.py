"""Evaluation: how trustworthy a rendered frame is.

:mod:`~p4dsim.eval.metrics` (PSNR, SSIM, depth errors), :mod:`~p4dsim.eval.baselines`
(``copy`` and ``lidar_warp``), :mod:`~p4dsim.eval.future` (the future-frame protocol) and
:mod:`~p4dsim.eval.report` (markdown, JSON and plot).
"""
