"""Grid frames: the tissue's state as images, captured from a model at output steps.

A :class:`GridFrame` holds, for one time, every intracellular species as an image over the
grid (NaN where a site is empty), the phenotype of each site as an integer code, and every
tissue field as an image. :class:`FrameRecorder` keeps a bounded number of frames over a run
(at most ``max_frames``, by doubling its stride and dropping every other frame when full),
so memory stays bounded whatever ``t_end / dt_output`` is; very large grids are stored
subsampled to at most ``max_side`` pixels per side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from biohybrid.model import HybridModel


@dataclass(frozen=True)
class GridFrame:
    """The tissue at one time, as images of shape ``(ny', nx')`` (row ``j`` = grid y).

    Attributes:
        t: Model time, in the model's time units.
        species: ``{species: image}``, float32, NaN at empty sites.
        kinds: Phenotype code per site, int16, ``-1`` at empty sites; codes index
            :attr:`FrameRecorder.kinds` (or the ``kind_names`` given to :func:`capture`).
        fields: ``{field: image}``, float32.
        dx: Pixel spacing in µm (grid spacing × stride).
    """

    t: float
    species: dict[str, NDArray[np.float32]]
    kinds: NDArray[np.int16]
    fields: dict[str, NDArray[np.float32]]
    dx: float

    @property
    def n_cells(self) -> int:
        """Number of occupied pixels."""
        return int(np.count_nonzero(self.kinds >= 0))


def site_image(
    sites: NDArray[np.int64], values: NDArray, nx: int, ny: int, fill: float = np.nan
) -> NDArray[np.float64]:
    """Scatter per-cell values onto the grid.

    Args:
        sites: Flat site index ``i + nx * j`` of each cell, shape ``(N,)``.
        values: One value per cell, shape ``(N,)``.
        nx: Grid width.
        ny: Grid height.
        fill: Value of empty sites.

    Returns:
        Image of shape ``(ny, nx)``.
    """
    img = np.full(nx * ny, fill, dtype=float)
    img[np.asarray(sites, dtype=np.int64)] = values
    return img.reshape(ny, nx)


def stride_for(nx: int, ny: int, max_side: int) -> int:
    """Integer subsampling stride that keeps both sides at most ``max_side`` pixels."""
    return max(1, math.ceil(max(nx, ny) / max_side))


def capture(
    model: HybridModel, kind_names: list[str] | None = None, max_side: int = 400
) -> GridFrame:
    """Capture the model's grid, cell states, phenotypes and fields as images.

    Args:
        model: The model.
        kind_names: Known phenotype labels; labels not yet in it are appended (in place),
            so codes stay stable over a run.
        max_side: Largest stored image side; bigger grids are subsampled by a stride.

    Returns:
        The frame.
    """
    kind_names = [] if kind_names is None else kind_names
    nx, ny = model.nx, model.ny
    s = stride_for(nx, ny, max_side)
    table = model.table
    rows = table.live_rows()
    sites = table.attrs["site"][rows].astype(np.int64)
    y = table.get(rows)
    species = {
        name: site_image(sites, y[:, c], nx, ny)[::s, ::s].astype(np.float32)
        for c, name in enumerate(table.species)
    }
    labels = [model.agent_at_row(int(r)).kind for r in rows]
    codes = np.empty(rows.size, dtype=np.int64)
    index = {k: i for i, k in enumerate(kind_names)}
    for label in dict.fromkeys(labels):
        if label not in index:
            index[label] = len(kind_names)
            kind_names.append(label)
    if rows.size:
        codes[:] = [index[k] for k in labels]
    kinds = site_image(sites, codes, nx, ny, fill=-1)[::s, ::s].astype(np.int16)
    fields = {}
    if model.tissue is not None:
        fields = {
            name: model.tissue.grid(name)[::s, ::s].astype(np.float32)
            for name in model.tissue.names
        }
    return GridFrame(t=float(model.t), species=species, kinds=kinds, fields=fields, dx=model.dx * s)


@dataclass
class FrameRecorder:
    """Keep a bounded, evenly spaced set of frames over a run (one per output step at most).

    Call :meth:`observe` after every tick; a frame is captured whenever the model has
    recorded a new biomarker row and the output index falls on the current stride. When
    more than ``max_frames`` are held, every other frame is dropped and the stride doubles.

    Args:
        max_frames: Most frames held at once (memory bound).
        max_side: Largest stored image side (see :func:`capture`).

    Attributes:
        frames: The frames, in time order.
        kinds: Phenotype labels, indexed by the frames' ``kinds`` codes.
        stride: Output steps between kept frames.
    """

    max_frames: int = 60
    max_side: int = 400
    frames: list[GridFrame] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    stride: int = 1
    _outputs_seen: int = 0

    @classmethod
    def for_model(cls, model: HybridModel, **kwargs: int) -> FrameRecorder | None:
        """A recorder that has captured the initial state, or ``None`` for a 1×1 grid."""
        if model.nx * model.ny <= 1:
            return None
        rec = cls(**kwargs)
        rec.observe(model)
        return rec

    def observe(self, model: HybridModel, final: bool = False) -> None:
        """Capture a frame if the model has recorded a new output step on the stride.

        Args:
            model: The model, after a tick.
            final: Capture the current state regardless of the stride (end of a run),
                unless it is already the last frame.
        """
        n = len(model.recorder.times)
        if final:
            if not self.frames or self.frames[-1].t != model.t:
                self.frames.append(capture(model, self.kinds, self.max_side))
            return
        if n == self._outputs_seen:
            return
        index = n - 1
        self._outputs_seen = n
        if index % self.stride:
            return
        self.frames.append(capture(model, self.kinds, self.max_side))
        if len(self.frames) > self.max_frames:
            self.frames = self.frames[::2]
            self.stride *= 2
