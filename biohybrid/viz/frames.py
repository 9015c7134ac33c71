"""Grid frames: the tissue's state as images, captured from a model at output steps.

A :class:`GridFrame` holds, for one time, every intracellular species as an image over the
lattice (NaN where a site is empty), the phenotype of each site as an integer code, and every
tissue field as an image. Images are per-site arrays in row-major display order, the last
index along x: shape ``(nx,)`` in 1-D, ``(ny, nx)`` in 2-D (row ``j`` = grid y) and
``(nz, ny, nx)`` in 3-D, i.e. ``lattice.image(values).T``.

A 3-D frame whose arrays would take more than :data:`VOLUME_BYTES` keeps only the three
orthogonal planes through one point (:class:`Planes`) instead of the volume;
:meth:`GridFrame.section` turns either into a 2-D frame that every 2-D view draws.

:class:`FrameRecorder` keeps a bounded number of frames over a run (at most ``max_frames``,
by doubling its stride and dropping every other frame when full), so memory stays bounded
whatever ``t_end / dt_output`` is; very large lattices are stored subsampled to at most
``max_side`` pixels per side. :class:`FrameWindow` keeps the latest frames of a live view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import UserError, list_choices
from biohybrid.viz import access

if TYPE_CHECKING:
    from biohybrid.model import HybridModel

#: The orthogonal planes of a 3-D lattice, named by their in-plane axes.
PLANES: tuple[str, ...] = ("x-y", "x-z", "y-z")
#: The lattice axis normal to each plane (0 = x, 1 = y, 2 = z).
NORMAL_AXIS: dict[str, int] = {"x-y": 2, "x-z": 1, "y-z": 0}
#: Axis names, in lattice order.
AXES: tuple[str, ...] = ("x", "y", "z")
#: Largest 3-D frame (bytes over all its arrays) stored as whole volumes; larger frames keep
#: only three planes, so 60 frames stay within ~30 MiB whatever the lattice.
VOLUME_BYTES = 2**19


@dataclass(frozen=True)
class Planes:
    """The three orthogonal planes of a volume through one point.

    Attributes:
        xy: Shape ``(ny, nx)``, at ``z = point[2]``.
        xz: Shape ``(nz, nx)``, at ``y = point[1]``.
        yz: Shape ``(nz, ny)``, at ``x = point[0]``.
        point: ``(i, j, k)`` the planes pass through.
    """

    xy: NDArray
    xz: NDArray
    yz: NDArray
    point: tuple[int, int, int]

    @classmethod
    def of(cls, volume: NDArray, point: Sequence[int]) -> Planes:
        """The planes of ``volume`` (shape ``(nz, ny, nx)``) through ``point = (i, j, k)``."""
        i, j, k = (int(p) for p in point)
        return cls(
            xy=np.ascontiguousarray(volume[k]),
            xz=np.ascontiguousarray(volume[:, j, :]),
            yz=np.ascontiguousarray(volume[:, :, i]),
            point=(i, j, k),
        )

    @property
    def dtype(self) -> np.dtype:
        """The planes' dtype."""
        return self.xy.dtype

    def ravel(self) -> NDArray:
        """All stored values, flat (sites on the lines where planes cross appear twice)."""
        return np.concatenate([self.xy.ravel(), self.xz.ravel(), self.yz.ravel()])


#: A frame's array: an image of the lattice, or (3-D, large) its three planes.
Image = Union[NDArray, Planes]  # noqa: UP007 (a runtime alias)


def flat(data: Image) -> NDArray:
    """The values of an image or of stored planes, flat (for colour limits and statistics)."""
    return data.ravel() if isinstance(data, Planes) else np.asarray(data).ravel()


def _check_plane(plane: str) -> int:
    if plane not in NORMAL_AXIS:
        raise UserError(f"unknown plane {plane!r}; planes are: {list_choices(PLANES)}.")
    return NORMAL_AXIS[plane]


