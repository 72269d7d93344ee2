"""Reporting a :class:`~p4dsim.eval.future.FutureEval`: summary rows, a markdown table,
``eval.json`` and a PNG plot of every metric against the horizon."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from p4dsim.eval.future import METHODS, METRICS, FutureEval


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
}


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
        for m in METRICS:
            row[m] = _mean([s.get(m) for s in ss])
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The summary as a GitHub markdown table; the best value per (trajectory, horizon) of
    PSNR, SSIM, AbsRel and RMSE in bold."""
    best: dict[tuple[str, int, str], float] = {}
    for r in rows:
        for m in ("psnr", "ssim", "absrel", "rmse"):
            v = r[m]
            if v is None:
                continue
            key = (r["trajectory"], r["horizon"], m)
            hi = METRIC_STYLE[m][2]
            if key not in best or (v > best[key] if hi else v < best[key]):
                best[key] = v
    head = ["trajectory", "horizon", "method", "n"] + [METRIC_STYLE[m][0] for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["trajectory"], str(r["horizon"]), r["method"], str(r["n"])]
        for m in METRICS:
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


def plot(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """PNG with one panel per metric (PSNR, SSIM, AbsRel, RMSE), metric against horizon, one
    line per method (solid: logged path; dashed/dotted: perturbed paths)."""
    from matplotlib.figure import Figure

    metrics = ("psnr", "ssim", "absrel", "rmse")
    trajs = list(dict.fromkeys(r["trajectory"] for r in rows))
    styles = ["-", "--", ":", "-."]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colours = {m: f"C{i}" for i, m in enumerate(methods)}
    fig = Figure(figsize=(4.0 * len(metrics), 3.4))
    axes = fig.subplots(1, len(metrics))
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
        ax.set_xlabel("horizon (frames)")
        ax.set_title(METRIC_STYLE[m][0] + (" ↑" if METRIC_STYLE[m][2] else " ↓"))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
