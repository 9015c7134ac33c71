"""Rendering of tissue images and biomarkers: pure functions of arrays onto matplotlib axes.

Everything here takes arrays (images of shape ``(ny, nx)``, row ``j`` = grid y, drawn with
the origin at the lower left) and draws with matplotlib's object API; nothing reads a model.
A 3-D tissue is drawn one plane at a time (a section of a frame, whose rows and columns
are then e.g. z and x); a 1-D cable as a kymograph, an image whose rows are frames drawn at
their times. The same functions serve the live browser view (:mod:`biohybrid.viz.app`),
the run snapshots and the animation (:mod:`biohybrid.viz.outputs`), and
:func:`draw_biomarkers` draws the biomarkers of both the run (``biomarkers.png``) and the
live view.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1 import make_axes_locatable
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from biohybrid.viz.colors import (
    EMPTY_RGBA,
    FIELD_CMAP,
    FIELD_UNDER_CMAP,
    color_limits,
    kind_cmap,
    species_cmap,
)
from biohybrid.viz.frames import GridFrame, kymograph, time_edges


def _cmap(name: str | Colormap) -> Colormap:
    cm = colormaps[name] if isinstance(name, str) else name
    return cm.with_extremes(bad=(0.0, 0.0, 0.0, 0.0))


def _colorbar(fig: Any, im: Any, ax: Axes, caxes: Sequence[Axes], i: int, label: str) -> None:
    if i < len(caxes):
        fig.colorbar(im, cax=caxes[i], label=label)
    else:
        fig.colorbar(im, ax=ax, label=label, fraction=0.046, pad=0.02)


def draw_tissue(
    ax: Axes,
    *,
    cells: NDArray | None = None,
    kinds: NDArray | None = None,
    kind_names: Sequence[str] = (),
    field: NDArray | None = None,
    dx: float | tuple[float, float] = 1.0,
    cell_label: str = "",
    field_label: str = "",
    cell_limits: tuple[float, float] | None = None,
    field_limits: tuple[float, float] | None = None,
    cell_cmap: str | None = None,
    field_cmap: str | None = None,
    colorbars: bool = True,
    legend: bool = True,
    cbar_axes: Sequence[Axes] = (),
    axis_labels: tuple[str, str] = ("x (µm)", "y (µm)"),
    y_edges: NDArray | None = None,
) -> None:
    """Draw the agent grid over a field heatmap.

    Cells are coloured either by a state (``cells``: float image, NaN at empty sites, with a
    colour bar) or by phenotype (``kinds``: integer codes into ``kind_names``, ``-1`` empty,
    with a legend). The field is drawn underneath, in grey when cells are drawn on top and
    in :data:`~biohybrid.viz.colors.FIELD_CMAP` when it is shown alone.

    Args:
        ax: Target axes.
        cells: Cell state image, shape ``(ny, nx)``.
        kinds: Phenotype codes, shape ``(ny, nx)``; used when ``cells`` is ``None``.
        kind_names: Phenotype labels, indexed by code.
        field: Field image, shape ``(ny, nx)``.
        dx: Pixel spacing, µm: one number, or ``(along columns, along rows)``.
        cell_label: Colour-bar label of the cells, e.g. ``"x (1)"``.
        field_label: Colour-bar label of the field, e.g. ``"signal (µM)"``.
        cell_limits: Colour limits of the cells; default from the data.
        field_limits: Colour limits of the field; default from the data.
        cell_cmap: Colour map of the cells; default from the species name.
        field_cmap: Colour map of the field; default grey under cells, magma alone.
        colorbars: Add colour bars.
        legend: Add a legend (cells, field, empty sites / phenotypes).
        cbar_axes: Axes for the colour bars (field first, then cells); by default they are
            taken from ``ax``.
        axis_labels: Labels of the horizontal and vertical axes.
        y_edges: Edges of the rows, shape ``(ny + 1,)``, in the vertical axis' units (e.g.
            the times of a kymograph's rows, see :func:`~biohybrid.viz.frames.time_edges`);
            default rows of height ``dx`` and an equal aspect.
    """
    fig = ax.get_figure()
    shape = next(a.shape for a in (cells, kinds, field) if a is not None)
    ny, nx = shape
    hx, hy = np.broadcast_to(np.asarray(dx, dtype=float), (2,)).tolist()

    def show(img: Any, **kw: Any) -> Any:
        if y_edges is None:
            extent = (0.0, nx * hx, 0.0, ny * hy)
            return ax.imshow(img, origin="lower", extent=extent, interpolation="nearest", **kw)
        return ax.pcolormesh(np.arange(nx + 1) * hx, y_edges, img, shading="flat", **kw)

    show_cells = cells is not None or kinds is not None
    handles: list[Patch] = []
    bars: list[Any] = []
    ax.set_facecolor(EMPTY_RGBA)
    if field is not None:
        fcm = field_cmap or (FIELD_UNDER_CMAP if show_cells else FIELD_CMAP)
        lo, hi = field_limits or color_limits(field)
        im = show(field, cmap=fcm, vmin=lo, vmax=hi)
        if colorbars:
            _colorbar(fig, im, ax, cbar_axes, len(bars), field_label or "field")
            bars.append(im)
        handles.append(Patch(facecolor=_cmap(fcm)(0.6), label=f"field: {field_label or 'field'}"))
    if cells is not None:
        ccm = _cmap(cell_cmap or species_cmap(cell_label.split(" ")[0] if cell_label else ""))
        lo, hi = cell_limits or color_limits(cells)
        im = show(np.ma.masked_invalid(cells), cmap=ccm, vmin=lo, vmax=hi)
        if colorbars:
            _colorbar(fig, im, ax, cbar_axes, len(bars), f"cells: {cell_label}")
            bars.append(im)
        handles.append(Patch(facecolor=ccm(0.75), label=f"cell, coloured by {cell_label}"))
    elif kinds is not None:
        n = max(len(kind_names), 1)
        kcm = _cmap(kind_cmap(kind_names))
        show(np.ma.masked_less(np.asarray(kinds), 0), cmap=kcm, vmin=-0.5, vmax=n - 0.5)
        handles += [Patch(facecolor=kcm(i), label=name) for i, name in enumerate(kind_names)]
    if show_cells and field is None:
        handles.append(Patch(facecolor=EMPTY_RGBA, edgecolor="0.6", label="empty site"))
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_aspect("equal" if y_edges is None else "auto")
    if legend and handles:
        ax.legend(
            handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2),
            ncols=min(len(handles), 3), fontsize=8, frameon=False,
        )  # fmt: skip


def frame_axis_labels(frame: GridFrame) -> tuple[str, str]:
    """Axis labels of a 2-D frame or section, e.g. ``("x (µm)", "z (µm)")``."""
    return f"{frame.axes[0]} (µm)", f"{frame.axes[1]} (µm)"


def frame_title(frame: GridFrame, time_units: str) -> str:
    """``"t = … · N cells"``, and where a section lies."""
    where = f" · {frame.where}" if frame.where else ""
    return f"t = {frame.t:g} {time_units} · {frame.n_cells} cells{where}"


def draw_biomarkers(
    fig: Figure,
    df: pd.DataFrame,
    units: Mapping[str, str],
    time_units: str,
    live: tuple[float, Mapping[str, float]] | None = None,
    ncols: int = 2,
) -> None:
    """Small multiples of the biomarkers over time, with an optional live point.

    Args:
        fig: Target figure (cleared first).
        df: Biomarkers indexed by time, one column per biomarker.
        units: ``{biomarker: units}``.
        time_units: Units of the time axis.
        live: ``(t, {biomarker: value})`` of the current, not yet recorded state, drawn as a
            marker joined to the recorded curve.
        ncols: Panels per row.
    """
    fig.clear()
    names = list(df.columns)
    n = max(len(names), 1)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    t = df.index.to_numpy()
    for ax, name in zip(axes, names, strict=False):
        v = df[name].to_numpy()
        ax.plot(t, v, lw=1.5, color="C0")
        if live is not None and name in live[1]:
            tl, vl = live[0], float(live[1][name])
            if t.size:
                ax.plot([t[-1], tl], [v[-1], vl], lw=1.0, ls=":", color="C0")
            ax.plot([tl], [vl], "o", ms=4, color="C3")
        ax.set_title(f"{name} ({units.get(name, '')})", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.locator_params(nbins=4)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    for ax in axes[max(len(names), 1) - ncols : max(len(names), 1)]:
        ax.set_xlabel(f"time ({time_units})", fontsize=8)  # the lowest panel of each column


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """Render a figure to PNG bytes (Agg canvas; no pyplot) at ``dpi`` (default the figure's)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi if dpi is None else dpi)
    return buf.getvalue()


#: Palette layout of the animation (indices into a 256-colour GIF palette).
PAL_CELLS = (0, 100)  # cell colour map, 100 levels
PAL_UNDER = (100, 180)  # grey field under cells, 80 levels
PAL_FIELD = (180, 250)  # field alone, 70 levels
PAL_WHITE, PAL_BLACK, PAL_EMPTY = 250, 251, 252


def gif_palette(cell_cmap: str | Colormap, field_cmap: str | Colormap = FIELD_CMAP) -> list[int]:
    """The fixed 256-colour palette of the animation (see the ``PAL_*`` index ranges).

    Args:
        cell_cmap: Colour map of the cells.
        field_cmap: Colour map of a field shown alone.

    Returns:
        768 integers (R, G, B per index) for :meth:`PIL.Image.Image.putpalette`.
    """
    rgb = np.zeros((256, 3))
    for (a, b), cm in (
        (PAL_CELLS, cell_cmap),
        (PAL_UNDER, FIELD_UNDER_CMAP),
        (PAL_FIELD, field_cmap),
    ):
        cmap = colormaps[cm] if isinstance(cm, str) else cm
        rgb[a:b] = cmap(np.linspace(0.0, 1.0, b - a))[:, :3]
    rgb[PAL_WHITE], rgb[PAL_BLACK], rgb[PAL_EMPTY] = (1, 1, 1), (0, 0, 0), EMPTY_RGBA[:3]
    return (np.round(rgb * 255).astype(np.uint8)).ravel().tolist()


def _levels(values: NDArray, limits: tuple[float, float], span: tuple[int, int]) -> NDArray:
    lo, hi = limits
    a, b = span
    x = np.clip((np.nan_to_num(values, nan=lo) - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    return (a + np.round(x * (b - a - 1))).astype(np.uint8)


def tissue_indices(
    cells: NDArray | None,
    field: NDArray | None,
    cell_limits: tuple[float, float],
    field_limits: tuple[float, float],
    scale: int | tuple[int, int] = 1,
) -> NDArray[np.uint8]:
    """Cells over a grey field as palette indices (:func:`gif_palette`), without matplotlib.

    Args:
        cells: Cell state image, shape ``(ny, nx)``, NaN at empty sites.
        field: Field image, shape ``(ny, nx)``, or ``None``.
        cell_limits: Colour limits of the cells.
        field_limits: Colour limits of the field.
        scale: Integer upscaling (nearest neighbour); ``(rows, columns)`` for two factors.

    Returns:
        Index image, shape ``(ny * scale, nx * scale)``, uint8, row 0 at the top (grid y
        flipped, as drawn with the origin at the lower left).
    """
    shape = cells.shape if cells is not None else field.shape  # type: ignore[union-attr]
    if field is not None:
        img = _levels(field, field_limits, PAL_UNDER)
    else:
        img = np.full(shape, PAL_EMPTY, dtype=np.uint8)
    if cells is not None:
        occupied = np.isfinite(cells)
        img = np.where(occupied, _levels(cells, cell_limits, PAL_CELLS), img)
    return _upscale(img[::-1], scale)


def field_indices(
    field: NDArray, limits: tuple[float, float], scale: int | tuple[int, int] = 1
) -> NDArray[np.uint8]:
    """A field alone as palette indices (see :func:`tissue_indices` for the layout)."""
    return _upscale(_levels(field, limits, PAL_FIELD)[::-1], scale)


def _upscale(img: NDArray, scale: int | tuple[int, int]) -> NDArray:
    rows, cols = (scale, scale) if isinstance(scale, int | np.integer) else scale
    if rows > 1:
        img = img.repeat(rows, axis=0)
    if cols > 1:
        img = img.repeat(cols, axis=1)
    return np.ascontiguousarray(img)


def labelled_strip(
    panels: Sequence[NDArray[np.uint8]], text: str, palette: list[int], gap: int = 6
) -> Image.Image:
    """Place index-image panels side by side under a line of text (one animation frame).

    Args:
        panels: Palette-index images of equal height, each ``(h, w_i)``.
        text: Caption drawn above the panels (e.g. the time).
        palette: The palette (:func:`gif_palette`).
        gap: Pixels between panels.

    Returns:
        A Pillow image in palette mode.
    """
    h = max(p.shape[0] for p in panels)
    w = sum(p.shape[1] for p in panels) + gap * (len(panels) + 1)
    top = 18
    canvas = np.full((h + top + gap, w), PAL_WHITE, dtype=np.uint8)
    x = gap
    for p in panels:
        canvas[top : top + p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    img = Image.fromarray(canvas, mode="P")
    img.putpalette(palette)
    ImageDraw.Draw(img).text((gap, 3), text, fill=PAL_BLACK)
    return img


#: Resolution of the live figures (dots per inch); the browser shows them at this size.
LIVE_DPI = 80
#: Pseudo-species that colours cells by their phenotype label.
PHENOTYPE = "phenotype"
#: Field choice that draws no field.
NO_FIELD = "none"


def _live_axes(size: float) -> tuple[Figure, Axes, list[Axes]]:
    # A fixed layout (no layout engine): repainting is then mostly rasterising.
    fig = Figure(figsize=(size * 1.15, size), dpi=LIVE_DPI)
    fig.subplots_adjust(left=0.13, right=0.86, bottom=0.2, top=0.93)
    ax = fig.subplots()
    divider = make_axes_locatable(ax)
    cbar_axes = [
        divider.append_axes("right", size=0.15, pad=0.1),
        divider.append_axes("right", size=0.15, pad=0.85),
    ]
    return fig, ax, cbar_axes


def _hide_unused(cbar_axes: Sequence[Axes]) -> None:
    for cax in cbar_axes:
        if not cax.collections and not cax.images:
            cax.set_visible(False)


def tissue_view_figure(
    frame: GridFrame,
    color_by: str,
    field: str,
    kind_names: Sequence[str],
    units: Mapping[str, str],
    time_units: str,
    cell_limits: tuple[float, float] | None = None,
    size: float = 5.2,
) -> Figure:
    """The live grid view: cells coloured by a state or phenotype over a field heatmap.

    Args:
        frame: The tissue at one time: a 2-D frame or a section of a 3-D one
            (:meth:`~biohybrid.viz.frames.GridFrame.section`).
        color_by: A species name or :data:`PHENOTYPE`.
        field: A field name or :data:`NO_FIELD`.
        kind_names: Phenotype labels, indexed by ``frame.kinds`` codes.
        units: ``{species or field: units}``.
        time_units: Units of time, for the title.
        cell_limits: Colour limits of the cells; default from the frame.
        size: Figure width in inches.

    Returns:
        The figure.
    """
    fig, ax, cbar_axes = _live_axes(size)
    fimg = frame.fields.get(field) if field != NO_FIELD else None
    if color_by == PHENOTYPE:
        cells, kinds = None, frame.kinds
    else:
        cells, kinds = frame.species[color_by], None
    draw_tissue(
        ax,
        cells=cells,
        kinds=kinds,
        kind_names=kind_names,
        field=fimg,
        dx=(frame.spacing[0], frame.spacing[1]),
        cell_label=_with_units(color_by, units) if cells is not None else "",
        field_label=_with_units(field, units) if fimg is not None else "",
        cell_limits=cell_limits,
        cbar_axes=cbar_axes,
        axis_labels=frame_axis_labels(frame),
    )
    _hide_unused(cbar_axes)
    ax.set_title(frame_title(frame, time_units), fontsize=10)
    return fig


def kymograph_view_figure(
    frames: Sequence[GridFrame],
    color_by: str,
    field: str,
    kind_names: Sequence[str],
    units: Mapping[str, str],
    time_units: str,
    size: float = 5.2,
) -> Figure:
    """The live 1-D view: a kymograph (position across, time up) of the latest frames.

    Args:
        frames: 1-D frames in time order (e.g. a :class:`~biohybrid.viz.frames.FrameWindow`).
        color_by: A species name or :data:`PHENOTYPE`.
        field: A field name or :data:`NO_FIELD`.
        kind_names: Phenotype labels, indexed by the frames' ``kinds`` codes.
        units: ``{species or field: units}``.
        time_units: Units of time.
        size: Figure width in inches.

    Returns:
        The figure; its top row is the latest frame.
    """
    fig, ax, cbar_axes = _live_axes(size)
    if color_by == PHENOTYPE:
        times, kinds = kymograph(frames, "kinds")
        cells = None
    else:
        times, cells = kymograph(frames, "species", color_by)
        kinds = None
    fimg = kymograph(frames, "fields", field)[1] if field != NO_FIELD else None
    draw_tissue(
        ax,
        cells=cells,
        kinds=kinds,
        kind_names=kind_names,
        field=fimg,
        dx=frames[-1].dx,
        cell_label=_with_units(color_by, units) if cells is not None else "",
        field_label=_with_units(field, units) if fimg is not None else "",
        cbar_axes=cbar_axes,
        axis_labels=("x (µm)", f"time ({time_units})"),
        y_edges=time_edges(times),
    )
    _hide_unused(cbar_axes)
    ax.set_title(f"{frame_title(frames[-1], time_units)} · last {len(frames)} steps", fontsize=10)
    return fig


def _with_units(name: str, units: Mapping[str, str]) -> str:
    u = units.get(name, "")
    return f"{name} ({u})" if u else name


def biomarker_figure(
    df: pd.DataFrame,
    units: Mapping[str, str],
    time_units: str,
    live: tuple[float, Mapping[str, float]] | None = None,
    width: float = 6.0,
) -> Figure:
    """The live biomarker panels (see :func:`draw_biomarkers`)."""
    n = max(len(df.columns), 1)
    rows = int(np.ceil(n / min(2, n)))
    height = 1.7 * rows + 0.4
    fig = Figure(figsize=(width, height), dpi=LIVE_DPI)
    draw_biomarkers(fig, df, units, time_units, live=live)
    fig.subplots_adjust(
        left=0.1, right=0.98, bottom=0.45 / height, top=1 - 0.3 / height, hspace=0.55, wspace=0.3
    )
    return fig


class TissuePainter:
    """The live grid figure, updated in place between repaints.

    Rebuilding a figure costs more than drawing it (axes, ticks, colour bars, and a new
    renderer whose text-layout cache starts empty), so the figure is built once per choice of
    colouring and field and later repaints only swap the image data and colour limits.
    """

    def __init__(self) -> None:
        self.fig: Figure | None = None
        self._key: tuple | None = None

    def paint(
        self,
        frame: GridFrame,
        color_by: str,
        field: str,
        kind_names: Sequence[str],
        units: Mapping[str, str],
        time_units: str,
    ) -> Figure:
        """Return the figure showing ``frame`` (see :func:`tissue_view_figure`)."""
        fimg = frame.fields.get(field) if field != NO_FIELD else None
        key = (
            color_by,
            field,
            frame.kinds.shape,
            frame.axes,
            frame.spacing,
            tuple(kind_names) if color_by == PHENOTYPE else (),
        )
        if key != self._key or self.fig is None:
            self.fig = tissue_view_figure(frame, color_by, field, kind_names, units, time_units)
            self._key = key
            return self.fig
        ax = self.fig.axes[0]
        images = list(ax.images)
        if fimg is not None:
            images[0].set_data(fimg)
            images[0].set_clim(*color_limits(fimg))
        top = images[-1]
        if color_by == PHENOTYPE:
            top.set_data(np.ma.masked_less(frame.kinds, 0))
        else:
            cells = frame.species[color_by]
            top.set_data(np.ma.masked_invalid(cells))
            top.set_clim(*color_limits(cells))
        ax.set_title(frame_title(frame, time_units), fontsize=10)
        return self.fig


class BiomarkerPainter:
    """The live biomarker figure, updated in place between repaints (see TissuePainter)."""

    def __init__(self) -> None:
        self.fig: Figure | None = None
        self._key: tuple | None = None

    def paint(
        self,
        df: pd.DataFrame,
        units: Mapping[str, str],
        time_units: str,
        live: tuple[float, Mapping[str, float]] | None = None,
    ) -> Figure:
        """Return the figure showing ``df`` and the live point (see :func:`biomarker_figure`)."""
        key = (tuple(df.columns), live is not None)
        if key != self._key or self.fig is None:
            self.fig = biomarker_figure(df, units, time_units, live)
            self._key = key
            return self.fig
        t = df.index.to_numpy()
        for ax, name in zip(self.fig.axes, df.columns, strict=False):
            v = df[name].to_numpy()
            lines = ax.get_lines()
            lines[0].set_data(t, v)
            if live is not None and len(lines) >= 3:
                tl, vl = live[0], float(live[1][name])
                lines[1].set_data([t[-1], tl], [v[-1], vl])
                lines[2].set_data([tl], [vl])
            ax.relim()
            ax.autoscale_view()
        return self.fig
