"""Pluggable intracellular steppers: the contract and the registry of methods.

The engine advances every cell's ODE state once per ODE macro step through an object that
satisfies :class:`StepperProtocol`, built by :func:`make_stepper` from a method name:

========================  ==========================================================
``"rodas4"``              :class:`~.stepper.Stepper`: batched Rosenbrock RODAS4 (order
                          4, L-stable, per-cell adaptive steps, warm restarts).
``"rodas3"``              :class:`~.stepper.Stepper` with RODAS3 (order 3, cheaper).
``"implicit-euler"``      :class:`~.relaxation.RelaxationStepper`: backward-Euler
                          substeps with batched per-cell Newton, no error control; for
                          systems relaxing far faster than the macro step.
========================  ==========================================================

A model or a caller adds its own method per call (``make_stepper(..., extra={name:
factory})``); there is no global registry to mutate.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from numpy.typing import NDArray

from biohybrid.errors import UserError, did_you_mean
from biohybrid.intracellular.counters import COUNTERS, MAX_COUNTERS, accumulate, new_counters
from biohybrid.intracellular.relaxation import RelaxationStepper
from biohybrid.intracellular.state_table import StateTable
from biohybrid.intracellular.stepper import Stepper
from biohybrid.intracellular.system import OdeSystem
from biohybrid.intracellular.tolerances import DEFAULT_ATOL, AtolSpec, species_atol

__all__ = [
    "COUNTERS",
    "MAX_COUNTERS",
    "STEPPERS",
    "StepperFactory",
    "StepperProtocol",
    "accumulate",
    "make_stepper",
    "new_counters",
    "species_atol",
]


@runtime_checkable
class StepperProtocol(Protocol):
    """What the engine needs from an intracellular stepper.

    **advance.** ``advance(table, t0, t1, params, inputs=None, rows=None)`` takes

    * ``table``: the :class:`~.state_table.StateTable`; the state of ``rows`` is read with
      ``table.get(rows)`` and written back in place with ``table.set_rows``;
    * ``t0 <= t1``: the macro step, in the system's time unit; ``t1 == t0`` or no rows is a
      no-op that counts nothing;
    * ``params``: parameter values by name (a superset of ``system.params`` is fine),
      floats or per-cell arrays of shape ``(N,)`` aligned with ``rows``;
    * ``inputs``: external inputs aligned with ``rows``, shape ``(N, m)`` in
      ``system.inputs`` order (``None`` when ``m == 0``), held constant over the step;
    * ``rows``: the table rows to advance, shape ``(N,)`` (default ``table.live_rows()``).

    It returns ``None``. Every row given ends at ``t1`` or the call raises
    :class:`~biohybrid.errors.SimulationError` whose message names the failing table rows
    (``rows [..]``) and the time (``t=..``); on error the table may be partly updated.
    Bad arguments raise :class:`~biohybrid.errors.UserError`.

    **counters.** ``counters`` maps names to integers accumulated over the stepper's life.
    Every stepper reports at least the names of :data:`~.counters.COUNTERS`
    (``macro_steps``, ``steps``, ``rejected``, ``sweeps``, ``rhs_evals``, ``jac_evals``,
    ``linear_solves``, ``newton_iterations``, ``max_cell_steps``) with the meaning given in
    :mod:`~biohybrid.intracellular.counters` (a method that does not do a thing reports 0);
    it may add other names. All are sums except ``max_cell_steps`` (a maximum).

    **per-row state.** Anything a stepper remembers about a cell between macro steps (for
    example the next step size, ``"ode_h"``) lives in ``table.attrs`` under the names in
    ``row_attrs``, created with ``table.add_attr`` and a fill value meaning "unknown"
    (NaN). It therefore follows the row: a daughter made by ``copy_row`` inherits it, a
    freed and reused row starts from the fill value. A stepper keeps no other per-cell
    state, so the engine may add, remove and reorder rows freely between calls.

    **tolerances.** ``rtol`` is a float; ``atol`` is a float, a ``(k,)`` array or a mapping
    ``{species: value}`` (:func:`~.tolerances.species_atol`), resolved at construction.
    """

    system: OdeSystem
    counters: dict[str, int]
    row_attrs: tuple[str, ...]

    def advance(
        self,
        table: StateTable,
        t0: float,
        t1: float,
        params: Mapping[str, Any],
        inputs: NDArray | None = None,
        rows: NDArray | None = None,
    ) -> None:
        """Advance ``rows`` of ``table`` from ``t0`` to ``t1`` in place."""
        ...


#: ``factory(system, *, rtol, atol, atol_default, **options) -> StepperProtocol``.
StepperFactory = Callable[..., StepperProtocol]


def _rosenbrock(method: str) -> StepperFactory:
    """The factory of the batched Rosenbrock stepper with ``method`` (rodas4, rodas3)."""

    def factory(
        system: OdeSystem,
        *,
        rtol: float,
        atol: AtolSpec,
        atol_default: float = DEFAULT_ATOL,
        warm_start: bool = True,
    ) -> Stepper:
        return Stepper(
            system, rtol, atol, method=method, warm_start=warm_start, atol_default=atol_default
        )

    return factory


def _implicit_euler(
    system: OdeSystem,
    *,
    rtol: float,
    atol: AtolSpec,
    atol_default: float = DEFAULT_ATOL,
    n_sub: int = 1,
    max_newton: int = 12,
) -> RelaxationStepper:
    return RelaxationStepper(
        system, rtol, atol, n_sub=n_sub, max_newton=max_newton, atol_default=atol_default
    )


#: The built-in methods: name -> factory (read-only).
STEPPERS: Mapping[str, StepperFactory] = MappingProxyType(
    {
        "rodas4": _rosenbrock("rodas4"),
        "rodas3": _rosenbrock("rodas3"),
        "implicit-euler": _implicit_euler,
    }
)

_COMMON = ("rtol", "atol", "atol_default")


def _options_of(factory: StepperFactory) -> tuple[str, ...] | None:
    """Keyword options a factory accepts beyond the common ones (``None``: any)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params if p.name not in _COMMON)


