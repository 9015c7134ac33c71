"""Sweep figures: every metric against every swept parameter, and sensitivity indices.

``figures/metrics.png``: a grid of panels, one row per metric and one column per swept
parameter; each completed run is a dot, and for a grid design the mean over runs at each
value is drawn as a line. ``figures/sensitivity.png`` (Sobol or Morris designs): bars of
``S1`` and ``ST`` (or ``mu_star`` and ``sigma``) per parameter for each metric, also written
as ``sensitivity.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from biohybrid.figures import save_figure
from biohybrid.sweep.design import SENSITIVITY_DESIGNS, Design
from biohybrid.sweep.sensitivity import metric_columns, sensitivity

_MAX_METRICS = 12


def plot_metrics(df: pd.DataFrame, design: Design) -> Figure:
    """Scatter of each metric (rows) against each swept parameter (columns).

    Args:
        df: Results, one row per run.
        design: The sweep's design.

    Returns:
        The figure.
    """
    ok = df[df["status"] == "completed"]
    metrics = metric_columns(df, design.names)[:_MAX_METRICS] or ["(no metrics)"]
    names = design.names
    nrows, ncols = len(metrics), len(names)
    fig = Figure(figsize=(3.2 * ncols + 0.6, 2.3 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, m in enumerate(metrics):
        for j, p in enumerate(names):
            ax = axes[i, j]
            if m in ok and len(ok) and pd.api.types.is_numeric_dtype(ok[p]):
                x = ok[p].to_numpy(dtype=float)
                y = ok[m].to_numpy(dtype=float)
                ax.plot(x, y, "o", ms=3.5, alpha=0.6, color="C0")
                if design.kind == "grid":
                    mean = ok.groupby(p)[m].mean()
                    ax.plot(mean.index.to_numpy(dtype=float), mean.to_numpy(), "-", color="C1")
            if i == nrows - 1:
                ax.set_xlabel(p)
            if j == 0:
                ax.set_ylabel(m, fontsize=9)
            ax.grid(alpha=0.3)
    n_failed = int((df["status"] != "completed").sum())
    fig.suptitle(
        f"{design.kind} sweep: {len(ok)} completed runs"
        + (f", {n_failed} not completed" if n_failed else "")
    )
    return fig


def plot_indices(table: pd.DataFrame, kind: str) -> Figure:
    """Bar chart of sensitivity indices, one panel per metric.

    Args:
        table: Output of :func:`~biohybrid.sweep.sensitivity.sensitivity`.
        kind: ``sobol`` or ``morris``.

    Returns:
        The figure.
    """
    metrics = list(dict.fromkeys(table["metric"]))[:_MAX_METRICS]
    first, second = ("S1", "ST") if kind == "sobol" else ("mu_star", "sigma")
    err = "S1_conf" if kind == "sobol" else "mu_star_conf"
    err2 = "ST_conf" if kind == "sobol" else None
    ncols = min(3, max(len(metrics), 1))
    nrows = int(np.ceil(max(len(metrics), 1) / ncols))
    fig = Figure(figsize=(4.0 * ncols, 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, m in zip(axes, metrics, strict=False):
        t = table[table["metric"] == m]
        pos = np.arange(len(t))
        ax.bar(pos - 0.2, t[first], 0.4, yerr=t[err], label=first, capsize=2)
        ax.bar(pos + 0.2, t[second], 0.4, yerr=t[err2] if err2 else None, label=second, capsize=2)
        ax.set_xticks(pos, t["parameter"], rotation=30, ha="right")
        ax.set_title(m, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle(f"{kind} sensitivity indices")
    return fig


def write_sweep_figures(root: Path, df: pd.DataFrame, design: Design) -> list[Path]:
    """Write ``figures/metrics.png`` and, for Sobol/Morris designs, the indices.

    Args:
        root: The sweep folder.
        df: Results (with ``attrs["sweep"]["path"]`` for the indices).
        design: The sweep's design.

    Returns:
        The files written.
    """
    root = Path(root)
    (root / "figures").mkdir(exist_ok=True)
    written = [root / "figures" / "metrics.png"]
    save_figure(plot_metrics(df, design), written[0])
    if design.kind in SENSITIVITY_DESIGNS and (df["status"] == "completed").any():
        table = sensitivity(root)
        table.to_csv(root / "sensitivity.csv", index=False, lineterminator="\n")
        written.append(root / "sensitivity.csv")
        if len(table):
            written.append(root / "figures" / "sensitivity.png")
            save_figure(plot_indices(table, design.kind), written[-1])
    return written
