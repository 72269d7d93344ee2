"""Reporting a :class:`~p4dsim.eval.future.FutureEval` (future, stereo and lateral-jump
protocols): summary rows, markdown tables (whole image and per region class), ``eval.json``
and a PNG plot of every metric against the horizon plus the error anatomy per region."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from p4dsim.eval.future import METHODS, METRICS, FutureEval
from p4dsim.eval.regions import REGIONS


def _methods(result: FutureEval) -> list[str]:
    return list(result.meta.get("methods") or METHODS)


#: how each metric is written in the table (label, format, higher is better)
METRIC_STYLE: dict[str, tuple[str, str, bool]] = {
    "psnr": ("PSNR dB", "{:.2f}", True),
    "ssim": ("SSIM", "{:.3f}", True),
    "absrel": ("AbsRel", "{:.3f}", False),
    "rmse": ("RMSE m", "{:.2f}", False),
    "depth_density": ("depth density", "{:.2f}", True),
    "coverage": ("coverage", "{:.2f}", True),
    "consistency": ("consistency AbsRel", "{:.3f}", False),
    "empty": ("empty", "{:.3f}", False),
    "camera_in_vehicle": ("camera in a vehicle", "{:.2f}", False),
    "share": ("share", "{:.2f}", True),
}
#: metrics that may appear in summaries, in table order
ALL_METRICS: tuple[str, ...] = (*METRICS, "empty", "camera_in_vehicle")
#: metrics of the per-region tables
REGION_TABLE_METRICS: tuple[str, ...] = ("psnr", "ssim", "absrel", "consistency")


def _mean(values: list[Any]) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


def summarize(result: FutureEval) -> list[dict[str, Any]]:
    """Mean of every metric per (trajectory, method, horizon), with the sample count ``n``;
    None where no sample had the metric."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for s in result.samples:
        groups.setdefault((s["trajectory"], s["method"], s["horizon"]), []).append(s)
    order = {m: i for i, m in enumerate(_methods(result))}
    trajs = {t: i for i, t in enumerate(result.meta.get("trajectories", []))}
    rows = []
    for (traj, method, k), ss in sorted(
        groups.items(),
        key=lambda kv: (trajs.get(kv[0][0], 99), kv[0][2], order.get(kv[0][1], 99)),
    ):
        row: dict[str, Any] = {"trajectory": traj, "method": method, "horizon": k, "n": len(ss)}
        for m in ALL_METRICS:
            row[m] = _mean([s.get(m) for s in ss])
        if any("regions" in s for s in ss):
            row["regions"] = {
                region: {
                    m: _mean([(s.get("regions") or {}).get(region, {}).get(m) for s in ss])
                    for m in ("share", *REGION_TABLE_METRICS)
                }
                for region in REGIONS
            }
        rows.append(row)
    return rows


def _present(rows: list[dict[str, Any]], metrics: tuple[str, ...]) -> list[str]:
    return [m for m in metrics if any(r.get(m) is not None for r in rows)]