def section(data: Image, plane: str, index: int) -> NDArray:
    """A 2-D image of one plane of a 3-D image.

    Args:
        data: A volume of shape ``(nz, ny, nx)`` or stored :class:`Planes`.
        plane: One of :data:`PLANES`.
        index: Coordinate along the plane's normal axis (``k`` for ``"x-y"``).

    Returns:
        ``(ny, nx)`` for ``"x-y"``, ``(nz, nx)`` for ``"x-z"``, ``(nz, ny)`` for ``"y-z"``;
        rows along the second named axis, columns along the first.

    Raises:
        UserError: Unknown plane, index outside the lattice, or (stored planes) an index
            other than the stored point's.
    """
    axis = _check_plane(plane)
    if isinstance(data, Planes):
        if index != data.point[axis]:
            raise UserError(
                f"this frame keeps only the planes through {data.point};"
                f" the {plane} plane is at {AXES[axis]} index {data.point[axis]}, not {index}."
            )
        return {"x-y": data.xy, "x-z": data.xz, "y-z": data.yz}[plane]
    n = data.shape[2 - axis]
    if not 0 <= index < n:
        raise UserError(f"{AXES[axis]} index must be in 0..{n - 1}, got {index}.")
    if plane == "x-y":
        return data[index]
    if plane == "x-z":
        return data[:, index, :]
    return data[:, :, index]


@dataclass(frozen=True)
class GridFrame:
    """The tissue at one time, as images (see the module docstring for their layout).

    Attributes:
        t: Model time, in the model's time units.
        species: ``{species: image}``, float32, NaN at empty sites.
        kinds: Phenotype code per site, int16, ``-1`` at empty sites; codes index
            :attr:`FrameRecorder.kinds` (or the ``kind_names`` given to :func:`capture`).
        fields: ``{field: image}``, float32.
        dx: Pixel spacing along the image columns, µm (grid spacing × stride).
        spacing: Pixel spacing per axis of the frame, µm (default ``dx`` on each).
        shape: Sites per axis of the frame, in lattice order (``(nx, ny)`` for an image
            ``(ny, nx)``); default from ``kinds``.
        point: 3-D: the point the default sections pass through, frame coordinates.
        stride: Lattice sites per frame pixel along each axis.
        axes: Names of the axes of the frame (``("x", "y")``; ``("x", "z")`` for a section).
        where: For a section: where it lies (the centre of its sites), e.g. ``"z = 27.5 µm"``.
        cells: Number of live cells (default: occupied pixels).
    """

    t: float
    species: dict[str, Any]
    kinds: Any
    fields: dict[str, Any]
    dx: float
    spacing: tuple[float, ...] = ()
    shape: tuple[int, ...] = ()
    point: tuple[int, ...] = ()
    stride: int = 1
    axes: tuple[str, ...] = ()
    where: str = ""
    cells: int | None = None

    def __post_init__(self) -> None:
        if not self.shape:
            object.__setattr__(self, "shape", tuple(np.shape(self.kinds)[::-1]))
        if not self.spacing:
            object.__setattr__(self, "spacing", (float(self.dx),) * len(self.shape))
        if not self.axes:
            object.__setattr__(self, "axes", AXES[: len(self.shape)])

    @property
    def ndim(self) -> int:
        """Number of axes (1, 2 or 3)."""
        return len(self.shape)

    @property
    def n_cells(self) -> int:
        """Number of live cells."""
        if self.cells is not None:
            return self.cells
        return int(np.count_nonzero(flat(self.kinds) >= 0))

    def section(self, plane: str, index: int | None = None) -> GridFrame:
        """One plane of a 3-D frame as a 2-D frame.

        Args:
            plane: One of :data:`PLANES`.
            index: Frame coordinate along the plane's normal axis; default the frame's point.

        Returns:
            A 2-D frame whose ``axes`` name the plane's axes and ``where`` its position.

        Raises:
            UserError: On a frame that is not 3-D, or see :func:`section`.
        """
        if self.ndim != 3:
            raise UserError(f"only 3-D frames have planes; this frame is {self.ndim}-D.")
        axis = _check_plane(plane)
        index = self.point[axis] if index is None else int(index)
        inplane = [a for a in range(3) if a != axis]
        h = self.spacing[axis]
        where = f"{AXES[axis]} = {(index + 0.5) * h:g} µm"
        return GridFrame(
            t=self.t,
            species={k: section(v, plane, index) for k, v in self.species.items()},
            kinds=section(self.kinds, plane, index),
            fields={k: section(v, plane, index) for k, v in self.fields.items()},
            dx=self.spacing[inplane[0]],
            spacing=tuple(self.spacing[a] for a in inplane),
            shape=tuple(self.shape[a] for a in inplane),
            stride=self.stride,
            axes=tuple(AXES[a] for a in inplane),
            where=where,
            cells=self.n_cells,
        )


