"""Tissue geometry: a regular lattice of sites in 1, 2 or 3 dimensions.

Every spatial layer of a model shares one :class:`Lattice`: the agents (one Mesa grid cell
per site), the fields (one FiPy finite-volume cell per site) and cell-to-cell coupling (one
node per site). A lattice has a ``shape`` (sites per axis: ``(nx,)``, ``(nx, ny)`` or
``(nx, ny, nz)``) and a ``spacing`` per axis in µm.

**Site order.** A site is a flat index with the first axis fastest,
``s = i + nx·j + nx·ny·k`` for coordinate ``(i, j, k)`` — NumPy's Fortran order, and the
cell order of FiPy's ``Grid1D``/``Grid2D``/``Grid3D`` — so a per-site array indexes a FiPy
variable directly and ``values.reshape(shape, order="F")[i, j, k]`` is site ``(i, j, k)``.

**Units.** Positions are µm; the site volume is ``Π spacing`` in µm^d (µm in 1-D, µm² in
2-D, µm³ in 3-D). Per-cell secretion is an amount per time (concentration × µm^d / time),
divided by the site volume to give a source density, so a cell's release does not depend
on the grid spacing in any dimension.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from biohybrid.errors import UserError

#: Neighbourhood kinds: face neighbours only, or faces, edges and corners.
NEIGHBOURHOODS: tuple[str, ...] = ("von_neumann", "moore")


@dataclass(frozen=True)
class Lattice:
    """A regular lattice of sites with a spacing per axis.

    Args:
        shape: Sites per axis, 1 to 3 positive whole numbers.
        spacing: µm per axis; one number applies to every axis.

    Raises:
        UserError: A shape with no axes, more than three, or a zero/negative/non-integer
            extent; a non-positive or non-finite spacing; a spacing of the wrong length.
    """

    shape: tuple[int, ...]
    spacing: tuple[float, ...]

    def __init__(self, shape: Sequence[int] | int, spacing: Sequence[float] | float) -> None:
        shape_t = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
        if not 1 <= len(shape_t) <= 3:
            raise UserError(
                f"shape must have 1, 2 or 3 axes (e.g. [200], [100, 100], [100, 35, 15]),"
                f" got {list(shape_t)}"
            )
        for n in shape_t:
            if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
                raise UserError(
                    f"shape must be whole numbers >= 1 sites per axis, got {list(shape_t)}"
                )
        if isinstance(spacing, int | float | np.floating | np.integer):
            spacing_t = (float(spacing),) * len(shape_t)
        else:
            spacing_t = tuple(float(h) for h in spacing)
            if len(spacing_t) == 1:
                spacing_t *= len(shape_t)
        if len(spacing_t) != len(shape_t):
            raise UserError(
                f"spacing needs one value per axis ({len(shape_t)} for shape {list(shape_t)}),"
                f" got {list(spacing_t)}"
            )
        for h in spacing_t:
            if not (math.isfinite(h) and h > 0):
                raise UserError(f"spacing must be positive µm per axis, got {list(spacing_t)}")
        object.__setattr__(self, "shape", tuple(int(n) for n in shape_t))
        object.__setattr__(self, "spacing", spacing_t)

    # ------------------------------------------------------------------ sizes
    @property
    def ndim(self) -> int:
        """Number of axes (1, 2 or 3)."""
        return len(self.shape)

    @property
    def n_sites(self) -> int:
        """Number of sites."""
        return math.prod(self.shape)

    @property
    def site_volume(self) -> float:
        """Volume of one site, µm^ndim (µm in 1-D, µm² in 2-D, µm³ in 3-D)."""
        return math.prod(self.spacing)

    @property
    def extent(self) -> tuple[float, ...]:
        """Length of the domain along each axis, µm."""
        return tuple(n * h for n, h in zip(self.shape, self.spacing, strict=True))

    # ------------------------------------------------------------------ indexing
    def site_of(self, coordinate: Sequence[int]) -> int:
        """Flat site index of one integer coordinate (first axis fastest).

        Raises:
            UserError: Wrong number of axes or a coordinate outside the lattice.
        """
        coord = tuple(int(c) for c in coordinate)
        if len(coord) != self.ndim or any(
            not 0 <= c < n for c, n in zip(coord, self.shape, strict=True)
        ):
            raise UserError(f"coordinate {coord} is outside the lattice of shape {self.shape}")
        return int(np.ravel_multi_index(coord, self.shape, order="F"))

    def sites_of(self, coordinates: ArrayLike) -> NDArray[np.int64]:
        """Flat site indices of coordinates, shape ``(N, ndim)`` → ``(N,)``."""
        c = np.asarray(coordinates, dtype=np.int64).reshape(-1, self.ndim)
        return np.ravel_multi_index(tuple(c.T), self.shape, order="F").astype(np.int64)

    def coordinates(self, sites: ArrayLike) -> NDArray[np.int64]:
        """Integer coordinates of flat sites, shape ``(N,)`` → ``(N, ndim)``."""
        s = np.asarray(sites, dtype=np.int64).reshape(-1)
        return np.column_stack(np.unravel_index(s, self.shape, order="F")).astype(np.int64)

    def positions(self, sites: ArrayLike) -> NDArray[np.float64]:
        """Centre positions of flat sites in µm, shape ``(N,)`` → ``(N, ndim)``."""
        return (self.coordinates(sites) + 0.5) * np.asarray(self.spacing)

    def image(self, values: ArrayLike) -> NDArray:
        """Per-site values ``(n_sites,)`` as an array of ``shape`` (index ``[i, j, k]``)."""
        return np.asarray(values).reshape(self.shape, order="F")

    def flatten(self, image: ArrayLike) -> NDArray:
        """Inverse of :meth:`image`: an array of ``shape`` → per-site values."""
        return np.asarray(image).reshape(-1, order="F")

    # ------------------------------------------------------------------ neighbours
    def face_pairs(self, axis: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Pairs of face-neighbouring sites along one axis (no wrap-around).

        Args:
            axis: 0 (x), 1 (y) or 2 (z).

        Returns:
            ``(a, b)``, each of shape ``(P,)``: site ``b`` is site ``a`` + 1 along ``axis``.
        """
        if not 0 <= axis < self.ndim:
            raise UserError(f"axis must be in 0..{self.ndim - 1}, got {axis}")
        idx = np.arange(self.n_sites, dtype=np.int64).reshape(self.shape, order="F")
        lo = [slice(None)] * self.ndim
        hi = [slice(None)] * self.ndim
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        a = idx[tuple(lo)].reshape(-1, order="F")
        b = idx[tuple(hi)].reshape(-1, order="F")
        return a, b

    @cached_property
    def offsets_von_neumann(self) -> NDArray[np.int64]:
        """Unit coordinate offsets to face neighbours, shape ``(2·ndim, ndim)``."""
        eye = np.eye(self.ndim, dtype=np.int64)
        return np.concatenate([eye, -eye])

    @cached_property
    def offsets_moore(self) -> NDArray[np.int64]:
        """Offsets to all ``3^ndim − 1`` neighbours, shape ``(3^ndim − 1, ndim)``."""
        grids = np.meshgrid(*([np.array([-1, 0, 1])] * self.ndim), indexing="ij")
        off = np.stack([g.ravel() for g in grids], axis=1)
        return off[np.any(off != 0, axis=1)].astype(np.int64)

    def offsets(self, neighbourhood: str) -> NDArray[np.int64]:
        """Neighbour offsets of a neighbourhood kind (see :data:`NEIGHBOURHOODS`)."""
        if neighbourhood == "von_neumann":
            return self.offsets_von_neumann
        if neighbourhood == "moore":
            return self.offsets_moore
        raise UserError(
            f"unknown neighbourhood {neighbourhood!r}; choose one of {', '.join(NEIGHBOURHOODS)}"
        )

    def neighbours(self, sites: ArrayLike, neighbourhood: str = "von_neumann") -> NDArray:
        """The neighbouring sites of each site, ``-1`` where an offset leaves the lattice.

        Args:
            sites: Flat sites, shape ``(N,)``.
            neighbourhood: ``"von_neumann"`` or ``"moore"``.

        Returns:
            Shape ``(N, n_offsets)``, columns in :meth:`offsets` order.
        """
        off = self.offsets(neighbourhood)
        c = self.coordinates(sites)[:, None, :] + off[None, :, :]
        shape = np.asarray(self.shape)
        inside = np.all((c >= 0) & (c < shape), axis=2)
        c = np.where(inside[..., None], c, 0)
        flat = np.ravel_multi_index(tuple(np.moveaxis(c, 2, 0)), self.shape, order="F")
        return np.where(inside, flat, -1).astype(np.int64)

    def adjacency(self, neighbourhood: str = "von_neumann") -> sp.csr_matrix:
        """Site adjacency, shape ``(n_sites, n_sites)``, 1 between neighbours."""
        sites = np.arange(self.n_sites, dtype=np.int64)
        nb = self.neighbours(sites, neighbourhood)
        src = np.repeat(sites, nb.shape[1])
        dst = nb.ravel()
        keep = dst >= 0
        data = np.ones(int(keep.sum()))
        return sp.csr_matrix((data, (src[keep], dst[keep])), shape=(self.n_sites,) * 2)

    def __repr__(self) -> str:
        return f"Lattice(shape={list(self.shape)}, spacing={list(self.spacing)} µm)"
