"""The work counters every intracellular stepper reports, under fixed names.

The names and their meaning are part of the stepper contract
(:class:`~biohybrid.intracellular.steppers.StepperProtocol`), so counters of different
methods can be compared and summed by the engine:

``macro_steps``
    ``advance`` calls that did work (non-empty rows, ``t1 > t0``).
``steps``
    Accepted (sub)steps, summed over cells.
``rejected``
    Rejected step attempts, summed over cells (0 for fixed-step methods).
``sweeps``
    Vectorised step attempts: one sweep steps every still-active cell once.
``rhs_evals``, ``jac_evals``, ``linear_solves``
    Batched calls, each over all cells still active at that point (finite-difference
    Jacobians count their ``k`` extra right-hand-side calls in ``rhs_evals``).
``newton_iterations``
    Newton iterations summed over cells (0 for linearly implicit methods such as
    Rosenbrock, which solve no nonlinear system).
``max_cell_steps``
    The most (sub)steps one cell took within one macro step (a maximum, not a sum).

A stepper may report further counters under other names.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Counters every stepper reports (initialised to 0), in display order.
COUNTERS: tuple[str, ...] = (
    "macro_steps",
    "steps",
    "rejected",
    "sweeps",
    "rhs_evals",
    "jac_evals",
    "linear_solves",
    "newton_iterations",
    "max_cell_steps",
)

#: Counters that hold a maximum instead of a running sum.
MAX_COUNTERS: frozenset[str] = frozenset({"max_cell_steps"})


def new_counters() -> dict[str, int]:
    """A fresh counter dict with every name of :data:`COUNTERS` at 0."""
    return dict.fromkeys(COUNTERS, 0)


def accumulate(total: dict[str, int], part: Mapping[str, int]) -> None:
    """Add the counters of one solve to ``total`` in place (maxima for :data:`MAX_COUNTERS`)."""
    for key, value in part.items():
        if key in MAX_COUNTERS:
            total[key] = max(total.get(key, 0), int(value))
        else:
            total[key] = total.get(key, 0) + int(value)
