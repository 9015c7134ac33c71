"""Static figures for run folders (matplotlib's object API; no pyplot global state)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from biohybrid.io import atomic_write_bytes
from biohybrid.viz import render


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> None:
    """Render ``fig`` to PNG at ``path`` atomically."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def plot_biomarkers(
    df: pd.DataFrame, units: Mapping[str, str], time_units: str, title: str = ""
) -> Figure:
    """One panel per biomarker over time (``figures/biomarkers.png`` of a run).

    The panels are drawn by :func:`biohybrid.viz.render.draw_biomarkers`, the same code that
    draws the live view's biomarkers, so a run's figure and the browser always agree.

    Args:
        df: Biomarkers indexed by time, one column per biomarker.
        units: ``{biomarker: units}``.
        time_units: Units of the time axis.
        title: Figure title.

    Returns:
        The figure.
    """
    n = max(len(df.columns), 1)
    ncols = 2 if n > 1 else 1
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(5.2 * ncols, 2.6 * nrows), layout="constrained")
    render.draw_biomarkers(fig, df, units, time_units, ncols=ncols)
    if title:
        fig.suptitle(title)
    return fig
