"""Run figures: snapshots at a few times and an animation of the run, in 1, 2 or 3 dimensions.

Called by the runner after ``model.write_outputs(run_dir)`` with the frames a
:class:`~biohybrid.viz.frames.FrameRecorder` kept during the run; writes into
``run_dir / "figures"``:

* 2-D: ``snapshots.png``, the grid (cells coloured by the display species over the first
  field) and each field alone at four times spread over the run, on shared colour scales;
  ``animation.gif``, the grid (and the first field) at every kept frame.
* 1-D (a cable): ``kymograph.png``, position × time images of the display species (over
  the first field) and of each field; ``snapshots.png``, their profiles at four times;
  ``animation.gif``, the kymograph growing one kept frame at a time.
* 3-D: ``snapshots.png``, the x-y, x-z and y-z planes of the cells (over the first field)
  through the display point and the x-y plane of each field, at four times;
  ``animation.gif``, the three planes at every kept frame.

Runs on a single site (no spatial output) get none of them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from biohybrid.io import atomic_write_bytes
from biohybrid.viz import access
from biohybrid.viz.colors import CELL_CMAP, color_limits, species_cmap
from biohybrid.viz.frames import PLANES, FrameRecorder, GridFrame, flat, kymograph, time_edges
from biohybrid.viz.render import (
    PAL_WHITE,
    draw_tissue,
    field_indices,
    figure_png,
    frame_axis_labels,
    gif_palette,
    labelled_strip,
    tissue_indices,
)

if TYPE_CHECKING:
    from biohybrid.model import HybridModel

#: Target size (pixels) of the longer side of each animation panel.
GIF_SIDE = 240
#: Milliseconds per animation frame.
GIF_FRAME_MS = 120


def display_species(
    species: Sequence[str], frames: Sequence[GridFrame], preferred: str = ""
) -> str:
    """The species to colour cells by: the model's choice, a messenger, else the most variable.

    Args:
        species: Species names, in state order.
        frames: Frames over the run.
        preferred: The model's ``display_species`` attribute, if any.

    Returns:
        ``preferred`` if it is a species; else the first species named like a second
        messenger that has its own colour map (Ca²⁺, cAMP; see
        :func:`~biohybrid.viz.colors.species_cmap`); else the species with the largest
        spread (range over all frames relative to its mean magnitude), first on ties.
    """
    if preferred in species:
        return preferred
    for name in species:
        if species_cmap(name) != CELL_CMAP:
            return name
    best, score = species[0], 0.0
    for name in species:
        finite = np.concatenate([flat(f.species[name]) for f in frames])
        finite = finite[np.isfinite(finite)]
        if finite.size < 2:
            continue
        spread = float(finite.max() - finite.min())
        s = spread / (float(np.mean(np.abs(finite))) + 1e-12)
        if s > score + 1e-9:
            best, score = name, s
    return best


def pick_frames(frames: Sequence[GridFrame], n: int = 4) -> list[GridFrame]:
    """``n`` frames evenly spread over the run, always including the first and the last."""
    if len(frames) <= n:
        return list(frames)
    idx = np.unique(np.round(np.linspace(0, len(frames) - 1, n)).astype(int))
    return [frames[i] for i in idx]


def _label(name: str, units: dict[str, str]) -> str:
    return f"{name} ({units.get(name, '')})"


def _limits(frames: Sequence[GridFrame], layer: str, name: str) -> tuple[float, float]:
    return color_limits(*[flat(getattr(f, layer)[name]) for f in frames])


def snapshot_figure(
    frames: Sequence[GridFrame],
    species: str,
    units: dict[str, str],
    time_units: str,
    title: str = "",
) -> Figure:
    """The tissue at a few times on shared colour scales (any dimension).

    Args:
        frames: The frames to show (one column each; 1-D: one line each).
        species: Species colouring the cells.
        units: ``{species or field: units}`` for labels.
        time_units: Units of time.
        title: Figure title.

    Returns:
        2-D: one row for the grid (over the first field) and one per field. 3-D: one row per
        plane of the cells (over the first field, through the frames' point) and one per
        field (its x-y plane). 1-D: see :func:`profile_figure`.
    """
    if frames[0].ndim == 1:
        return profile_figure(frames, species, units, time_units, title)
    fields = list(frames[0].fields)
    under = fields[0] if fields else None
    if frames[0].ndim == 3:
        rows = [(None, plane) for plane in PLANES] + [(name, "x-y") for name in fields]
    else:
        rows = [(None, None)] + [(name, None) for name in fields]
    n_cell_rows = sum(name is None for name, _ in rows)
    nrows, ncols = len(rows), len(frames)
    fig = Figure(figsize=(2.9 * ncols + 1.2, 2.9 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    clim = _limits(frames, "species", species)
    flims = {name: _limits(frames, "fields", name) for name in fields}
    for c, full in enumerate(frames):
        last = c == ncols - 1
        for r, (name, plane) in enumerate(rows):
            frame = full.section(plane) if plane else full
            ax = axes[r, c]
            common = dict(
                dx=(frame.spacing[0], frame.spacing[1]),
                colorbars=last,
                axis_labels=frame_axis_labels(frame),
            )
            if name is None:
                draw_tissue(
                    ax,
                    cells=frame.species[species],
                    field=frame.fields[under] if under else None,
                    cell_label=_label(species, units),
                    field_label=_label(under, units) if under else "",
                    cell_limits=clim,
                    field_limits=flims.get(under) if under else None,
                    legend=last and r == n_cell_rows - 1,
                    **common,
                )
                where = f" · {frame.where}" if frame.where else f" · {frame.n_cells} cells"
                ax.set_title(f"t = {frame.t:g} {time_units}{where}", fontsize=9)
            else:
                draw_tissue(
                    ax,
                    field=frame.fields[name],
                    field_label=_label(name, units),
                    field_limits=flims[name],
                    legend=False,
                    **common,
                )
                where = f", {frame.where}" if frame.where else ""
                ax.set_title(f"{name}, t = {frame.t:g} {time_units}{where}", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def profile_figure(
    frames: Sequence[GridFrame],
    species: str,
    units: dict[str, str],
    time_units: str,
    title: str = "",
) -> Figure:
    """1-D snapshots: the display species and each field along the cable at a few times.

    Args:
        frames: 1-D frames (one line each, coloured by time).
        species: Species of the cells.
        units: ``{species or field: units}``.
        time_units: Units of time.
        title: Figure title.

    Returns:
        One panel for the cells (gaps at empty sites) and one per field.
    """
    names = [("species", species)] + [("fields", name) for name in frames[0].fields]
    fig = Figure(figsize=(4.6 * len(names) + 0.4, 3.4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    colors = colormaps["viridis"](np.linspace(0.0, 0.9, len(frames)))
    for ax, (layer, name) in zip(axes, names, strict=True):
        for f, color in zip(frames, colors, strict=True):
            x = (np.arange(f.shape[0]) + 0.5) * f.dx
            ax.plot(x, getattr(f, layer)[name], color=color, lw=1.4, label=f"t = {f.t:g}")
        ax.set_xlabel("x (µm)")
        ax.set_title(("cells: " if layer == "species" else "field: ") + _label(name, units))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title=time_units, title_fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def kymograph_figure(
    frames: Sequence[GridFrame],
    species: str,
    units: dict[str, str],
    time_units: str,
    title: str = "",
) -> Figure:
    """1-D: position × time images of the cells (over the first field) and of each field.

    Args:
        frames: 1-D frames in time order; each is one row, drawn at its time.
        species: Species colouring the cells.
        units: ``{species or field: units}``.
        time_units: Units of time (vertical axis).
        title: Figure title.

    Returns:
        One panel per image, side by side, time increasing upwards.
    """
    fields = list(frames[0].fields)
    under = fields[0] if fields else None
    fig = Figure(figsize=(4.4 * (1 + len(fields)) + 0.6, 4.6), layout="constrained")
    axes = fig.subplots(1, 1 + len(fields), squeeze=False)[0]
    times, cells = kymograph(frames, "species", species)
    edges = time_edges(times)
    fkymo = {name: kymograph(frames, "fields", name)[1] for name in fields}
    labels = ("x (µm)", f"time ({time_units})")
    draw_tissue(
        axes[0],
        cells=cells,
        field=fkymo[under] if under else None,
        dx=frames[0].dx,
        cell_label=_label(species, units),
        field_label=_label(under, units) if under else "",
        axis_labels=labels,
        y_edges=edges,
    )
    axes[0].set_title(f"cells: {species}", fontsize=10)
    for ax, name in zip(axes[1:], fields, strict=True):
        draw_tissue(
            ax, field=fkymo[name], dx=frames[0].dx, field_label=_label(name, units),
            axis_labels=labels, y_edges=edges, legend=False,
        )  # fmt: skip
        ax.set_title(f"field: {name}", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def _scale(side: int, *sizes: int) -> int:
    return max(1, side // max(sizes))


def _gif_panels(
    frames: Sequence[GridFrame], species: str, under: str | None, time_units: str, side: int
) -> Iterator[tuple[list[np.ndarray], str]]:
    """``(panels, caption)`` per animation frame, as palette indices (see :func:`gif_palette`)."""
    clim = _limits(frames, "species", species)
    flim = _limits(frames, "fields", under) if under else (0.0, 1.0)
    right = f"   right: {under}" if under else ""
    nd = frames[0].ndim
    if nd == 1:  # the kymograph grows by one row per frame; rows still to come are white
        _, cells = kymograph(frames, "species", species)
        fk = kymograph(frames, "fields", under)[1] if under else None
        n_t, nx = cells.shape
        scale = (_scale(side, n_t), _scale(side, nx))
        full = [tissue_indices(cells, fk, clim, flim, scale)]
        if fk is not None:
            full.append(field_indices(fk, flim, scale))
        for m, f in enumerate(frames):
            panels = []
            for p in full:
                q = p.copy()
                q[: (n_t - 1 - m) * scale[0]] = PAL_WHITE
                panels.append(q)
            yield panels, f"t = {f.t:g} {time_units} (time up)   cells: {species}{right}"
        return
    for f in frames:
        sections = [f.section(plane) for plane in PLANES] if nd == 3 else [f]
        scale = _scale(side, *f.shape)
        panels = [
            tissue_indices(s.species[species], s.fields.get(under), clim, flim, scale)
            for s in sections
        ]
        if under:
            panels.append(field_indices(sections[0].fields[under], flim, scale=scale))
        if nd == 3:
            where = f"   right: {under} (x-y)" if under else ""
            caption = f"t = {f.t:g} {time_units}   cells: {species} in x-y | x-z | y-z{where}"
        else:
            caption = f"t = {f.t:g} {time_units}   cells: {species}{right}"
        yield panels, caption


def animation_gif(
    frames: Sequence[GridFrame], species: str, time_units: str, side: int = GIF_SIDE
) -> bytes:
    """An animated GIF of the run: one animation frame per kept frame.

    2-D: the grid (cells over the first field) and the first field alone. 3-D: the x-y, x-z
    and y-z planes of the cells over the first field, then the field's x-y plane (one square
    per site, whatever the spacing). 1-D: the kymograph (cells over the first field, and the
    field) growing upwards one row per frame.
    Rendered with numpy and Pillow only (no matplotlib), so it stays cheap for many frames.

    Args:
        frames: The frames, in time order.
        species: Species colouring the cells.
        time_units: Units of time, for the caption.
        side: Target pixels of the longer side of a panel (integer nearest-neighbour
            upscaling; a panel is never shrunk below one pixel per stored site).

    Returns:
        The GIF file's bytes.
    """
    fields = list(frames[0].fields)
    under = fields[0] if fields else None
    palette = gif_palette(species_cmap(species))
    images = [
        labelled_strip(panels, caption, palette)
        for panels, caption in _gif_panels(frames, species, under, time_units, side)
    ]
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=GIF_FRAME_MS,
        loop=0,
        optimize=False,
    )
    return buf.getvalue()


def write_run_figures(
    model: HybridModel, run_dir: Path, frames: FrameRecorder | None
) -> list[Path]:
    """Write the snapshots, the animation and (1-D) the kymograph of a run.

    Args:
        model: The model at the end of the run.
        run_dir: The run folder; files go into ``run_dir / "figures"``.
        frames: The frames kept during the run (``None`` for a run without spatial output).

    Returns:
        The files written.
    """
    if frames is None or access.lattice(model).n_sites <= 1:
        return []
    frames.observe(model, final=True)
    out = Path(run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    kept = frames.frames
    species = display_species(access.species(model), kept, getattr(model, "display_species", ""))
    units = access.units(model)
    name, tu = model.name, model.time_units
    written = []

    def save(filename: str, data: bytes) -> None:
        atomic_write_bytes(out / filename, data)
        written.append(out / filename)

    if kept[0].ndim == 1:
        fig = kymograph_figure(kept, species, units, tu, title=f"{name}: kymograph")
        save("kymograph.png", figure_png(fig, dpi=80))
    what = {1: "profiles", 2: "grid and fields", 3: "orthogonal planes"}[kept[0].ndim]
    fig = snapshot_figure(pick_frames(kept, 4), species, units, tu, title=f"{name}: {what}")
    save("snapshots.png", figure_png(fig, dpi=80))
    save("animation.gif", animation_gif(kept, species, tu))
    return written
