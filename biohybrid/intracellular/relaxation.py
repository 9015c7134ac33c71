"""Backward-Euler relaxation stepper: fixed substeps, batched Newton, per-cell convergence.

For systems whose fast modes are far faster than the macro step (a signalling cascade
relaxing in seconds on a clock of weeks, ``λ·Δt ~ 1e5-1e8``) an error-controlled method
would resolve transients nobody looks at. Backward Euler is L-stable (its stability function
``R(z) = 1/(1 - z)`` vanishes as ``z → -∞``), so with large steps the fast modes land on
their quasi-steady state within each substep and the slow ones are followed to first order.

Each substep ``z = y + h f(t + h, z)`` is solved by Newton's method vectorised over cells:
``(I - h J(z)) Δ = z - y - h f(z)``, ``z ← z - Δ``, with the analytic Jacobian of the system
or forward differences. A cell leaves the iteration as soon as its own update is below the
tolerance (``|Δ_i| <= atol_i + rtol |z_i|`` for every species ``i``), so one slow cell does
not make all others iterate. Species listed in :attr:`OdeSystem.floor` are projected onto
their lower bound after every update.

There is no error control: accuracy on the slow modes is set by the number of substeps
``n_sub`` per macro step. No per-row state is kept between macro steps (the method is one
step and has no step-size estimate), so cells need nothing in ``table.attrs``.

References:
    E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed.,
    Springer (1996), Sect. IV.3 (L-stability of the implicit Euler method) and IV.8
    (simplified Newton iterations, stopping criterion).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import SimulationError, UserError
from biohybrid.intracellular.counters import new_counters
from biohybrid.intracellular.rosenbrock import fd_jacobian, take_cells
from biohybrid.intracellular.state_table import StateTable
from biohybrid.intracellular.system import OdeSystem
from biohybrid.intracellular.tolerances import DEFAULT_ATOL, AtolSpec, check_rtol, species_atol

Array = NDArray[np.float64]


class RelaxationStepper:
    """Backward-Euler macro steps with batched, per-cell Newton (L-stable, fixed substeps).

    Implements :class:`~biohybrid.intracellular.steppers.StepperProtocol` (registry name
    ``"implicit-euler"``).

    Args:
        system: The ODE system; its Jacobian is used if given, forward differences
            otherwise. Its :attr:`~OdeSystem.floor` bounds are applied to Newton iterates.
        rtol: Relative Newton tolerance.
        atol: Absolute Newton tolerance: a float, one value per species (shape ``(k,)``) or
            a mapping ``{species: value}``.
        n_sub: Backward-Euler substeps per macro step.
        max_newton: Newton iterations per substep before giving up.
        atol_default: Tolerance of species an ``atol`` mapping leaves out.

    Attributes:
        atol: The resolved absolute tolerance per species, shape ``(k,)``.
        counters: Work counters (the names of :data:`~.counters.COUNTERS`; ``rejected``
            stays 0).
        row_attrs: Per-row table attributes it keeps: none.

    Raises:
        UserError: Bad tolerances or substep/iteration counts.
    """

    row_attrs: tuple[str, ...] = ()

    def __init__(
        self,
        system: OdeSystem,
        rtol: float = 1e-6,
        atol: AtolSpec = DEFAULT_ATOL,
        n_sub: int = 1,
        max_newton: int = 12,
        *,
        atol_default: float = DEFAULT_ATOL,
    ) -> None:
        for name, value in (("n_sub", n_sub), ("max_newton", max_newton)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise UserError(f"{name} must be an integer >= 1; got {value!r}")
        self.system = system
        self.rtol = check_rtol(rtol)
        self.atol = species_atol(atol, system.index, atol_default)
        self.n_sub, self.max_newton = int(n_sub), int(max_newton)
        floor = dict(system.floor)
        self._floor_cols = np.array(system.index.cols(list(floor)), dtype=np.intp)
        self._floor_vals = np.array(list(floor.values()), dtype=float)
        self.counters: dict[str, int] = new_counters()

    # ------------------------------------------------------------------ kernels
    def _rhs(self, t: float, y: Array, p: Mapping[str, Any], u: Array) -> Array:
        out = self.system.rhs(t, y, p, u)
        self.counters["rhs_evals"] += 1
        if not isinstance(out, np.ndarray) or out.shape != y.shape:
            shape = getattr(out, "shape", type(out).__name__)
            raise UserError(
                f"system {self.system.name!r}: rhs returned shape {shape}; expected {y.shape}"
            )
        return out

    def _jac(self, t: float, y: Array, f: Array, p: Mapping[str, Any], u: Array) -> Array:
        self.counters["jac_evals"] += 1
        n, k = y.shape
        if self.system.jac is not None:
            J = np.asarray(self.system.jac(t, y, p, u), dtype=float)
            if J.shape != (n, k, k):
                raise UserError(
                    f"system {self.system.name!r}: jac returned shape {J.shape}; expected"
                    f" ({n}, {k}, {k})"
                )
            return J

        def f_species_major(tt: Array, ysm: Array, args: tuple) -> Array:
            return self._rhs(t, ysm.T, *args).T

        Jsm = fd_jacobian(f_species_major, np.full(n, t), y.T, f.T, (p, u), self.atol)
        return np.moveaxis(Jsm, 2, 0)

    def _substep(
        self, y: Array, t: float, h: float, p: Mapping[str, Any], u: Array, labels: NDArray
    ) -> Array:
        """One backward-Euler step ``y -> z`` at time ``t`` (the new time), all cells."""
        n, k = y.shape
        eye = np.eye(k)
        z = y.copy()
        idx = np.arange(n)  # cells (local indices) still iterating
        za, ya, pa, ua = z, y, p, u
        for _ in range(self.max_newton):
            m = idx.size
            f = self._rhs(t, za, pa, ua)
            g = za - ya - h * f
            J = eye - h * self._jac(t, za, f, pa, ua)
            try:
                dz = np.linalg.solve(J, g[..., None])[..., 0]
            except np.linalg.LinAlgError:
                with np.errstate(all="ignore"):
                    sign, _ = np.linalg.slogdet(J)
                bad = ~(sign != 0)
                raise SimulationError(
                    f"singular Newton matrix (I - h J) in rows {labels[idx[bad]][:10].tolist()}"
                    f" at t={t:g}"
                ) from None
            self.counters["linear_solves"] += 1
            self.counters["newton_iterations"] += m
            za = za - dz
            if self._floor_cols.size:
                za[:, self._floor_cols] = np.clip(za[:, self._floor_cols], self._floor_vals, None)
            bad = ~np.isfinite(za).all(axis=1)
            if bad.any():
                what = "rhs returned NaN/Inf" if not np.isfinite(f[bad]).all() else "NaN/Inf"
                raise SimulationError(
                    f"backward-Euler Newton: {what} in rows {labels[idx[bad]][:10].tolist()}"
                    f" at t={t:g}"
                )
            conv = np.all(np.abs(dz) <= self.atol + self.rtol * np.abs(za), axis=1)
            if m == n:
                z = za  # nobody has dropped out yet: no scatter needed
            else:
                z[idx] = za
            if conv.all():
                return z
            keep = np.flatnonzero(~conv)
            idx = idx[keep]
            za, ya, ua = za[keep], ya[keep], ua[keep]
            pa = take_cells(pa, keep, m)
        raise SimulationError(
            f"backward-Euler Newton did not converge in {self.max_newton} iterations in rows"
            f" {labels[idx][:10].tolist()} at t={t:g} (max update {np.abs(dz).max():.3g})"
        )

    # ------------------------------------------------------------------ interface
    def solve(
        self,
        y0: Array,
        t0: float,
        t1: float,
        p: Mapping[str, Any],
        u: Array,
        rows: NDArray[np.integer] | None = None,
    ) -> Array:
        """Advance states ``y0`` from ``t0`` to ``t1`` in ``n_sub`` backward-Euler substeps.

        Args:
            y0: States, shape ``(N, k)``.
            t0: Start time.
            t1: End time (``>= t0``).
            p: Bound parameters (floats or per-cell ``(N,)`` arrays), as for ``rhs``.
            u: Inputs, shape ``(N, m)``.
            rows: Labels of the cells for error messages (default ``0..N-1``).

        Returns:
            The states at ``t1``, shape ``(N, k)`` (a new array).

        Raises:
            SimulationError: Non-finite states, a singular Newton matrix or no Newton
                convergence; the message names the rows and the time.
            UserError: ``t1 < t0`` or a wrong shape.
        """
        y = np.array(y0, dtype=float)
        if y.ndim != 2 or y.shape[1] != self.system.k:
            raise UserError(f"y0 must have shape (N, {self.system.k}); got {y.shape}")
        labels = np.arange(y.shape[0]) if rows is None else np.asarray(rows)
        if t1 < t0:
            raise UserError(f"t1 must not be before t0; got ({t0}, {t1})")
        if y.shape[0] == 0 or t1 == t0:
            return y
        bad0 = ~np.isfinite(y).all(axis=1)
        if bad0.any():
            raise SimulationError(
                f"non-finite initial state in rows {labels[bad0][:10].tolist()} at t={t0:g}"
            )
        h = (t1 - t0) / self.n_sub
        t = t0
        for _ in range(self.n_sub):
            t += h
            y = self._substep(y, t, h, p, u, labels)
            self.counters["sweeps"] += 1
            self.counters["steps"] += y.shape[0]
        self.counters["max_cell_steps"] = max(self.counters["max_cell_steps"], self.n_sub)
        return y

    def advance(
        self,
        table: StateTable,
        t0: float,
        t1: float,
        params: Mapping[str, Any],
        inputs: NDArray[np.float64] | None = None,
        rows: NDArray[np.int64] | None = None,
    ) -> None:
        """Advance the rows of ``table`` from ``t0`` to ``t1`` in place.

        Args:
            table: The state table; its live rows are advanced.
            t0: Start time, in the system's time unit.
            t1: End time.
            params: Parameter values; floats or per-cell arrays aligned with ``rows``.
            inputs: External inputs aligned with ``rows``, shape ``(N, m)``; held constant
                over the macro step.
            rows: The rows to advance (default: ``table.live_rows()``).

        Raises:
            SimulationError: See :meth:`solve`; the message names the table rows and time.
        """
        rows = table.live_rows() if rows is None else np.asarray(rows, dtype=np.int64)
        if rows.size == 0 or t1 == t0:
            return
        p, u = self.system.bind(params, inputs, rows.size)
        p = {name: np.asarray(v, dtype=float) if np.ndim(v) else v for name, v in p.items()}
        table.set_rows(rows, self.solve(table.get(rows), float(t0), float(t1), p, u, rows))
        self.counters["macro_steps"] += 1