def make_stepper(
    method: str,
    system: OdeSystem,
    *,
    rtol: float = 1e-6,
    atol: AtolSpec = DEFAULT_ATOL,
    atol_default: float = DEFAULT_ATOL,
    extra: Mapping[str, StepperFactory] | None = None,
    **options: Any,
) -> StepperProtocol:
    """Build the stepper of ``method`` for ``system``.

    Args:
        method: A name of :data:`STEPPERS` (``"rodas4"``, ``"rodas3"``,
            ``"implicit-euler"``) or of ``extra``.
        system: The ODE system to integrate.
        rtol: Relative tolerance.
        atol: Absolute tolerance: float, ``(k,)`` array or ``{species: value}``.
        atol_default: Tolerance of species an ``atol`` mapping leaves out (typically the
            run's scalar ``atol``).
        extra: Further methods for this call only, name -> factory; they take precedence
            over the built-in ones of the same name.
        **options: Method-specific options, e.g. ``warm_start`` (Rosenbrock), ``n_sub`` and
            ``max_newton`` (implicit Euler).

    Returns:
        A fresh stepper (its own counters, no shared state).

    Raises:
        UserError: Unknown method (the message lists the choices), an option the method
            does not take (the message lists its options), bad tolerances, or an ``extra``
            factory whose result does not satisfy :class:`StepperProtocol`.
    """
    registry = {**STEPPERS, **(extra or {})}
    if method not in registry:
        raise UserError(
            f"unknown intracellular method {method!r};{did_you_mean(method, list(registry))}"
            f" choices: {', '.join(registry)}"
        )
    factory = registry[method]
    accepted = _options_of(factory)
    if accepted is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise UserError(
                f"method {method!r} takes no option(s) {unknown}; its options:"
                f" {', '.join(accepted) or '(none)'}"
            )
    # Validate the tolerance against the species even if a factory would not.
    species_atol(atol, system.index, atol_default)
    stepper = factory(system, rtol=rtol, atol=atol, atol_default=atol_default, **options)
    if not isinstance(stepper, StepperProtocol):
        raise UserError(
            f"method {method!r}: factory returned {type(stepper).__name__}, which lacks"
            " system, counters, row_attrs or advance() (see StepperProtocol)"
        )
    return stepper
