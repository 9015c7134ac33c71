"""A stateful stepper that advances all cells one macro step at a time.

The engine calls :meth:`Stepper.advance` once per ODE macro step with fresh per-cell inputs
(for example the local field concentration). A restart must cost nothing, so each cell's
last proposed step size is kept in the :class:`StateTable` as the row attribute
``"ode_h"``: it follows the cell through division (the daughter inherits it) and is
cleared when the row is freed (a new cell in a recycled row starts with a fresh estimate).
The Rosenbrock kernel is one-step, so no other history is needed for a warm restart.

References:
    E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed.,
    Springer (1996), Sect. IV.7.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import UserError
from biohybrid.intracellular.counters import accumulate, new_counters
from biohybrid.intracellular.rosenbrock import METHODS, solve_cells
from biohybrid.intracellular.state_table import StateTable
from biohybrid.intracellular.system import OdeSystem
from biohybrid.intracellular.tolerances import DEFAULT_ATOL, AtolSpec, check_rtol, species_atol

#: Name of the per-row attribute holding each cell's next step size.
H_ATTR = "ode_h"


class Stepper:
    """Advance every live row of a :class:`StateTable` under an :class:`OdeSystem`.

    Implements :class:`~biohybrid.intracellular.steppers.StepperProtocol` (registry names
    ``"rodas4"`` and ``"rodas3"``).

    Args:
        system: The declared ODE system.
        rtol: Relative tolerance.
        atol: Absolute tolerance: a float, one value per species (shape ``(k,)``) or a
            mapping ``{species: value}`` (see :func:`~.tolerances.species_atol`).
        method: Rosenbrock method, ``"rodas4"`` (default) or ``"rodas3"``.
        warm_start: Keep each cell's step size across macro steps (default True). Set False
            only to measure the cost of cold restarts.
        atol_default: Tolerance of species an ``atol`` mapping leaves out.

    Attributes:
        atol: The resolved absolute tolerance per species, shape ``(k,)``.
        counters: Work counters accumulated over all macro steps (the names of
            :data:`~.counters.COUNTERS`; ``newton_iterations`` stays 0).
        row_attrs: The per-row table attributes it keeps: ``("ode_h",)``.

    Raises:
        UserError: Unknown method, bad tolerances.
    """

    row_attrs: tuple[str, ...] = (H_ATTR,)

    def __init__(
        self,
        system: OdeSystem,
        rtol: float = 1e-6,
        atol: AtolSpec = DEFAULT_ATOL,
        *,
        method: str = "rodas4",
        warm_start: bool = True,
        atol_default: float = DEFAULT_ATOL,
    ) -> None:
        if method not in METHODS:
            raise UserError(
                f"unknown Rosenbrock method {method!r}; valid methods: {', '.join(METHODS)}"
            )
        self.system = system
        self.rtol = check_rtol(rtol)
        self.atol = species_atol(atol, system.index, atol_default)
        self.method = method
        self.warm_start = warm_start
        self.counters: dict[str, int] = new_counters()

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
            params: Parameter values; floats or per-cell arrays of shape ``(N,)`` aligned
                with ``rows``.
            inputs: External inputs aligned with ``rows``, shape ``(N, m)``; held constant
                over the macro step.
            rows: The rows to advance (default: ``table.live_rows()``), shape ``(N,)``.

        Raises:
            SimulationError: If a cell's state becomes NaN/Inf or cannot meet the tolerance;
                the message names the table rows and the time.
        """
        rows = table.live_rows() if rows is None else np.asarray(rows, dtype=np.int64)
        if rows.size == 0 or t1 == t0:
            return
        table.add_attr(H_ATTR, fill=np.nan, dtype=float)
        p, u = self.system.bind(params, inputs, rows.size)
        p = {name: np.asarray(v, dtype=float) if np.ndim(v) else v for name, v in p.items()}
        h0 = table.attrs[H_ATTR][rows] if self.warm_start else None
        res = solve_cells(
            self.system.rhs,
            table.get(rows),
            float(t0),
            float(t1),
            jac=self.system.jac,
            args=(p, u),
            rtol=self.rtol,
            atol=self.atol,
            h0=h0,
            method=self.method,
            autonomous=self.system.autonomous,
            row_ids=rows,
        )
        table.set_rows(rows, res.y)
        table.attrs[H_ATTR][rows] = res.h
        self.counters["macro_steps"] += 1
        accumulate(self.counters, res.counters)
