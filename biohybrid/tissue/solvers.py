"""Per-field linear solvers for the backward-Euler tissue step.

Every field step solves one linear system ``(A0 + diag(V u)) c¹ = b`` where ``A0`` is the
finite-volume operator of ``TransientTerm == DiffusionTerm(D_f) − ImplicitSourceTerm(decay)``
(with the field's boundary constraints) for the step ``dt``, assembled by
:class:`~biohybrid.tissue.layer.FieldSystem` and identical to FiPy's; ``V`` the cell
volumes (µm^d), ``u`` the summed per-site uptake coefficient (1/time) and
``b = (V/dt) c⁰ + S + b_bc`` with ``S`` the per-site secretion (amount/time) and ``b_bc``
the Dirichlet boundary contribution. ``A0`` is symmetric positive definite (positive
semi-definite diffusion plus ``V/dt`` on the diagonal), and adding the non-negative uptake
diagonal keeps it so (and keeps it an M-matrix, so ``c¹ >= 0`` whenever
``c⁰, S, b_bc >= 0``).

Three solver objects are provided, one instance per field (never a global ``FIPY_SOLVERS``):

* :class:`CachedLUSolver` (default): takes ``A0`` once per ``dt``, factorises
  ``A0 + diag(V u)`` with SuperLU, and reuses the factors while ``dt`` and the uptake are
  unchanged (one triangular solve per step). When only the uptake changes, the old factors
  become the preconditioner of a conjugate-gradient solve of the new system; the change is
  a diagonal update, so a few iterations suffice when few sites change (at most ``m + 1``
  iterations for ``m`` changed sites, in exact arithmetic). Refactorising pays only if the
  new uptake then persists, so the extra triangular solves are counted only over steps
  whose uptake equals the previous step's; once they reach ``refactor_after`` (about the
  cost of one factorisation: the ski-rental rule, never worse than twice the better of
  the two choices in hindsight) the current system is refactorised. Uptake that changes
  every step keeps the old factors as long as CG converges within ``max_iter // 2``
  iterations; slower or failed CG also triggers a refactorisation.
* :class:`CGSolver` (default on 3-D lattices): Jacobi-preconditioned CG from the old field,
  no factorisation (3-D factors fill in too much to pay).
* :class:`FiPySolver`: the reference path, FiPy's ``eq.solve`` with a per-field
  ``LinearLUSolver``: rebuilds and refactorises every step (slow; used in tests and as the
  benchmark baseline).

References:
    Hestenes, M. R. & Stiefel, E. (1952). Methods of conjugate gradients for solving linear
    systems. J. Res. Natl. Bur. Stand. 49(6):409-436 (preconditioned CG).
    Li, X. S. (2005). An overview of SuperLU: algorithms, implementation, and user
    interface. ACM Trans. Math. Softw. 31(3):302-325 (``scipy.sparse.linalg.splu``).
    Guyer, J. E., Wheeler, D. & Warren, J. A. (2009). FiPy: partial differential equations
    with Python. Comput. Sci. Eng. 11(3):6-15.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import NDArray

from biohybrid.errors import SimulationError, UserError

if TYPE_CHECKING:
    from biohybrid.tissue.layer import FieldSystem


def dot(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Inner product of two 1-D arrays without BLAS.

    NumPy's ``@`` calls multithreaded OpenBLAS ``ddot``, whose worker threads take
    milliseconds to wake on a loaded machine; ``einsum`` runs in the calling thread.
    """
    return float(np.einsum("i,i->", a, b))


