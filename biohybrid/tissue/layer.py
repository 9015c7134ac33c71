"""The tissue layer: diffusing fields on the model's lattice, one finite volume per site.

**Mesh.** A field lives on a :class:`~biohybrid.geometry.Lattice` of shape ``(nx,)``,
``(nx, ny)`` or ``(nx, ny, nz)`` with a spacing ``h_a`` per axis (µm): one finite-volume
cell per site, in the lattice's site order (first axis fastest), which is the cell order of
FiPy's ``Grid1D``/``Grid2D``/``Grid3D``. Site ``(i, j, k)`` has centre
``((i + ½) h_x, (j + ½) h_y, (k + ½) h_z)`` and volume ``V = Π h_a`` µm^d. Periodic fields
live on a ``PeriodicGrid1D``/``2D``/``3D`` (every axis wraps), the others on a plain grid;
the cell order is the same. The old call ``TissueLayer(nx, ny, dx, fields)`` builds the
2-D lattice ``Lattice((nx, ny), dx)``.

**Equation.** Each field ``c`` (in its ``units``) obeys, with backward Euler in time,

``∂c/∂t = ∇·(D ∇c) − k c − Σ_cells u_i c + Σ_cells S_i / V``

summing over the cells at each site. ``D`` may be a number, one number per axis
(anisotropic, principal axes along the lattice axes) or one value per site (and axis); see
:class:`~biohybrid.tissue.fields.FieldSpec`. The flux through the face between sites ``P``
and ``N`` along axis ``a`` is ``g_f (c_P − c_N)`` with conductance
``g_f = D_f A_a / h_a``, face area ``A_a = V / h_a`` and ``D_f`` the harmonic mean
``2 D_P D_N / (D_P + D_N)`` of the two sites' coefficients along ``a`` (0 if either is 0),
which is the series conductance of the two half-cells, so the steady flux through a layered
medium is exact and a zero-diffusion site blocks all exchange (Patankar 1980, §4.2-3). A
Dirichlet face of site ``P`` has ``g = D_P A_a / (h_a / 2)``.

**Coupling units (read these before writing a model):**

* ``secretion`` ``S_i`` is a per-cell *amount* per time: concentration × µm^d / time (e.g.
  µM·µm²/min in 2-D, µM·µm³/min in 3-D). The layer divides it by the site volume
  ``V = Π h_a`` (:attr:`TissueLayer.site_volume`) to get a source density, so the mass a cell
  releases depends neither on the spacing nor on the dimension.
* ``uptake`` ``u_i`` is a per-cell first-order coefficient, 1/time: the cell removes
  ``u_i c V`` amount per time from its site. It enters the matrix implicitly, like the
  backward-Euler point sink of BioFVM, so no uptake, however strong, can drive ``c``
  negative. (To reproduce BioFVM's volume-weighted uptake rate ``U`` of a cell of volume
  ``W`` in a voxel of volume ``ΔV``, pass ``u = U W / ΔV``.)

Cells read the field at their site (:meth:`TissueLayer.sample`) or its gradient
(:meth:`TissueLayer.gradient`, shape ``(N, ndim)``) as arrays; the field step never calls
back into agents.

**Assembly.** The layer assembles the finite-volume matrix itself from the lattice's face
pairs (a few vectorised NumPy lines) instead of calling FiPy's private
``Term._prepareLinearSystem``: the tests check that it is identical, entry by entry, to the
matrix FiPy's public ``eq.solve`` builds (read through ``eq.cacheMatrix()``/``eq.matrix``)
for ``TransientTerm == DiffusionTerm(D_f) − ImplicitSourceTerm(k + u) + S/V`` on every
grid, boundary kind and kind of diffusion, with FiPy computing ``D_f`` itself
(``CellVariable.harmonicFaceValue`` weighted by the face normals), and that FiPy's rank-2
tensor coefficient gives the same matrix. FiPy still owns the mesh, the variables
(``TissueLayer.vars``) and the gradient; values reach a FiPy variable through the public
``CellVariable.setValue``, lazily, when the variable is next read.

**Ledger.** Each step records secreted, taken-up, decayed and boundary-lost amounts, the
change of the integral, and the relative residual ``‖b − A c¹‖₂ / ‖b‖₂`` of the step's
linear system, recomputed here from the stored field (:mod:`biohybrid.tissue.ledger`).
:meth:`TissueLayer.imbalance` reports the mass unaccounted for; it is round-off for any
solver that conserves mass, even an inaccurate one, so :meth:`TissueLayer.solve_residual`
is what tells whether the solve itself was accurate. :meth:`TissueLayer.diagnostics`
gathers both for a run manifest.

**Speed.** Each field's operator is assembled once. In 1-D and 2-D its SuperLU
factorisation is reused while ``dt`` and the uptake are unchanged, and serves as the CG
preconditioner when only the uptake changes
(:class:`~biohybrid.tissue.solvers.CachedLUSolver`, one object per field); in 3-D, where
factors fill in, the default is Jacobi-preconditioned CG
(:class:`~biohybrid.tissue.solvers.CGSolver`). ``TissueLayer(..., threads=2)`` solves
several fields concurrently. See ``benchmarks/tissue.py`` for timings.

**Not covered.** Boundary kinds apply to every side of a field (no per-side or Robin
conditions, no prescribed non-zero Neumann flux), the diffusion tensor is diagonal in the
lattice axes (no off-diagonal terms), and the mesh is the agent lattice itself (no finer
diffusion mesh).

References:
    Ghaffarizadeh, A., Friedman, S. H. & Macklin, P. (2016). BioFVM: an efficient,
    parallelized diffusive transport solver for 3-D biological simulations.
    Bioinformatics 32(8):1256-1258 (implicit cell uptake, validation tests).
    Guyer, J. E., Wheeler, D. & Warren, J. A. (2009). FiPy: partial differential equations
    with Python. Comput. Sci. Eng. 11(3):6-15.
    Patankar, S. V. (1980). Numerical Heat Transfer and Fluid Flow. Hemisphere, §4.2-3
    (harmonic-mean interface conductivity).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fipy
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from biohybrid.errors import SimulationError, UserError, did_you_mean, list_choices
from biohybrid.geometry import Lattice
from biohybrid.tissue.fields import FieldSpec
from biohybrid.tissue.ledger import FieldLedger, StepLedger
from biohybrid.tissue.solvers import CachedLUSolver, CGSolver, FieldSolver, Operator, dot

_GRIDS = {
    (1, False): fipy.Grid1D,
    (2, False): fipy.Grid2D,
    (3, False): fipy.Grid3D,
    (1, True): fipy.PeriodicGrid1D,
    (2, True): fipy.PeriodicGrid2D,
    (3, True): fipy.PeriodicGrid3D,
}


def fipy_mesh(lattice: Lattice, periodic: bool = False) -> fipy.meshes.mesh.Mesh:
    """The FiPy grid of a lattice: one cell per site, in the lattice's site order.

    Args:
        lattice: The lattice.
        periodic: Wrap every axis (``PeriodicGrid1D``/``2D``/``3D``).

    Returns:
        A ``Grid1D``/``Grid2D``/``Grid3D`` (or periodic variant) with the lattice's shape
        and spacing.
    """
    kwargs: dict[str, float | int] = {}
    for axis, (n, h) in enumerate(zip(lattice.shape, lattice.spacing, strict=True)):
        kwargs["n" + "xyz"[axis]] = n
        kwargs["d" + "xyz"[axis]] = h
    return _GRIDS[lattice.ndim, periodic](**kwargs)


def harmonic_mean(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``2ab / (a + b)`` elementwise, 0 where either is 0 (no flux through a blocked face)."""
    prod = a * b
    total = a + b
    return np.divide(2.0 * prod, total, out=np.zeros_like(prod), where=prod > 0)