def site_image(
    sites: NDArray[np.int64], values: NDArray, nx: int, ny: int, fill: float = np.nan
) -> NDArray[np.float64]:
    """Scatter per-cell values onto a 2-D grid.

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


def stride_for(nx: int, ny: int, max_side: int, nz: int = 1) -> int:
    """Integer subsampling stride that keeps every side at most ``max_side`` pixels."""
    return max(1, math.ceil(max(nx, ny, nz) / max_side))


def capture(
    model: HybridModel,
    kind_names: list[str] | None = None,
    max_side: int = 400,
    max_volume_bytes: float = VOLUME_BYTES,
    point: Sequence[int] | None = None,
) -> GridFrame:
    """Capture the model's cell states, phenotypes and fields as images.

    Args:
        model: The model (read through :mod:`biohybrid.viz.access`).
        kind_names: Known phenotype labels; labels not yet in it are appended (in place),
            so codes stay stable over a run.
        max_side: Largest stored image side; bigger lattices are subsampled by a stride.
        max_volume_bytes: 3-D: largest frame stored as volumes; a larger one keeps the three
            planes through ``point`` (0 always keeps planes, ``inf`` always volumes).
        point: 3-D: lattice coordinate ``(i, j, k)`` the planes pass through; default
            :func:`~biohybrid.viz.access.display_point`.

    Returns:
        The frame.
    """
    kind_names = [] if kind_names is None else kind_names
    lat = access.lattice(model)
    nd = lat.ndim
    s = max(1, math.ceil(max(lat.shape) / max_side))
    sub = (slice(None, None, s),) * nd
    shape = tuple(math.ceil(n / s) for n in lat.shape)
    if point is None:
        point = access.display_point(model) if nd == 3 else ()
    fpoint = tuple(int(p) // s for p in point)
    fields_ = access.field_names(model)
    states = access.cell_states(model)
    n_arrays = len(states) + len(fields_)
    keep_planes = nd == 3 and math.prod(shape) * (4 * n_arrays + 2) > max_volume_bytes

    def img(values: NDArray, dtype: type) -> Image:
        a = lat.image(values).T[sub]
        if keep_planes:
            return Planes.of(a.astype(dtype, copy=False), fpoint)
        return np.ascontiguousarray(a, dtype=dtype)

    species = {name: img(v, np.float32) for name, v in states.items()}
    kinds = img(access.cell_kinds(model, kind_names), np.int16)
    fields = {name: img(access.field_values(model, name), np.float32) for name in fields_}
    return GridFrame(
        t=float(model.t),
        species=species,
        kinds=kinds,
        fields=fields,
        dx=lat.spacing[0] * s,
        spacing=tuple(h * s for h in lat.spacing),
        shape=shape,
        point=fpoint,
        stride=s,
        cells=access.n_cells(model),
    )


def kymograph(
    frames: Sequence[GridFrame], layer: str, name: str = ""
) -> tuple[NDArray[np.float64], NDArray]:
    """Stack 1-D frames into a position × time image.

    Args:
        frames: 1-D frames, in time order.
        layer: ``"species"``, ``"fields"`` or ``"kinds"``.
        name: The species or field (not used for ``"kinds"``).

    Returns:
        ``(times, image)``: times of shape ``(T,)``; image of shape ``(T, nx)``, row ``m``
        the frame at ``times[m]``, column ``i`` site ``i``.

    Raises:
        UserError: On frames that are not 1-D or an unknown layer.
    """
    if any(f.ndim != 1 for f in frames):
        raise UserError("a kymograph needs 1-D frames (a cable of sites).")
    if layer == "kinds":
        rows = [f.kinds for f in frames]
    elif layer in ("species", "fields"):
        rows = [getattr(f, layer)[name] for f in frames]
    else:
        raise UserError(f"unknown layer {layer!r}; layers are: species, fields, kinds.")
    return np.array([f.t for f in frames], dtype=float), np.stack(rows)


def time_edges(times: NDArray) -> NDArray[np.float64]:
    """Cell edges of rows centred on ``times``: midpoints, the ends half a gap out.

    Args:
        times: Increasing times, shape ``(T,)``.

    Returns:
        Shape ``(T + 1,)``; a single time gets the edges ``t ± 0.5``.
    """
    t = np.asarray(times, dtype=float)
    if t.size == 1:
        return np.array([t[0] - 0.5, t[0] + 0.5])
    mid = 0.5 * (t[1:] + t[:-1])
    return np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])


@dataclass
class FrameRecorder:
    """Keep a bounded, evenly spaced set of frames over a run (one per output step at most).

    Call :meth:`observe` after every tick; a frame is captured whenever the model has
    recorded a new biomarker row and the output index falls on the current stride. When
    more than ``max_frames`` are held, every other frame is dropped and the stride doubles.

    Args:
        max_frames: Most frames held at once (memory bound).
        max_side: Largest stored image side (see :func:`capture`).
        max_volume_bytes: 3-D frames larger than this keep three planes (see :func:`capture`).

    Attributes:
        frames: The frames, in time order.
        kinds: Phenotype labels, indexed by the frames' ``kinds`` codes.
        stride: Output steps between kept frames.
    """

    max_frames: int = 60
    max_side: int = 400
    max_volume_bytes: float = VOLUME_BYTES
    frames: list[GridFrame] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    stride: int = 1
    _outputs_seen: int = 0

    @classmethod
    def for_model(cls, model: HybridModel, **kwargs: Any) -> FrameRecorder | None:
        """A recorder that has captured the initial state, or ``None`` for a single site."""
        if access.lattice(model).n_sites <= 1:
            return None
        rec = cls(**kwargs)
        rec.observe(model)
        return rec

    def _capture(self, model: HybridModel) -> GridFrame:
        return capture(model, self.kinds, self.max_side, self.max_volume_bytes)

    def observe(self, model: HybridModel, final: bool = False) -> None:
        """Capture a frame if the model has recorded a new output step on the stride.

        Args:
            model: The model, after a tick.
            final: Capture the current state regardless of the stride (end of a run),
                unless it is already the last frame.
        """
        n = access.n_outputs(model)
        if final:
            if not self.frames or self.frames[-1].t != model.t:
                self.frames.append(self._capture(model))
            return
        if n == self._outputs_seen:
            return
        index = n - 1
        self._outputs_seen = n
        if index % self.stride:
            return
        self.frames.append(self._capture(model))
        if len(self.frames) > self.max_frames:
            self.frames = self.frames[::2]
            self.stride *= 2


@dataclass
class FrameWindow:
    """The latest frames of a live view (e.g. the rows of a growing 1-D kymograph).

    Args:
        max_frames: Most frames held; the oldest are dropped first.

    Attributes:
        frames: The frames, in time order.
    """

    max_frames: int = 120
    frames: list[GridFrame] = field(default_factory=list)

    def push(self, frame: GridFrame) -> None:
        """Add a frame, dropping the oldest beyond ``max_frames``.

        A frame at the last frame's time replaces it (a repaint); an earlier time (the model
        was reset) starts the window again.
        """
        if self.frames and frame.t <= self.frames[-1].t:
            if frame.t == self.frames[-1].t:
                self.frames[-1] = frame
                return
            self.frames.clear()
        self.frames.append(frame)
        del self.frames[: -self.max_frames]