def conserve(
    colsum: NDArray[np.float64], b: NDArray[np.float64], x: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Rescale an approximate solution of ``A x = b`` so that ``Σ(b − A x) = 0``.

    Summing the rows of ``A x = b`` gives the step's mass budget (the diffusion stencil
    sums to zero), so ``Σ r`` times ``dt`` is the amount an inexact solve creates or
    destroys. With the column sums ``s`` of ``A``, ``x ← x (1 + Σr / s·x)`` removes it while
    keeping the sign pattern of ``x``. It does not make ``x`` more accurate: the new
    residual is ``r − ε A x`` with ``ε = Σr / s·x``, so for ``A x ≈ b >= 0`` its norm is at
    most about ``(1 + √n) ‖r‖`` (approached when ``b`` is concentrated on a few sites, e.g.
    a point release), and the layer's ledger reports it
    (:meth:`~biohybrid.tissue.layer.TissueLayer.solve_residual`).

    Args:
        colsum: Column sums of ``A``, shape ``(n,)``.
        b: Right-hand side, shape ``(n,)``.
        x: Approximate solution, shape ``(n,)``.

    Returns:
        The rescaled solution (``x`` itself when ``s·x = 0``).
    """
    sx = dot(colsum, x)
    if sx == 0.0:
        return x
    r_sum = float(np.sum(b)) - sx  # Σ(A x) = s·x
    return x * (1.0 + r_sum / sx)


@dataclass(frozen=True)
class Operator:
    """The finite-volume operator of one field for one ``dt``, without the cells' uptake.

    Attributes:
        key: Identifies the system and ``dt`` the operator was built for.
        matrix: ``A0``, CSR, shape ``(n, n)``: ``V/dt + V·decay`` on the diagonal plus the
            finite-volume diffusion stencil and Dirichlet face conductances, amount/(conc·time).
        boundary_rhs: ``b_bc``, shape ``(n,)``: Dirichlet faces' conductance × boundary value,
            amount/time.
    """

    key: tuple[int, float]
    matrix: sp.csr_matrix
    boundary_rhs: NDArray[np.float64]


class FieldSolver(Protocol):
    """What the tissue layer needs from a per-field solver."""

    def advance(
        self,
        system: FieldSystem,
        dt: float,
        secretion: NDArray[np.float64],
        uptake: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Return the field after one backward-Euler step of ``dt``.

        Args:
            system: The field (FiPy variable, mesh, operator builder).
            dt: Step, model time unit.
            secretion: Per-site secretion, amount/time, shape ``(n,)``.
            uptake: Per-site summed uptake coefficient, 1/time, shape ``(n,)``.

        Returns:
            The new values, shape ``(n,)``; the caller stores them in the FiPy variable.
        """
        ...


@dataclass
class SolverStats:
    """Counters of the work a :class:`CachedLUSolver` did.

    Attributes:
        factorisations: SuperLU factorisations.
        direct_solves: Steps solved with one triangular solve.
        cg_solves: Steps solved by preconditioned CG.
        cg_iterations: Total CG iterations (each one triangular solve + one mat-vec).
    """

    factorisations: int = 0
    direct_solves: int = 0
    cg_solves: int = 0
    cg_iterations: int = 0