class FieldSystem:
    """One field's values, FiPy variable and finite-volume operator on a lattice.

    Args:
        spec: The field declaration.
        lattice: The lattice (shape, spacing).
        mesh: The FiPy grid of ``lattice`` (periodic for periodic fields).

    Raises:
        UserError: The diffusion does not fit the lattice.
    """

    def __init__(self, spec: FieldSpec, lattice: Lattice, mesh: fipy.meshes.mesh.Mesh) -> None:
        self.spec, self.lattice, self.mesh = spec, lattice, mesh
        n = lattice.n_sites
        self.diffusion: NDArray[np.float64] = spec.diffusion_per_site(lattice)
        self.volumes: NDArray[np.float64] = np.full(n, lattice.site_volume)
        self._var = fipy.CellVariable(mesh=mesh, name=spec.name, value=spec.initial)
        if spec.boundary == "dirichlet":
            self._var.constrain(spec.boundary_value, mesh.exteriorFaces)
        self._value = np.full(n, float(spec.initial))
        self._value.flags.writeable = False
        self._stale = False
        self.stiffness, self.conductance = self._assemble()
        self.boundary_rhs: NDArray[np.float64] = self.conductance * (
            spec.boundary_value if spec.boundary == "dirichlet" else 0.0
        )
        self._operator: Operator | None = None
        self.operators_built = 1

    def _assemble(self) -> tuple[sp.csr_matrix, NDArray[np.float64]]:
        """The steady operator ``−∇·(D∇) + k`` (amount/(conc·time)) and Dirichlet conductances.

        Returns:
            ``K`` (CSR, symmetric, ``K c`` is the net outflow plus decay of each site) and
            the per-site sum of Dirichlet face conductances (zero for other boundaries).
        """
        lattice, spec = self.lattice, self.spec
        n, volume = lattice.n_sites, lattice.site_volume
        periodic = spec.boundary == "periodic"
        index = np.arange(n, dtype=np.int64).reshape(lattice.shape, order="F")
        rows, cols, vals = [], [], []
        conductance = np.zeros(n)
        for axis, (count, h) in enumerate(zip(lattice.shape, lattice.spacing, strict=True)):
            a, b = lattice.face_pairs(axis)
            first = index.take(0, axis=axis).reshape(-1, order="F")
            last = index.take(count - 1, axis=axis).reshape(-1, order="F")
            if periodic and count > 1:  # the faces that wrap around
                a, b = np.concatenate([a, last]), np.concatenate([b, first])
            d = self.diffusion[:, axis]
            g = harmonic_mean(d[a], d[b]) * volume / (h * h)
            rows += [a, b, a, b]
            cols += [a, b, b, a]
            vals += [g, g, -g, -g]
            if spec.boundary == "dirichlet":  # centre-to-face distance h/2
                for cells in (first, last):
                    conductance += np.bincount(cells, 2.0 * d[cells] * volume / (h * h), n)
        diag = conductance + spec.decay * self.volumes
        rows.append(np.arange(n))
        cols.append(np.arange(n))
        vals.append(diag)
        K = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        K.sum_duplicates()
        return K, conductance

    @property
    def var(self) -> fipy.CellVariable:
        """The FiPy variable, holding the current values (synchronised on access)."""
        if self._stale:
            self._var.setValue(self._value)
            self._stale = False
        return self._var

    @property
    def value(self) -> NDArray[np.float64]:
        """The current values, shape ``(n,)`` (read-only)."""
        return self._value

    def set_value(self, value: NDArray[np.float64]) -> None:
        """Store new values, shape ``(n,)``; the FiPy variable follows when next read."""
        arr = np.array(value, dtype=float).reshape(self.lattice.n_sites)
        arr.flags.writeable = False
        self._value = arr
        self._stale = True

    def face_coefficient(self) -> fipy.FaceVariable | float:
        """The diffusion coefficient on every FiPy face, computed by FiPy (for reference).

        A single number when the diffusion is isotropic and uniform; otherwise, per axis,
        FiPy's ``harmonicFaceValue`` of the per-site coefficient, weighted by the squared
        component of the face normal along that axis (1 on faces normal to the axis, 0
        otherwise).
        """
        if isinstance(self.spec.diffusion, float):
            return self.spec.diffusion
        normals = np.asarray(self.mesh.faceNormals)
        total = np.zeros(normals.shape[1])
        for axis in range(self.lattice.ndim):
            d = fipy.CellVariable(mesh=self.mesh, value=self.diffusion[:, axis])
            total += np.asarray(d.harmonicFaceValue.value) * normals[axis] ** 2
        return fipy.FaceVariable(mesh=self.mesh, value=total)

    def equation(
        self, uptake: NDArray[np.float64], source_density: NDArray[np.float64]
    ) -> fipy.terms.term.Term:
        """The FiPy equation of one step (the reference the layer's own assembly matches).

        Args:
            uptake: Per-site uptake coefficient, 1/time, shape ``(n,)``.
            source_density: Per-site source, concentration/time, shape ``(n,)``.

        Returns:
            ``TransientTerm == DiffusionTerm(D_f) − ImplicitSourceTerm(decay + uptake) +
            source``.
        """
        spec = self.spec
        sink = fipy.CellVariable(mesh=self.mesh, value=spec.decay + uptake)
        src = fipy.CellVariable(mesh=self.mesh, value=source_density)
        return fipy.TransientTerm() == (
            fipy.DiffusionTerm(coeff=self.face_coefficient())
            - fipy.ImplicitSourceTerm(coeff=sink)
            + src
        )

    def operator(self, dt: float) -> Operator:
        """The backward-Euler matrix ``diag(V/dt) + K`` and boundary right-hand side (cached).

        ``K`` is assembled once (:meth:`_assemble`), so a new ``dt`` costs one diagonal add.
        """
        key = (id(self), float(dt))
        if self._operator is not None and self._operator.key == key:
            return self._operator
        matrix = (self.stiffness + sp.diags(self.volumes / dt)).tocsr()
        self._operator = Operator(key=key, matrix=matrix, boundary_rhs=self.boundary_rhs)
        return self._operator


