"""A stateful stepper that advances all cells one macro step at a time.

The engine calls :meth:`Stepper.advance` once per ODE macro step with fresh per-cell inputs
(for example the local field concentration). Per-cell solver state that must survive a
restart (each cell's last accepted step size) lives in the :class:`StateTable` as the row
attribute ``"ode_h"``, so it follows cells through division and death.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.intracellular.integrate import integrate
from biohybrid.intracellular.state_table import StateTable
from biohybrid.intracellular.system import OdeSystem


class Stepper:
    """Advance every live row of a :class:`StateTable` under an :class:`OdeSystem`.

    Args:
        system: The declared ODE system.
        rtol: Relative tolerance.
        atol: Absolute tolerance.

    Attributes:
        counters: Work counters accumulated over all macro steps.
    """

    def __init__(self, system: OdeSystem, rtol: float = 1e-6, atol: float = 1e-9) -> None:
        self.system = system
        self.rtol = rtol
        self.atol = atol
        self.counters: dict[str, int] = {
            "macro_steps": 0,
            "steps": 0,
            "rejected": 0,
            "rhs_evals": 0,
            "jac_evals": 0,
            "linear_solves": 0,
        }

    def advance(
        self,
        table: StateTable,
        t0: float,
        t1: float,
        params: Mapping[str, Any],
        inputs: NDArray[np.float64] | None = None,
        rows: NDArray[np.int64] | None = None,
    ) -> None:
        """Advance the live rows of ``table`` from ``t0`` to ``t1`` in place.

        Args:
            table: The state table; its live rows are advanced.
            t0: Start time.
            t1: End time.
            params: Parameter values; floats or arrays aligned with ``rows``.
            inputs: External inputs aligned with ``rows``, shape ``(N, m)``.
            rows: The rows to advance (default: ``table.live_rows()``), shape ``(N,)``.
        """
        rows = table.live_rows() if rows is None else rows
        if rows.size == 0:
            return
        p, u = self.system.bind(params, inputs, rows.size)
        res = integrate(
            self.system.rhs,
            table.get(rows),
            (t0, t1),
            jac=self.system.jac,
            args=(p, u),
            rtol=self.rtol,
            atol=self.atol,
        )
        table.set_rows(rows, res.y)
        self.counters["macro_steps"] += 1
        for key, value in res.counters.items():
            self.counters[key] = self.counters.get(key, 0) + value