@dataclass
class CachedLUSolver:
    """Reuse one SuperLU factorisation while ``dt`` and the coefficients are unchanged.

    Args:
        rtol: CG stops when ``‖b − A x‖₂ <= rtol ‖b‖₂``; the CG solution is then rescaled
            by ``1 + O(rtol)`` so that the residual sums to zero, which keeps the mass
            ledger balanced to round-off (the residual's sum is the step's mass error).
            The balance then says nothing about the accuracy of the field; the layer
            records the residual's norm separately
            (:meth:`~biohybrid.tissue.layer.TissueLayer.solve_residual`).
        max_iter: CG iterations before giving up and refactorising.
        refactor_after: Extra triangular solves, over steps whose uptake repeats the
            previous step's, after which the current system is refactorised (a
            factorisation costs about 40-60 solves on 100²-400² grids).
        permc_spec: SuperLU column ordering; ``"MMD_AT_PLUS_A"`` with symmetric mode suits
            these symmetric matrices (about half the fill of the default ``"COLAMD"``).
    """

    rtol: float = 1e-10
    max_iter: int = 30
    refactor_after: int = 40
    permc_spec: str = "MMD_AT_PLUS_A"
    stats: SolverStats = field(default_factory=SolverStats)
    _key: tuple[int, float] | None = field(default=None, repr=False)
    _lu: spla.SuperLU | None = field(default=None, repr=False)
    _diag_ref: NDArray[np.float64] | None = field(default=None, repr=False)
    _debt: int = field(default=0, repr=False)
    _diag_prev: NDArray[np.float64] | None = field(default=None, repr=False)
    _colsum0: NDArray[np.float64] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (0.0 < self.rtol < 1.0):
            raise UserError(f"CachedLUSolver: rtol must be in (0, 1), got {self.rtol}")
        if self.max_iter < 1 or self.refactor_after < 0:
            raise UserError("CachedLUSolver: max_iter must be >= 1 and refactor_after >= 0")

    def _factorise(self, op: Operator, diag: NDArray[np.float64]) -> None:
        matrix = (op.matrix + sp.diags(diag, format="csr")).tocsc()
        symmetric = self.permc_spec == "MMD_AT_PLUS_A"
        kwargs = {"diag_pivot_thresh": 0.0, "options": {"SymmetricMode": True}} if symmetric else {}
        try:
            self._lu = spla.splu(matrix, permc_spec=self.permc_spec, **kwargs)
        except RuntimeError as exc:  # SuperLU reports a singular factor this way
            raise SimulationError(f"tissue solver: LU factorisation failed ({exc})") from exc
        self._key, self._diag_ref, self._debt = op.key, diag.copy(), 0
        self._colsum0 = np.asarray(op.matrix.sum(axis=0), dtype=float).reshape(-1)
        self.stats.factorisations += 1

    def advance(
        self,
        system: FieldSystem,
        dt: float,
        secretion: NDArray[np.float64],
        uptake: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Backward-Euler step with cached factors; see :class:`FieldSolver`."""
        op = system.operator(dt)
        diag = system.volumes * uptake
        rhs = system.volumes / dt * system.value + secretion + op.boundary_rhs
        if self._key != op.key or self._lu is None:
            self._factorise(op, diag)
        repeated = self._diag_prev is not None and np.array_equal(diag, self._diag_prev)
        self._diag_prev = diag
        if np.array_equal(diag, self._diag_ref):
            self.stats.direct_solves += 1
            assert self._lu is not None
            return self._lu.solve(rhs)
        x, iterations = self._pcg(op.matrix, diag, rhs)
        if repeated:
            self._debt += iterations + 1
        if x is not None:
            assert self._colsum0 is not None
            x = conserve(self._colsum0 + diag, rhs, x)
        slow = iterations > self.max_iter // 2
        if x is None or slow or self._debt >= self.refactor_after:
            self._factorise(op, diag)
            if x is None:
                self.stats.direct_solves += 1
                assert self._lu is not None
                return self._lu.solve(rhs)
        return x

    def _pcg(
        self, A0: sp.csr_matrix, diag: NDArray[np.float64], b: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64] | None, int]:
        """CG on ``(A0 + diag) x = b`` preconditioned by the cached factors.

        Returns:
            The solution (``None`` if not converged in ``max_iter``) and the iterations used.
        """
        lu = self._lu
        assert lu is not None
        self.stats.cg_solves += 1
        tol = self.rtol * np.sqrt(dot(b, b))
        x = lu.solve(b)
        r = b - (A0 @ x + diag * x)
        if np.sqrt(dot(r, r)) <= tol:
            return x, 0
        z = lu.solve(r)
        p = z.copy()
        rz = dot(r, z)
        for it in range(1, self.max_iter + 1):
            Ap = A0 @ p + diag * p
            alpha = rz / dot(p, Ap)
            x += alpha * p
            r -= alpha * Ap
            self.stats.cg_iterations += 1
            if np.sqrt(dot(r, r)) <= tol:
                return x, it
            z = lu.solve(r)
            rz_new = dot(r, z)
            p *= rz_new / rz
            p += z
            rz = rz_new
        return None, self.max_iter


@dataclass
class CGSolver:
    """Jacobi-preconditioned conjugate gradients, warm-started from the old field.

    The default for 3-D lattices, where SuperLU's fill-in makes a factorisation cost
    seconds (about 7 s and 1.3e7 factor entries for 31³ sites) and each triangular solve
    more than a hundred CG iterations; a backward-Euler step is well conditioned
    (``1 + 4 ndim D dt / h²`` at most), so CG needs a few tens of iterations.

    Args:
        rtol: Stop when ``‖b − A x‖₂ <= rtol ‖b‖₂``.
        max_iter: Iterations before the step fails with a :class:`SimulationError`.
        conserve: Rescale the solution so its residual sums to zero (mass balance to
            round-off; see :func:`conserve`).
        stats: Counts steps in ``cg_solves`` and iterations in ``cg_iterations``.
    """

    rtol: float = 1e-10
    max_iter: int = 5000
    conserve: bool = True
    stats: SolverStats = field(default_factory=SolverStats)
    _key: tuple[int, float] | None = field(default=None, repr=False)
    _diag0: NDArray[np.float64] | None = field(default=None, repr=False)
    _colsum0: NDArray[np.float64] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (0.0 < self.rtol < 1.0):
            raise UserError(f"CGSolver: rtol must be in (0, 1), got {self.rtol}")
        if self.max_iter < 1:
            raise UserError(f"CGSolver: max_iter must be >= 1, got {self.max_iter}")

    def advance(
        self,
        system: FieldSystem,
        dt: float,
        secretion: NDArray[np.float64],
        uptake: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Backward-Euler step by preconditioned CG; see :class:`FieldSolver`."""
        op = system.operator(dt)
        if self._key != op.key:
            self._key = op.key
            self._diag0 = op.matrix.diagonal()
            self._colsum0 = np.asarray(op.matrix.sum(axis=0), dtype=float).reshape(-1)
        assert self._diag0 is not None and self._colsum0 is not None
        A0, diag = op.matrix, system.volumes * uptake
        b = system.volumes / dt * system.value + secretion + op.boundary_rhs
        inv = 1.0 / (self._diag0 + diag)
        self.stats.cg_solves += 1
        tol = self.rtol * np.sqrt(dot(b, b))
        x = np.array(system.value, dtype=float)
        r = b - (A0 @ x + diag * x)
        if np.sqrt(dot(r, r)) > tol:
            z = inv * r
            p = z.copy()
            rz = dot(r, z)
            for _ in range(self.max_iter):
                Ap = A0 @ p + diag * p
                alpha = rz / dot(p, Ap)
                x += alpha * p
                r -= alpha * Ap
                self.stats.cg_iterations += 1
                if np.sqrt(dot(r, r)) <= tol:
                    break
                z = inv * r
                rz_new = dot(r, z)
                p *= rz_new / rz
                p += z
                rz = rz_new
            else:
                raise SimulationError(
                    f"tissue field {system.spec.name!r}: CG did not reach rtol {self.rtol:g}"
                    f" in {self.max_iter} iterations (raise CGSolver.max_iter or use"
                    " CachedLUSolver)"
                )
        return conserve(self._colsum0 + diag, b, x) if self.conserve else x


@dataclass
class FiPySolver:
    """Reference solver: FiPy's ``eq.solve`` each step (rebuilds and refactorises).

    Args:
        stats: Counts steps in ``direct_solves``.
    """

    stats: SolverStats = field(default_factory=SolverStats)

    def advance(
        self,
        system: FieldSystem,
        dt: float,
        secretion: NDArray[np.float64],
        uptake: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Backward-Euler step through FiPy; see :class:`FieldSolver`."""
        from fipy.solvers.scipy import LinearLUSolver

        eq = system.equation(uptake=uptake, source_density=secretion / system.volumes)
        eq.solve(var=system.var, dt=dt, solver=LinearLUSolver())
        self.stats.direct_solves += 1
        return np.array(system.var.value, dtype=float)