def default_solver(lattice: Lattice) -> FieldSolver:
    """A new solver object suited to the lattice.

    :class:`CachedLUSolver` in 1-D and 2-D, where a SuperLU factorisation is cheap and then
    reused; :class:`CGSolver` in 3-D, where the factors fill in (a 31³ lattice: about 7 s and
    1.3e7 entries, then ~70 ms per solve) while CG converges in tens of iterations.
    """
    return CachedLUSolver() if lattice.ndim < 3 else CGSolver()


def _legacy_lattice(nx: Any, ny: Any, dx: Any) -> Lattice:
    """The 2-D lattice of the old call ``TissueLayer(nx, ny, dx, fields)``."""
    if isinstance(nx, bool) or int(nx) != nx or int(ny) != ny or nx < 1 or ny < 1:
        raise UserError(f"tissue grid must be at least 1 × 1 sites, got {nx} × {ny}")
    if not (isinstance(dx, int | float) and math.isfinite(dx) and dx > 0):
        raise UserError(f"tissue grid spacing dx must be a positive number (µm), got {dx}")
    return Lattice((int(nx), int(ny)), float(dx))


class TissueLayer:
    """Diffusing fields on a 1-D, 2-D or 3-D lattice aligned with the agents.

    Two call forms: ``TissueLayer(lattice, fields, solvers=None, threads=1)`` and the older
    ``TissueLayer(nx, ny, dx, fields, solvers=None, threads=1)``, which builds
    ``Lattice((nx, ny), dx)``.

    Args:
        lattice: The lattice (or, in the old form, ``nx``, followed by ``ny`` and ``dx``).
        *args: ``fields`` (and optionally ``solvers``, ``threads``) after the lattice, or
            ``ny, dx, fields`` in the old form.
        fields: The field declarations (names must be unique).
        solvers: Optional per-field solver objects; by default
            :class:`~biohybrid.tissue.solvers.CachedLUSolver` on 1-D and 2-D lattices and
            :class:`~biohybrid.tissue.solvers.CGSolver` on 3-D ones (see
            :func:`default_solver`); :class:`~biohybrid.tissue.solvers.FiPySolver` is the
            reference.
        threads: Fields solved concurrently (``CachedLUSolver`` fields only). 1 (default)
            solves them in turn; 2 makes three fields cost about 2.2× one field on two cores.
            Results are identical either way (fields are independent within a step).

    Raises:
        UserError: Bad lattice, grid size or spacing, duplicate field names, a diffusion
            that does not fit the lattice, or a solver for an unknown field.
    """

    def __init__(
        self,
        lattice: Lattice | int,
        *args: Any,
        fields: Sequence[FieldSpec] | None = None,
        solvers: Mapping[str, FieldSolver] | None = None,
        threads: int = 1,
    ) -> None:
        rest = list(args)
        if not isinstance(lattice, Lattice):
            if len(rest) < 2:
                raise UserError(
                    "TissueLayer takes (lattice, fields) or the old (nx, ny, dx, fields),"
                    f" got {len(rest) + 1} positional argument(s)"
                )
            lattice = _legacy_lattice(lattice, rest.pop(0), rest.pop(0))
        if fields is None and rest:
            fields = rest.pop(0)
        if solvers is None and rest:
            solvers = rest.pop(0)
        if rest:
            threads = rest.pop(0)
        if fields is None or rest:
            raise UserError(
                "TissueLayer takes (lattice, fields, solvers=None, threads=1) or the old"
                " (nx, ny, dx, fields, solvers=None, threads=1)"
            )
        if isinstance(threads, bool) or int(threads) != threads or threads < 1:
            raise UserError(f"tissue threads must be a positive integer, got {threads}")
        self.lattice: Lattice = lattice
        self.threads = int(threads)
        self._executor: ThreadPoolExecutor | None = None
        self.specs: dict[str, FieldSpec] = {}
        for spec in fields:
            if spec.name in self.specs:
                raise UserError(f"field {spec.name!r} is declared twice")
            self.specs[spec.name] = spec
        self._meshes: dict[bool, fipy.meshes.mesh.Mesh] = {}
        self.systems: dict[str, FieldSystem] = {}
        for spec in self.specs.values():
            mesh = self._mesh(spec.boundary == "periodic")
            self.systems[spec.name] = FieldSystem(spec, lattice, mesh)
        solvers = dict(solvers or {})
        for name in solvers:
            self._check_name(name)
        self.solvers: dict[str, FieldSolver] = {
            name: solvers.get(name) or default_solver(lattice) for name in self.specs
        }
        n = self.n_sites
        self._secretion = {name: np.zeros(n) for name in self.specs}
        self._uptake = {name: np.zeros(n) for name in self.specs}
        self.ledger: dict[str, FieldLedger] = {
            name: FieldLedger(initial_mass=self.total(name)) for name in self.specs
        }

    def _mesh(self, periodic: bool) -> fipy.meshes.mesh.Mesh:
        if periodic not in self._meshes:
            self._meshes[periodic] = fipy_mesh(self.lattice, periodic)
        return self._meshes[periodic]

    # ------------------------------------------------------------------ geometry
    @property
    def mesh(self) -> fipy.meshes.mesh.Mesh:
        """The FiPy mesh of the non-periodic fields (the periodic one if all are periodic)."""
        if False in self._meshes or True not in self._meshes:
            return self._mesh(False)
        return self._meshes[True]

    @property
    def vars(self) -> dict[str, fipy.CellVariable]:
        """The FiPy cell variables holding the fields, by name."""
        return {name: system.var for name, system in self.systems.items()}

    @property
    def ndim(self) -> int:
        """Number of lattice axes (1, 2 or 3)."""
        return self.lattice.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        """Sites per axis."""
        return self.lattice.shape

    @property
    def n_sites(self) -> int:
        """Number of sites (finite-volume cells)."""
        return self.lattice.n_sites

    @property
    def nx(self) -> int:
        """Sites along x."""
        return self.lattice.shape[0]

    @property
    def ny(self) -> int:
        """Sites along y (1 on a 1-D lattice)."""
        return self.lattice.shape[1] if self.ndim > 1 else 1

    @property
    def dx(self) -> float:
        """The spacing, µm, when it is the same on every axis.

        Raises:
            UserError: The spacing differs between axes (use ``lattice.spacing``).
        """
        spacing = self.lattice.spacing
        if len(set(spacing)) > 1:
            raise UserError(
                f"the tissue spacing differs per axis ({list(spacing)} µm); use"
                " layer.lattice.spacing"
            )
        return spacing[0]

    @property
    def site_volume(self) -> float:
        """Volume of one site, ``Π spacing`` in µm^d (µm, µm² or µm³)."""
        return self.lattice.site_volume

    @property
    def site_area(self) -> float:
        """Area of one site, µm², on a 2-D lattice (alias of :attr:`site_volume`).

        Raises:
            UserError: The lattice is not 2-D.
        """
        if self.ndim != 2:
            raise UserError(
                f"site_area is defined on a 2-D lattice only; this one is {self.ndim}-D"
                f" (shape {list(self.shape)}): use site_volume (µm^{self.ndim})"
            )
        return self.lattice.site_volume

    @property
    def names(self) -> tuple[str, ...]:
        """Field names in declaration order."""
        return tuple(self.specs)

    def _check_name(self, name: str) -> FieldSystem:
        try:
            return self.systems[name]
        except KeyError:
            raise UserError(
                f"unknown tissue field {name!r}; fields are: {list_choices(self.specs)}."
                + did_you_mean(name, self.specs)
            ) from None

    def _check_sites(self, sites: ArrayLike) -> NDArray[np.int64]:
        arr = np.asarray(sites)
        if arr.ndim != 1:
            raise UserError(
                f"sites must be a 1-D array of flat site indices, got shape {arr.shape}"
            )
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise UserError(f"sites must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_sites):
            raise UserError(f"sites must lie in [0, {self.n_sites}), got {arr.min()}..{arr.max()}")
        return arr

    # ------------------------------------------------------------------ reading
    def values(self, name: str) -> NDArray[np.float64]:
        """The field's values per site, shape ``(n_sites,)`` (a copy), in its units."""
        return np.array(self._check_name(name).value, dtype=float)

    def image(self, name: str) -> NDArray[np.float64]:
        """The field with the lattice's shape, ``image[i, j, k]`` = site ``(i, j, k)``."""
        return self.lattice.image(self.values(name))

    def grid(self, name: str) -> NDArray[np.float64]:
        """The field with the axes reversed, ``grid[k, j, i]`` (the transpose of :meth:`image`).

        In 2-D this is the ``(ny, nx)`` image with row ``j`` = grid y, as plotted.
        """
        return self.values(name).reshape(self.shape[::-1])

    def sample(self, name: str, sites: ArrayLike) -> NDArray[np.float64]:
        """The field at the given flat sites, shape ``(len(sites),)``, in its units."""
        return self._check_name(name).value[self._check_sites(sites)]

    def gradient(self, name: str, sites: ArrayLike) -> NDArray[np.float64]:
        """FiPy's cell-centred gradient at the given sites, shape ``(len(sites), ndim)``.

        Central differences through the face values (one-sided half differences at no-flux
        faces, toward the fixed value at Dirichlet faces), in units/µm; column ``a`` is the
        derivative along axis ``a`` (x, y, z).
        """
        system = self._check_name(name)
        idx = self._check_sites(sites)
        grad = np.asarray(system.var.grad.value)
        return grad[:, idx].T.copy()

    def total(self, name: str) -> float:
        """The field's integral over the domain, concentration × µm^d."""
        system = self._check_name(name)
        return dot(system.volumes, system.value)

    # ------------------------------------------------------------------ writing
    def set_values(self, name: str, values: ArrayLike) -> None:
        """Overwrite a field (e.g. an initial condition) and restart its ledger.

        Args:
            name: Field name.
            values: New values per site, shape ``(n_sites,)``, or an array laid out like
                :meth:`grid` (axes reversed, e.g. ``(ny, nx)`` in 2-D), in its units. (For
                an array of the lattice's shape, pass ``layer.lattice.flatten(image)``.)

        Raises:
            UserError: Unknown field, wrong shape or non-finite values.
        """
        system = self._check_name(name)
        arr = np.asarray(values, dtype=float)
        if arr.shape not in ((self.n_sites,), self.shape[::-1]) or not np.all(np.isfinite(arr)):
            raise UserError(
                f"field {name!r}: values must be {self.n_sites} finite numbers of shape"
                f" ({self.n_sites},) or {self.shape[::-1]} (the grid layout), got shape"
                f" {arr.shape}"
            )
        system.set_value(arr.reshape(-1))
        self.ledger[name] = FieldLedger(initial_mass=self.total(name))

    def set_coupling(
        self,
        name: str,
        sites: ArrayLike,
        secretion: ArrayLike | None = None,
        uptake: ArrayLike | None = None,
    ) -> None:
        """Set per-cell secretion and uptake, summed onto their sites (replaces the last).

        Args:
            name: Field name.
            sites: Flat site index of each cell, shape ``(N,)``.
            secretion: Amount released per cell per time, concentration × µm^d / time,
                shape ``(N,)`` or a scalar; ``None`` for none. Negative values are allowed
                (explicit removal) but may drive the field negative; prefer ``uptake``.
            uptake: First-order uptake coefficient per cell, 1/time, shape ``(N,)`` or a
                scalar, >= 0; ``None`` for none.

        Raises:
            UserError: Unknown field, bad sites, wrong shapes, non-finite values or
                negative uptake.
        """
        self._check_name(name)
        idx = self._check_sites(sites)
        n = self.n_sites
        per_cell = {}
        for label, arr in (("secretion", secretion), ("uptake", uptake)):
            if arr is None:
                per_cell[label] = None
                continue
            a = (
                np.broadcast_to(np.asarray(arr, dtype=float), idx.shape)
                if np.ndim(arr) == 0
                else (np.asarray(arr, dtype=float))
            )
            if a.shape != idx.shape:
                raise UserError(
                    f"field {name!r}: {label} must have one value per cell, shape {idx.shape},"
                    f" got {a.shape}"
                )
            if not np.all(np.isfinite(a)):
                raise UserError(f"field {name!r}: {label} contains NaN or Inf")
            per_cell[label] = a
        if per_cell["uptake"] is not None and np.any(per_cell["uptake"] < 0):
            raise UserError(f"field {name!r}: uptake coefficients must be >= 0 (1/time)")
        sec, upt = per_cell["secretion"], per_cell["uptake"]
        self._secretion[name] = np.zeros(n) if sec is None else np.bincount(idx, sec, n)
        self._uptake[name] = np.zeros(n) if upt is None else np.bincount(idx, upt, n)

    # ------------------------------------------------------------------ stepping
    def step(
        self, dt: float, sources: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None
    ) -> None:
        """Advance every field by ``dt`` with backward Euler and record the ledger.

        Args:
            dt: Time step, model time unit (> 0).
            sources: Optional ``{name: (secretion_per_site, uptake_per_site)}`` overriding
                what :meth:`set_coupling` stored, each of shape ``(n_sites,)``, in
                amount/time and 1/time per site.

        Raises:
            UserError: Non-positive ``dt`` or an unknown field in ``sources``.
            SimulationError: The solve produced NaN or Inf.
        """
        if not (math.isfinite(dt) and dt > 0):
            raise UserError(f"tissue step dt must be a positive number, got {dt}")
        for name in sources or {}:
            self._check_name(name)
        coupling = {}
        for name, system in self.systems.items():
            sec, upt = self._secretion[name], self._uptake[name]
            if sources and name in sources:
                sec, upt = (np.asarray(a, dtype=float).reshape(self.n_sites) for a in sources[name])
            coupling[name] = (sec, upt)
            system.operator(dt)  # assembled on the calling thread

        def advance(name: str) -> NDArray[np.float64]:
            sec, upt = coupling[name]
            solver = self.solvers[name]
            return np.asarray(solver.advance(self.systems[name], dt, sec, upt), dtype=float)

        olds = {name: system.value for name, system in self.systems.items()}
        pool = self._pool()
        if pool is not None:
            news = dict(zip(self.names, pool.map(advance, self.names), strict=True))
        else:
            news = {name: advance(name) for name in self.names}
        for name, system in self.systems.items():
            old, new = olds[name], news[name]
            sec, upt = coupling[name]
            if not np.all(np.isfinite(new)):
                raise SimulationError(f"tissue field {name!r} became NaN/Inf in a step of {dt:g}")
            residual = self._residual(system, dt, old, new, sec, upt)
            system.set_value(new)
            self.ledger[name].record(self._step_ledger(system, dt, old, new, sec, upt, residual))

    def _pool(self) -> ThreadPoolExecutor | None:
        """The thread pool for concurrent field solves, or ``None`` to solve in turn.

        Only :class:`CachedLUSolver` fields are solved concurrently: SuperLU's triangular
        solves release the GIL, and each field owns its factors; FiPy itself is never called
        from a worker thread.
        """
        if self.threads <= 1 or len(self.systems) <= 1:
            return None
        if not all(isinstance(s, CachedLUSolver) for s in self.solvers.values()):
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.threads)
            weakref.finalize(self, self._executor.shutdown, wait=False)
        return self._executor

    @staticmethod
    def _residual(
        system: FieldSystem,
        dt: float,
        old: NDArray[np.float64],
        new: NDArray[np.float64],
        secretion: NDArray[np.float64],
        uptake: NDArray[np.float64],
    ) -> tuple[float, float]:
        """The step's linear-system residual, recomputed from the new values.

        Returns:
            ``‖b − A c¹‖₂ / ‖b‖₂`` (0 when both vanish, ``inf`` when only ``b`` does) and
            ``dt ‖b − A c¹‖₁``, the amount (conc × µm^d) the residual misplaces, for
            ``A = diag(V/dt + V k + V u) + diffusion`` and ``b = (V/dt) c⁰ + S + b_bc``.
        """
        op = system.operator(dt)
        V = system.volumes
        b = V / dt * old + secretion + op.boundary_rhs
        r = b - (op.matrix @ new + V * uptake * new)
        r_norm, b_norm = math.sqrt(dot(r, r)), math.sqrt(dot(b, b))
        if b_norm > 0:
            relative = r_norm / b_norm
        else:
            relative = 0.0 if r_norm == 0 else math.inf
        return relative, dt * float(np.abs(r).sum())

    @staticmethod
    def _step_ledger(
        system: FieldSystem,
        dt: float,
        old: NDArray[np.float64],
        new: NDArray[np.float64],
        secretion: NDArray[np.float64],
        uptake: NDArray[np.float64],
        residual: tuple[float, float] = (0.0, 0.0),
    ) -> StepLedger:
        """The step's amounts evaluated at the post-step values (see ``ledger``)."""
        V, spec = system.volumes, system.spec
        boundary = 0.0
        if spec.boundary == "dirichlet":
            boundary = dt * dot(system.conductance, new - spec.boundary_value)
        return StepLedger(
            secreted=dt * float(secretion.sum()),
            taken_up=dt * dot(V * uptake, new),
            decayed=dt * spec.decay * dot(V, new),
            boundary_loss=boundary,
            delta_mass=dot(V, new - old),
            residual=residual[0],
            residual_amount=residual[1],
        )

    # ------------------------------------------------------------------ trust
    def imbalance(self, name: str | None = None, relative: bool = False) -> float:
        """The cumulative mass imbalance of a field, or the largest over all fields.

        A conservative solver keeps this at round-off even when its solution is wrong;
        see :meth:`solve_residual` for the accuracy of the solves.

        Args:
            name: Field name, or ``None`` for the largest absolute value over the fields.
            relative: Divide by the ledger's scale (largest of mass and total flows).

        Returns:
            Concentration × µm^d (or dimensionless when ``relative``).
        """
        if name is not None:
            ledger = self.ledger[self._check_name(name).spec.name]
            return ledger.relative_imbalance if relative else ledger.imbalance
        return max(
            (
                self.ledger[n].relative_imbalance if relative else abs(self.ledger[n].imbalance)
                for n in self.names
            ),
            default=0.0,
        )

    def solve_residual(self, name: str | None = None) -> float:
        """The largest relative residual ``‖b − A c¹‖₂ / ‖b‖₂`` of any step's linear solve.

        Computed by the layer from the stored field, independently of the solver and of
        any conservative correction it applies: round-off (about 1e-15) for a direct
        solve, about the tolerance for an iterative one.

        Args:
            name: Field name, or ``None`` for the largest over the fields.

        Returns:
            Dimensionless; 0 before the first step.
        """
        if name is not None:
            return self.ledger[self._check_name(name).spec.name].max_residual
        return max((self.ledger[n].max_residual for n in self.names), default=0.0)

    def diagnostics(self) -> dict[str, dict[str, float]]:
        """Each field's ledger totals, imbalance and solve residuals, for a run manifest."""
        return {name: self.ledger[name].as_dict() for name in self.names}
