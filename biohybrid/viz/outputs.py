"""Run figures: grid and field snapshots at a few times and an animation of the run.

Called by the runner after ``model.write_outputs(run_dir)`` with the frames a
:class:`~biohybrid.viz.frames.FrameRecorder` kept during the run; writes into
``run_dir / "figures"``:

* ``snapshots.png``: the grid (cells coloured by the display species over the first field)
  and each field alone, at four times spread over the run, on shared colour scales;
* ``animation.gif``: the grid (and the first field) at every kept frame.

Runs on a 1×1 grid (no spatial output) get neither.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from biohybrid.io import atomic_write_bytes
from biohybrid.viz.colors import CELL_CMAP, color_limits, species_cmap
from biohybrid.viz.frames import FrameRecorder, GridFrame
from biohybrid.viz.render import (
    draw_tissue,
    field_indices,
    figure_png,
    gif_palette,
    labelled_strip,
    tissue_indices,
)

if TYPE_CHECKING:
    from biohybrid.model import HybridModel

#: Target size (pixels) of the longer grid side in the animation.
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
        finite = np.concatenate([f.species[name][np.isfinite(f.species[name])] for f in frames])
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


def snapshot_figure(
    frames: Sequence[GridFrame],
    species: str,
    units: dict[str, str],
    time_units: str,
    title: str = "",
) -> Figure:
    """Grid and fields at a few times on shared colour scales.

    Args:
        frames: The frames to show (one column each).
        species: Species colouring the cells.
        units: ``{species or field: units}`` for labels.
        time_units: Units of time.
        title: Figure title.

    Returns:
        A figure with one row for the grid (over the first field) and one per field.
    """
    fields = list(frames[0].fields)
    nrows, ncols = 1 + len(fields), len(frames)
    fig = Figure(figsize=(2.9 * ncols + 1.2, 2.9 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    clim = color_limits(*[f.species[species] for f in frames])
    flims = {name: color_limits(*[f.fields[name] for f in frames]) for name in fields}
    clabel = f"{species} ({units.get(species, '')})"
    for c, frame in enumerate(frames):
        last = c == ncols - 1
        under = fields[0] if fields else None
        draw_tissue(
            axes[0, c],
            cells=frame.species[species],
            field=frame.fields[under] if under else None,
            dx=frame.dx,
            cell_label=clabel,
            field_label=f"{under} ({units.get(under, '')})" if under else "",
            cell_limits=clim,
            field_limits=flims.get(under) if under else None,
            colorbars=last,
            legend=last,
        )
        axes[0, c].set_title(f"t = {frame.t:g} {time_units} · {frame.n_cells} cells", fontsize=9)
        for r, name in enumerate(fields, start=1):
            draw_tissue(
                axes[r, c],
                field=frame.fields[name],
                dx=frame.dx,
                field_label=f"{name} ({units.get(name, '')})",
                field_limits=flims[name],
                colorbars=last,
                legend=False,
            )
            axes[r, c].set_title(f"{name}, t = {frame.t:g} {time_units}", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def animation_gif(
    frames: Sequence[GridFrame], species: str, time_units: str, side: int = GIF_SIDE
) -> bytes:
    """An animated GIF of the grid (cells over the first field) and the first field alone.

    Rendered with numpy and Pillow only (no matplotlib), so it stays cheap for many frames.

    Args:
        frames: The frames, in time order.
        species: Species colouring the cells.
        time_units: Units of time, for the caption.
        side: Target pixels of the longer grid side (integer nearest-neighbour upscaling).

    Returns:
        The GIF file's bytes.
    """
    ny, nx = frames[0].kinds.shape
    scale = max(1, side // max(nx, ny))
    fields = list(frames[0].fields)
    under = fields[0] if fields else None
    clim = color_limits(*[f.species[species] for f in frames])
    flim = color_limits(*[f.fields[under] for f in frames]) if under else (0.0, 1.0)
    palette = gif_palette(species_cmap(species))
    images = []
    for f in frames:
        panels = [tissue_indices(f.species[species], f.fields.get(under), clim, flim, scale)]
        if under:
            panels.append(field_indices(f.fields[under], flim, scale=scale))
        caption = f"t = {f.t:g} {time_units}   cells: {species}" + (
            f"   right: {under}" if under else ""
        )
        images.append(labelled_strip(panels, caption, palette))
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
    """Write the grid snapshots and the animation of a run into ``run_dir / "figures"``.

    Args:
        model: The model at the end of the run.
        run_dir: The run folder.
        frames: The frames kept during the run (``None`` for a run without spatial output).

    Returns:
        The files written.
    """
    if frames is None or model.nx * model.ny <= 1:
        return []
    frames.observe(model, final=True)
    out = Path(run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    species = display_species(
        list(model.table.species), frames.frames, getattr(model, "display_species", "")
    )
    units = dict(getattr(model.system, "units", {}) or {})
    if model.tissue is not None:
        units.update({n: s.units for n, s in model.tissue.specs.items()})
    written = []
    fig = snapshot_figure(
        pick_frames(frames.frames, 4),
        species,
        units,
        model.time_units,
        title=f"{model.name}: grid and fields",
    )
    atomic_write_bytes(out / "snapshots.png", figure_png(fig, dpi=80))
    written.append(out / "snapshots.png")
    atomic_write_bytes(
        out / "animation.gif", animation_gif(frames.frames, species, model.time_units)
    )
    written.append(out / "animation.gif")
    return written