def region_table(rows: list[dict[str, Any]], metric: str) -> str | None:
    """Markdown table of one metric per region class (columns) for every (trajectory, horizon,
    method) of the summary; the header gives each region's mean share of the image. None when
    no row has the metric in any region."""
    rows = [r for r in rows if "regions" in r]
    if not any(r["regions"][g][metric] is not None for r in rows for g in REGIONS):
        return None
    shares = {g: _mean([r["regions"][g]["share"] for r in rows]) for g in REGIONS}
    label, fmt, hi = METRIC_STYLE[metric]
    head = ["trajectory", "horizon", "method"] + [
        f"{g} ({100 * (shares[g] or 0):.0f} %)" for g in REGIONS
    ]
    lines = [
        f"{label} per region ({'higher' if hi else 'lower'} is better; % = share of the image)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r["trajectory"], str(r["horizon"]), r["method"]]
        for g in REGIONS:
            v = r["regions"][g][metric]
            cells.append("–" if v is None else fmt.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def region_tables(rows: list[dict[str, Any]]) -> str:
    """Every per-region table with data (PSNR, SSIM, AbsRel, consistency), blank-line separated."""
    tables = [region_table(rows, m) for m in REGION_TABLE_METRICS]
    return "\n\n".join(t for t in tables if t)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The summary as a GitHub markdown table; the best value per (trajectory, horizon) of
    PSNR, SSIM, AbsRel and RMSE in bold."""
    best: dict[tuple[str, int, str], float] = {}
    for r in rows:
        for m in ("psnr", "ssim", "absrel", "rmse", "consistency"):
            v = r.get(m)
            if v is None:
                continue
            key = (r["trajectory"], r["horizon"], m)
            hi = METRIC_STYLE[m][2]
            if key not in best or (v > best[key] if hi else v < best[key]):
                best[key] = v
    metrics = _present(rows, ALL_METRICS)
    head = ["trajectory", "horizon", "method", "n"] + [METRIC_STYLE[m][0] for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["trajectory"], str(r["horizon"]), r["method"], str(r["n"])]
        for m in metrics:
            v = r[m]
            if v is None:
                cells.append("–")
                continue
            text = METRIC_STYLE[m][1].format(v)
            if best.get((r["trajectory"], r["horizon"], m)) == v:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


def to_json(result: FutureEval, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``{"meta", "summary", "samples"}`` with non-finite numbers as null."""
    return _clean(
        {
            "meta": result.meta,
            "summary": rows if rows is not None else summarize(result),
            "samples": result.samples,
        }
    )


def write_json(result: FutureEval, path: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(result, rows), indent=1, allow_nan=False))
    return path


def plot(
    rows: list[dict[str, Any]], path: Path, title: str = "", xlabel: str = "horizon (frames)"
) -> Path:
    """PNG with one panel per metric (PSNR, SSIM, AbsRel, RMSE, consistency; those with data),
    metric against horizon, one line per method (solid: logged path; dashed/dotted: perturbed
    paths); below, the error anatomy: each metric per region class, one bar per method
    (mean over horizons and trajectories)."""
    from matplotlib.figure import Figure

    metrics = _present(rows, ("psnr", "ssim", "absrel", "rmse", "consistency")) or ["psnr"]
    reg_metrics = [
        m
        for m in REGION_TABLE_METRICS
        if any(r["regions"][g][m] is not None for r in rows if "regions" in r for g in REGIONS)
    ]
    trajs = list(dict.fromkeys(r["trajectory"] for r in rows))
    styles = ["-", "--", ":", "-."]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colours = {m: f"C{i}" for i, m in enumerate(methods)}
    ncol = max(len(metrics), len(reg_metrics))
    nrow = 2 if reg_metrics else 1
    fig = Figure(figsize=(4.0 * ncol, 3.4 * nrow))
    grid = np.atleast_2d(fig.subplots(nrow, ncol, squeeze=False))
    for ax in grid[0, len(metrics) :]:
        ax.set_visible(False)
    axes = grid[0, : len(metrics)]
    for ax, m in zip(axes, metrics, strict=True):
        for ti, traj in enumerate(trajs):
            for method in methods:
                pts = [
                    (r["horizon"], r[m])
                    for r in rows
                    if r["trajectory"] == traj and r["method"] == method and r[m] is not None
                ]
                if not pts:
                    continue
                x, y = zip(*sorted(pts), strict=True)
                label = method if traj == "log" else f"{method} ({traj})"
                ax.plot(
                    x, y, styles[ti % len(styles)], marker="o", color=colours[method], label=label
                )
        ax.set_xlabel(xlabel)
        ax.set_title(METRIC_STYLE[m][0] + (" ↑" if METRIC_STYLE[m][2] else " ↓"))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if reg_metrics:
        for ax in grid[1, len(reg_metrics) :]:
            ax.set_visible(False)
        width = 0.8 / max(len(methods), 1)
        x = np.arange(len(REGIONS))
        for ax, m in zip(grid[1, : len(reg_metrics)], reg_metrics, strict=True):
            for mi, method in enumerate(methods):
                vals = [
                    _mean(
                        [
                            r["regions"][g][m]
                            for r in rows
                            if r["method"] == method and "regions" in r
                        ]
                    )
                    for g in REGIONS
                ]
                ax.bar(
                    x + (mi - (len(methods) - 1) / 2) * width,
                    [np.nan if v is None else v for v in vals],
                    width,
                    color=colours[method],
                    label=method,
                )
            ax.set_xticks(x, list(REGIONS), fontsize=8, rotation=20)
            ax.set_title(
                METRIC_STYLE[m][0] + " per region" + (" ↑" if METRIC_STYLE[m][2] else " ↓")
            )
            ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
