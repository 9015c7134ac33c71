"""The tissue layer: FiPy fields on a mesh aligned with the agent grid (first version).

One finite-volume cell per agent site: site ``s`` of an ``nx × ny`` grid with spacing ``dx``
(µm) is FiPy cell ``s = i + nx * j`` for grid coordinate ``(i, j)``. Cells couple to a field
through per-site arrays: a secretion rate (concentration per unit time, added explicitly)
and an uptake coefficient (1/time, entered implicitly so uptake cannot drive a value
negative). The field step never calls back into agents.

This first version solves ``eq.solve`` with a per-field LU solver object each step; the fast,
factorisation-reusing version replaces it behind the same interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import fipy
import numpy as np
from fipy.solvers.scipy import LinearLUSolver
from numpy.typing import ArrayLike, NDArray

from biohybrid.tissue.fields import FieldSpec


class TissueLayer:
    """Diffusing fields on an ``nx × ny`` grid aligned with the agent grid.

    Args:
        nx: Number of sites along x.
        ny: Number of sites along y.
        dx: Site spacing, µm.
        fields: The field declarations.
    """

    def __init__(self, nx: int, ny: int, dx: float, fields: Sequence[FieldSpec]) -> None:
        self.nx, self.ny, self.dx = int(nx), int(ny), float(dx)
        self.specs: dict[str, FieldSpec] = {f.name: f for f in fields}
        periodic = any(f.boundary == "periodic" for f in fields)
        if periodic and not all(f.boundary == "periodic" for f in fields):
            raise ValueError("periodic and non-periodic fields cannot share one mesh")
        mesh_cls = fipy.PeriodicGrid2D if periodic else fipy.Grid2D
        self.mesh = mesh_cls(dx=self.dx, dy=self.dx, nx=self.nx, ny=self.ny)
        self.vars: dict[str, fipy.CellVariable] = {}
        self._solvers: dict[str, LinearLUSolver] = {}
        self._secretion: dict[str, NDArray[np.float64]] = {}
        self._uptake: dict[str, NDArray[np.float64]] = {}
        for spec in fields:
            var = fipy.CellVariable(mesh=self.mesh, name=spec.name, value=spec.initial)
            if spec.boundary == "dirichlet":
                var.constrain(spec.boundary_value, self.mesh.exteriorFaces)
            self.vars[spec.name] = var
            self._solvers[spec.name] = LinearLUSolver()
            self._secretion[spec.name] = np.zeros(self.n_sites)
            self._uptake[spec.name] = np.zeros(self.n_sites)

    @property
    def n_sites(self) -> int:
        """Number of sites (finite-volume cells)."""
        return self.nx * self.ny

    @property
    def names(self) -> tuple[str, ...]:
        """Field names in declaration order."""
        return tuple(self.specs)

    def values(self, name: str) -> NDArray[np.float64]:
        """The field's values per site, shape ``(n_sites,)`` (a copy)."""
        return np.array(self.vars[name].value, dtype=float)

    def grid(self, name: str) -> NDArray[np.float64]:
        """The field as an image, shape ``(ny, nx)``, row ``j`` = grid y."""
        return self.values(name).reshape(self.ny, self.nx)

    def sample(self, name: str, sites: ArrayLike) -> NDArray[np.float64]:
        """The field at the given flat sites, shape ``(len(sites),)``."""
        return np.asarray(self.vars[name].value)[np.asarray(sites, dtype=np.int64)]

    def total(self, name: str) -> float:
        """The field's integral over the domain (concentration × µm²)."""
        return float(np.sum(self.vars[name].value) * self.dx * self.dx)

    def set_coupling(
        self,
        name: str,
        sites: ArrayLike,
        secretion: ArrayLike | None = None,
        uptake: ArrayLike | None = None,
    ) -> None:
        """Set per-cell secretion and uptake, summed onto their sites.

        Args:
            name: Field name.
            sites: Flat site index of each cell, shape ``(N,)``.
            secretion: Source per cell, concentration/time, shape ``(N,)``.
            uptake: First-order uptake coefficient per cell, 1/time, shape ``(N,)``.
        """
        sites = np.asarray(sites, dtype=np.int64)
        sec = np.zeros(sites.size) if secretion is None else np.asarray(secretion, float)
        upt = np.zeros(sites.size) if uptake is None else np.asarray(uptake, float)
        self._secretion[name] = np.bincount(sites, weights=sec, minlength=self.n_sites)
        self._uptake[name] = np.bincount(sites, weights=upt, minlength=self.n_sites)

    def step(self, dt: float, sources: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None) -> None:
        """Advance every field by ``dt`` with backward Euler.

        Args:
            dt: Time step, model time unit.
            sources: Optional ``{name: (secretion_per_site, uptake_per_site)}`` overriding
                what :meth:`set_coupling` stored, each of shape ``(n_sites,)``.
        """
        for name, spec in self.specs.items():
            var = self.vars[name]
            sec, upt = self._secretion[name], self._uptake[name]
            if sources and name in sources:
                sec, upt = (np.asarray(a, float) for a in sources[name])
            sink = fipy.CellVariable(mesh=self.mesh, value=spec.decay + upt)
            src = fipy.CellVariable(mesh=self.mesh, value=sec)
            eq = fipy.TransientTerm() == (
                fipy.DiffusionTerm(coeff=spec.diffusion) - fipy.ImplicitSourceTerm(coeff=sink) + src
            )
            eq.solve(var=var, dt=dt, solver=self._solvers[name])
