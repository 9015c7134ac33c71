"""Declarative intracellular ODE systems.

An :class:`OdeSystem` names its species, declares its parameters (with units and defaults),
gives a vectorised right-hand side and, optionally, an analytic Jacobian, and lists the
external inputs it reads from the tissue layer (e.g. the local ATP concentration).

The right-hand side has the signature ``rhs(t, y, p, u) -> dydt`` where

* ``t`` is the time in the model's time unit: an array of shape ``(N,)`` (each cell has its
  own step size, so its own time; treat it like a per-cell parameter), or a float,
* ``y`` is the state, shape ``(N, k)``, columns in :attr:`OdeSystem.species` order,
* ``p`` maps parameter names to floats or per-cell arrays of shape ``(N,)``,
* ``u`` is the input array, shape ``(N, m)``, columns in :attr:`OdeSystem.inputs` order,

and returns ``(N, k)``. A Jacobian ``jac(t, y, p, u)`` returns ``(N, k, k)`` with
``J[n, i, j] = d f_i / d y_j`` for cell ``n``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.intracellular.species import SpeciesIndex
from biohybrid.params import ParameterSet

Rhs = Callable[..., NDArray[np.float64]]


@dataclass(frozen=True)
class OdeSystem:
    """A vectorised intracellular ODE system, declared once and used by the engine.

    Attributes:
        name: Short name of the system.
        species: Names of the ``k`` state variables.
        params: Declared parameters of the rate laws, with units and defaults.
        rhs: Vectorised right-hand side ``rhs(t, y, p, u) -> (N, k)``.
        initial: Default initial value of each species.
        inputs: Names of the ``m`` external inputs read from the tissue layer.
        jac: Optional analytic Jacobian ``jac(t, y, p, u) -> (N, k, k)``.
        units: Units of each species, e.g. ``{"ca": "µM"}``.
        autonomous: True if ``rhs`` does not depend on ``t`` (inputs are held constant over
            a macro step anyway); the integrator then skips its ``∂f/∂t`` evaluation.
        floor: Lower bounds of species that must stay positive, ``{name: value}``. A
            Newton-based stepper (``"implicit-euler"``) projects its iterates onto them, so
            a full Newton step from far away cannot leave the domain of the rate laws; the
            error-controlled Rosenbrock steppers do not need it and ignore it.
    """

    name: str
    species: tuple[str, ...]
    params: ParameterSet
    rhs: Rhs
    initial: Mapping[str, float]
    inputs: tuple[str, ...] = ()
    jac: Rhs | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    autonomous: bool = False
    floor: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = set(self.species) - set(self.initial)
        if missing:
            raise ValueError(f"system {self.name!r}: no initial value for {sorted(missing)}")
        for name in self.floor:
            self.index.col(name)  # UserError naming the declared species

    @cached_property
    def index(self) -> SpeciesIndex:
        """Names of the state columns: ``system.index(y)["ca"]`` is the ``ca`` column."""
        return SpeciesIndex(self.species, "species", f"system {self.name!r}")

    @cached_property
    def input_index(self) -> SpeciesIndex:
        """Names of the input columns: ``system.input_index(u)["atp"]``."""
        return SpeciesIndex(self.inputs, "inputs", f"system {self.name!r}")

    @property
    def k(self) -> int:
        """Number of species."""
        return len(self.species)

    def initial_state(self) -> NDArray[np.float64]:
        """The default initial state, shape ``(k,)``."""
        return np.array([self.initial[s] for s in self.species], dtype=float)

    def bind(
        self, params: Mapping[str, Any], inputs: NDArray[np.float64] | None, n: int
    ) -> tuple[dict[str, Any], NDArray[np.float64]]:
        """Build the ``(p, u)`` argument pair for :attr:`rhs` and :attr:`jac`.

        Args:
            params: Parameter values; floats, or arrays of shape ``(n,)`` for per-cell values.
                Only this system's declared parameters are taken.
            inputs: External inputs, shape ``(n, m)``; ``None`` when ``m == 0``.
            n: Number of cells.

        Returns:
            ``(p, u)`` ready to pass as ``args`` to the integrator.
        """
        p = {name: params[name] for name in self.params}
        u = np.zeros((n, 0)) if inputs is None else np.asarray(inputs, dtype=float)
        if u.shape != (n, len(self.inputs)):
            raise ValueError(
                f"system {self.name!r}: inputs have shape {u.shape}, expected"
                f" ({n}, {len(self.inputs)}) for inputs {self.inputs}"
            )
        return p, u
