"""The tissue layer: FiPy fields on a mesh aligned with the agent grid.

**Mesh.** One finite-volume cell per agent site: site ``s`` of an ``nx × ny`` grid with
spacing ``dx`` (µm) is FiPy cell ``s = i + nx * j`` for Mesa grid coordinate ``(i, j)``, with
centre ``((i + ½) dx, (j + ½) dx)`` and area ``V = dx²`` µm². Fields with periodic
boundaries live on a ``PeriodicGrid2D``, the others on a ``Grid2D``; the cell order is the
same. A 1-D problem is an ``nx × 1`` grid (no flux through the two long sides).

**Equation.** Each field ``c`` (in its ``units``) obeys, with backward Euler in time,

``∂c/∂t = D ∇²c − k c − Σ_cells u_i c + Σ_cells S_i / V``

summing over the cells at each site. **Coupling units (read these before writing a model):**

* ``secretion`` ``S_i`` is a per-cell *amount* per time: concentration × µm² / time (e.g.
  µM·µm²/min). The layer divides it by the site area ``V = dx²`` to get a source density,
  so the mass a cell releases does not depend on the grid spacing. (The first version of
  this layer took concentration/time added to the site; to convert, multiply by ``dx²``.)
* ``uptake`` ``u_i`` is a per-cell first-order coefficient, 1/time: the cell removes
  ``u_i c V`` amount per time from its site. It enters the matrix implicitly, like the
  backward-Euler point sink of BioFVM, so no uptake, however strong, can drive ``c``
  negative. (To reproduce BioFVM's volume-weighted uptake rate ``U`` of a cell of volume
  ``W`` in a voxel of volume ``ΔV``, pass ``u = U W / ΔV``.)

Cells read the field at their site (:meth:`TissueLayer.sample`) or its gradient
(:meth:`TissueLayer.gradient`) as arrays; the field step never calls back into agents.

**Ledger.** Each step records secreted, taken-up, decayed and boundary-lost amounts and the
change of the integral (:mod:`biohybrid.tissue.ledger`); :meth:`TissueLayer.imbalance`
reports what is unaccounted for, which is round-off.

**Speed.** FiPy assembles each field's operator once; its SuperLU factorisation is reused
while ``dt`` and the uptake are unchanged, and serves as the CG preconditioner when only
the uptake changes (:class:`~biohybrid.tissue.solvers.CachedLUSolver`, one object per
field). ``TissueLayer(..., threads=2)`` solves several fields concurrently. See
``benchmarks/tissue.py`` for timings.

**Not covered.** Boundary kinds apply to all four sides of a field (no per-side or Robin
conditions, no prescribed non-zero Neumann flux), and the mesh is the agent grid itself
(no finer diffusion mesh).

References:
    Ghaffarizadeh, A., Friedman, S. H. & Macklin, P. (2016). BioFVM: an efficient,
    parallelized diffusive transport solver for 3-D biological simulations.
    Bioinformatics 32(8):1256-1258 (implicit cell uptake, validation tests).
    Guyer, J. E., Wheeler, D. & Warren, J. A. (2009). FiPy: partial differential equations
    with Python. Comput. Sci. Eng. 11(3):6-15.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import fipy
import numpy as np
import scipy.sparse as sp
from fipy.solvers.scipy import LinearLUSolver
from fipy.variables.meshVariable import MeshVariable
from numpy.typing import ArrayLike, NDArray

from biohybrid.errors import SimulationError, UserError, did_you_mean, list_choices
from biohybrid.tissue.fields import FieldSpec
from biohybrid.tissue.ledger import FieldLedger, StepLedger
from biohybrid.tissue.solvers import CachedLUSolver, FieldSolver, Operator, dot


class FieldSystem:
    """One field's FiPy variable, mesh geometry and operator builder.

    Args:
        spec: The field declaration.
        mesh: The FiPy mesh (``Grid2D`` or ``PeriodicGrid2D``) with uniform spacing ``dx``.
        dx: Grid spacing, µm.
    """

    def __init__(self, spec: FieldSpec, mesh: fipy.meshes.mesh.Mesh, dx: float) -> None:
        self.spec, self.mesh, self.dx = spec, mesh, dx
        self.volumes: NDArray[np.float64] = np.array(mesh.cellVolumes, dtype=float)
        self.var = fipy.CellVariable(mesh=mesh, name=spec.name, value=spec.initial)
        n = self.volumes.size
        self.conductance: NDArray[np.float64] = np.zeros(n)
        if spec.boundary == "dirichlet":
            self.var.constrain(spec.boundary_value, mesh.exteriorFaces)
            faces = np.asarray(mesh.exteriorFaces.value, dtype=bool)
            cells = np.asarray(np.ma.getdata(mesh.faceCellIDs[0]))[faces]
            dist = np.linalg.norm(
                np.asarray(mesh.faceCenters.value)[:, faces]
                - np.asarray(mesh.cellCenters.value)[:, cells],
                axis=0,
            )
            # face length dx on the uniform square grid; g_f = D A_f / d_f (amount/(conc·time))
            g = spec.diffusion * dx / dist
            self.conductance = np.bincount(cells, weights=g, minlength=n)
        self._operator: Operator | None = None
        self._steady: tuple[sp.csr_matrix, NDArray[np.float64]] | None = None
        self.operators_built = 0

    @property
    def value(self) -> NDArray[np.float64]:
        """The current values, shape ``(n,)`` (a read-only view of the FiPy variable)."""
        return np.asarray(self.var.value)

    def set_value(self, value: NDArray[np.float64]) -> None:
        """Store new values, shape ``(n,)``, in the FiPy variable.

        On one process FiPy's global and local cell orders coincide, so the value goes
        straight to ``MeshVariable.setValue`` (which marks dependent variables such as
        ``grad`` stale), skipping ``CellVariable``'s global-to-local reindexing that costs
        about 0.4 ms per call.
        """
        if self.mesh.communicator.Nproc == 1:
            MeshVariable.setValue(self.var, value)
        else:  # pragma: no cover - parallel FiPy
            self.var.setValue(value)

    def equation(
        self, uptake: NDArray[np.float64], source_density: NDArray[np.float64]
    ) -> fipy.terms.term.Term:
        """The FiPy equation of one step.

        Args:
            uptake: Per-site uptake coefficient, 1/time, shape ``(n,)``.
            source_density: Per-site source, concentration/time, shape ``(n,)``.

        Returns:
            ``TransientTerm == DiffusionTerm(D) − ImplicitSourceTerm(decay + uptake) + source``.
        """
        spec = self.spec
        sink = fipy.CellVariable(mesh=self.mesh, value=spec.decay + uptake)
        src = fipy.CellVariable(mesh=self.mesh, value=source_density)
        return fipy.TransientTerm() == (
            fipy.DiffusionTerm(coeff=spec.diffusion) - fipy.ImplicitSourceTerm(coeff=sink) + src
        )

    def operator(self, dt: float) -> Operator:
        """The FiPy matrix and boundary right-hand side for ``dt`` without uptake (cached).

        FiPy assembles the steady operator of ``DiffusionTerm(D) − ImplicitSourceTerm(decay)``
        once, for a zero-valued copy of the variable carrying the same constraints, so its
        right-hand side is exactly the boundary contribution. The backward-Euler operator
        for any ``dt`` is then ``diag(V/dt)`` minus that matrix, which is what FiPy builds
        for ``TransientTerm == DiffusionTerm(D) − ImplicitSourceTerm(decay)`` (checked in
        the tests), without reassembling when ``dt`` changes.
        """
        key = (id(self), float(dt))
        if self._operator is not None and self._operator.key == key:
            return self._operator
        if self._steady is None:
            scratch = fipy.CellVariable(mesh=self.mesh, value=0.0)
            if self.spec.boundary == "dirichlet":
                scratch.constrain(self.spec.boundary_value, self.mesh.exteriorFaces)
            eq = fipy.DiffusionTerm(coeff=self.spec.diffusion) - fipy.ImplicitSourceTerm(
                coeff=self.spec.decay
            )
            # FiPy's own assembly (what `eq.solve` does before solving), with an explicit
            # per-call solver object rather than the FIPY_SOLVERS default.
            solver = eq._prepareLinearSystem(
                var=scratch, solver=LinearLUSolver(), boundaryConditions=(), dt=None
            )
            stiffness = -sp.csr_matrix(solver.matrix.matrix, dtype=float)
            stiffness.sum_duplicates()
            rhs = -np.array(solver.RHSvector, dtype=float).reshape(self.volumes.size)
            self._steady = (stiffness, rhs)
            self.operators_built += 1
        stiffness, rhs = self._steady
        matrix = (stiffness + sp.diags(self.volumes / dt)).tocsr()
        self._operator = Operator(key=key, matrix=matrix, boundary_rhs=rhs)
        return self._operator


class TissueLayer:
    """Diffusing fields on an ``nx × ny`` grid aligned with the agent grid.

    Args:
        nx: Number of sites along x.
        ny: Number of sites along y.
        dx: Site spacing, µm.
        fields: The field declarations (names must be unique).
        solvers: Optional per-field solver objects (:class:`~biohybrid.tissue.solvers.
            CachedLUSolver` by default, or :class:`~biohybrid.tissue.solvers.FiPySolver`).
        threads: Fields solved concurrently (``CachedLUSolver`` fields only). 1 (default)
            solves them in turn; 2 makes three fields cost about 2.2× one field on two cores.
            Results are identical either way (fields are independent within a step).

    Raises:
        UserError: Bad grid size or spacing, duplicate field names, or a solver for an
            unknown field.
    """

    def __init__(
        self,
        nx: int,
        ny: int,
        dx: float,
        fields: Sequence[FieldSpec],
        solvers: Mapping[str, FieldSolver] | None = None,
        threads: int = 1,
    ) -> None:
        if int(nx) != nx or int(ny) != ny or nx < 1 or ny < 1:
            raise UserError(f"tissue grid must be at least 1 × 1 sites, got {nx} × {ny}")
        if not (math.isfinite(dx) and dx > 0):
            raise UserError(f"tissue grid spacing dx must be a positive number (µm), got {dx}")
        if int(threads) != threads or threads < 1:
            raise UserError(f"tissue threads must be a positive integer, got {threads}")
        self.nx, self.ny, self.dx = int(nx), int(ny), float(dx)
        self.threads = int(threads)
        self._executor: ThreadPoolExecutor | None = None
        self.specs: dict[str, FieldSpec] = {}
        for spec in fields:
            if spec.name in self.specs:
                raise UserError(f"field {spec.name!r} is declared twice")
            self.specs[spec.name] = spec
        self._meshes: dict[bool, fipy.meshes.mesh.Mesh] = {}
        self.systems: dict[str, FieldSystem] = {}
        for spec in fields:
            mesh = self._mesh(spec.boundary == "periodic")
            self.systems[spec.name] = FieldSystem(spec, mesh, self.dx)
        solvers = dict(solvers or {})
        for name in solvers:
            self._check_name(name)
        self.solvers: dict[str, FieldSolver] = {
            name: solvers.get(name) or CachedLUSolver() for name in self.specs
        }
        n = self.n_sites
        self._secretion = {name: np.zeros(n) for name in self.specs}
        self._uptake = {name: np.zeros(n) for name in self.specs}
        self.ledger: dict[str, FieldLedger] = {
            name: FieldLedger(initial_mass=self.total(name)) for name in self.specs
        }

    def _mesh(self, periodic: bool) -> fipy.meshes.mesh.Mesh:
        if periodic not in self._meshes:
            cls = fipy.PeriodicGrid2D if periodic else fipy.Grid2D
            self._meshes[periodic] = cls(dx=self.dx, dy=self.dx, nx=self.nx, ny=self.ny)
        return self._meshes[periodic]

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
    def n_sites(self) -> int:
        """Number of sites (finite-volume cells)."""
        return self.nx * self.ny

    @property
    def site_area(self) -> float:
        """Area of one site, ``dx²`` µm²."""
        return self.dx * self.dx

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

    def values(self, name: str) -> NDArray[np.float64]:
        """The field's values per site, shape ``(n_sites,)`` (a copy), in its units."""
        return np.array(self._check_name(name).value, dtype=float)

    def grid(self, name: str) -> NDArray[np.float64]:
        """The field as an image, shape ``(ny, nx)``, row ``j`` = grid y."""
        return self.values(name).reshape(self.ny, self.nx)

    def sample(self, name: str, sites: ArrayLike) -> NDArray[np.float64]:
        """The field at the given flat sites, shape ``(len(sites),)``, in its units."""
        return self._check_name(name).value[self._check_sites(sites)]

    def gradient(self, name: str, sites: ArrayLike) -> NDArray[np.float64]:
        """FiPy's cell-centred gradient at the given sites, shape ``(len(sites), 2)``.

        Central differences through the face values (one-sided half differences at no-flux
        faces, toward the fixed value at Dirichlet faces), in units/µm; column 0 is x.
        """
        system = self._check_name(name)
        grad = np.asarray(system.var.grad.value)
        return grad[:, self._check_sites(sites)].T.copy()

    def total(self, name: str) -> float:
        """The field's integral over the domain, concentration × µm²."""
        system = self._check_name(name)
        return dot(system.volumes, system.value)

    def set_values(self, name: str, values: ArrayLike) -> None:
        """Overwrite a field (e.g. an initial condition) and restart its ledger.

        Args:
            name: Field name.
            values: New values per site, shape ``(n_sites,)`` or ``(ny, nx)``, in its units.
        """
        system = self._check_name(name)
        arr = np.asarray(values, dtype=float).reshape(-1)
        if arr.size != self.n_sites or not np.all(np.isfinite(arr)):
            raise UserError(
                f"field {name!r}: values must be {self.n_sites} finite numbers, got {arr.size}"
            )
        system.set_value(arr)
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
            secretion: Amount released per cell per time, concentration × µm² / time,
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
            system.operator(dt)  # FiPy assembly stays on the calling thread

        def advance(name: str) -> NDArray[np.float64]:
            sec, upt = coupling[name]
            solver = self.solvers[name]
            return np.asarray(solver.advance(self.systems[name], dt, sec, upt), dtype=float)

        olds = {name: np.array(system.value, dtype=float) for name, system in self.systems.items()}
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
            system.set_value(new)
            self.ledger[name].record(self._step_ledger(system, dt, old, new, sec, upt))

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
    def _step_ledger(
        system: FieldSystem,
        dt: float,
        old: NDArray[np.float64],
        new: NDArray[np.float64],
        secretion: NDArray[np.float64],
        uptake: NDArray[np.float64],
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
        )

    def imbalance(self, name: str | None = None, relative: bool = False) -> float:
        """The cumulative mass imbalance of a field, or the largest over all fields.

        Args:
            name: Field name, or ``None`` for the largest absolute value over the fields.
            relative: Divide by the ledger's scale (largest of mass and total flows).

        Returns:
            Concentration × µm² (or dimensionless when ``relative``).
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
