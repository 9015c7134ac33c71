"""Batched stiff integration of every cell's ODEs at once.

:func:`integrate` advances ``N`` independent systems of ``k`` ODEs with an L-stable
Rosenbrock method (RODAS4 by default) whose step size is controlled per cell; see
:mod:`biohybrid.intracellular.rosenbrock` for the kernel.

References:
    E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II*, 2nd ed.,
    Springer (1996), Sect. IV.7.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import UserError
from biohybrid.intracellular.rosenbrock import METHODS, solve_cells


@dataclass
class IntegrationResult:
    """Result of :func:`integrate`.

    Attributes:
        y: State at ``t_span[1]``, shape ``(N, k)``.
        t: The final time.
        counters: Work counters: ``steps`` and ``rejected`` (accepted and rejected steps,
            summed over cells), ``sweeps`` (vectorised steps), ``rhs_evals``, ``jac_evals``
            and ``linear_solves`` (batched calls, each over all active cells),
            ``max_cell_steps`` (most steps taken by one cell).
        h: Each cell's next proposed step size, shape ``(N,)``; pass it back as ``h0`` for
            a warm restart.
    """

    y: NDArray[np.float64]
    t: float
    counters: dict[str, int] = field(default_factory=dict)
    h: NDArray[np.float64] | None = None


def integrate(
    rhs: Callable[..., NDArray[np.float64]],
    y0: NDArray[np.float64],
    t_span: tuple[float, float],
    *,
    jac: Callable[..., NDArray[np.float64]] | None = None,
    args: tuple = (),
    rtol: float = 1e-6,
    atol: float | NDArray[np.float64] = 1e-9,
    method: str = "rodas4",
    h0: NDArray[np.float64] | float | None = None,
    autonomous: bool = False,
    max_sweeps: int = 1_000_000,
) -> IntegrationResult:
    """Integrate ``N`` independent stiff systems of size ``k`` from ``t_span[0]`` to ``t_span[1]``.

    Every cell has its own step size; a cell that needs small steps (a Ca²⁺ spike) does not
    slow down the others.

    Args:
        rhs: Vectorised right-hand side ``rhs(t, y, *args) -> (N, k)`` for ``y`` of shape
            ``(N, k)``. ``t`` is passed as an array of shape ``(N,)`` (each cell's own time),
            the same shape as a per-cell parameter.
        y0: Initial states, shape ``(N, k)``.
        t_span: ``(t0, t1)`` in the model's time unit, ``t1 >= t0``.
        jac: Optional Jacobian ``jac(t, y, *args) -> (N, k, k)`` with
            ``J[n, i, j] = ∂f_i/∂y_j``; vectorised forward differences otherwise.
        args: Extra arguments passed to ``rhs`` and ``jac``. Arrays whose leading dimension
            is ``N`` (also inside dicts, lists and tuples) are treated as per-cell values.
        rtol: Relative tolerance.
        atol: Absolute tolerance, a float or one value per species (shape ``(k,)``).
        method: ``"rodas4"`` (order 4, 6 stages; default) or ``"rodas3"`` (order 3,
            3 RHS calls per step). Both are L-stable and stiffly accurate.
        h0: Starting step size(s), float or shape ``(N,)``; estimated when omitted/NaN.
        autonomous: Set True if ``rhs`` ignores ``t`` to skip the ``∂f/∂t`` evaluation.
        max_sweeps: Give up after this many vectorised steps.

    Returns:
        The state at ``t1``, the work counters and each cell's next step size.

    Raises:
        SimulationError: If the state or RHS becomes NaN/Inf, or a cell cannot meet the
            tolerance (step-size underflow); the message names the rows and the time.
        UserError: On an unknown method or inconsistent shapes.
    """
    if method not in METHODS:
        raise UserError(
            f"Unknown integration method {method!r}; valid methods: {', '.join(METHODS)}."
        )
    if not (rtol > 0 and np.all(np.asarray(atol) >= 0)):
        raise UserError(f"Tolerances must be positive; got rtol={rtol!r}, atol={atol!r}.")
    y0 = np.asarray(y0, dtype=float)
    if y0.ndim != 2:
        raise UserError(f"y0 must have shape (N, k); got shape {y0.shape}.")
    t0, t1 = float(t_span[0]), float(t_span[1])
    if h0 is not None:
        h0 = np.broadcast_to(np.asarray(h0, dtype=float), (y0.shape[0],))
    res = solve_cells(
        rhs,
        y0,
        t0,
        t1,
        jac=jac,
        args=args,
        rtol=rtol,
        atol=atol,
        h0=h0,
        method=method,
        autonomous=autonomous,
        max_sweeps=max_sweeps,
    )
    return IntegrationResult(res.y, t1, res.counters, res.h)
