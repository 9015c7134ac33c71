"""Populations: the cell types of a model, each with its own species, parameters and stepper.

A model declares its cell types as :class:`Population` objects (class attribute
``populations``). At run time each becomes a :class:`Cells` object holding what belongs to
that type alone: its :class:`~biohybrid.intracellular.OdeSystem`, its state table (one row
per live cell), its stepper (chosen per population) and its resolved parameters. Every
population is integrated as one batch.

**Sites.** All populations share the model's lattice and a site holds at most one cell,
whatever its type (volume exclusion, as in a cellular Potts or on-lattice agent model);
:attr:`Cells.occupant` is not needed per type, the model keeps one site → (population, row)
map.

**Parameters.** A population's own parameters (``Population.parameters``) are set in a
scenario by their qualified name (``[params.neuron] g_na = ...`` or ``--set
neuron.g_na=...``); an unqualified name works where it is unique among the model's and all
populations' parameters. Hooks see ``cells.params``: the model's parameters overlaid with
the population's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import UserError
from biohybrid.intracellular import OdeSystem, StateTable
from biohybrid.intracellular.species import Named
from biohybrid.params import ParameterSet

if TYPE_CHECKING:
    from biohybrid.intracellular.steppers import StepperProtocol


@dataclass(frozen=True)
class Population:
    """A declared cell type.

    Attributes:
        name: Identifier, e.g. ``"neuron"``; qualifies its parameters (``neuron.g_na``).
        parameters: The population's own declared parameters (beyond the model's).
        description: One-line meaning.
        kind: Default phenotype label of its agents.
        model_file: An SBML or CellML file whose model every cell of the population runs
            (:func:`biohybrid.importers.import_model`); the engine's default
            ``build_system`` imports it.
    """

    name: str
    parameters: ParameterSet = field(default_factory=lambda: ParameterSet({}))
    description: str = ""
    kind: str = ""
    model_file: str | None = None

    @cached_property
    def declared_parameters(self) -> ParameterSet:
        """Its parameters: the declared ones, or those of its ``model_file`` (imported once)."""
        if self.model_file is not None and not len(self.parameters):
            from biohybrid.importers import import_model

            return import_model(self.model_file).params
        return self.parameters

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise UserError(
                f"population name must be an identifier (letters, digits, _), got {self.name!r}"
            )


@dataclass(eq=False)
class Cells:
    """The run-time state of one population.

    Attributes:
        spec: The declaration.
        index: Position of the population in the model's declaration order.
        system: Its intracellular ODE system.
        table: Its state table (one row per live cell; ``attrs["site"]`` is each cell's site).
        stepper: Its intracellular stepper.
        params: The model's parameters overlaid with the population's own, resolved.
        method: The stepper's method name.
    """

    spec: Population
    index: int
    system: OdeSystem
    table: StateTable
    stepper: StepperProtocol
    params: Mapping[str, Any]
    method: str

    @property
    def name(self) -> str:
        """The population's name."""
        return self.spec.name

    @property
    def n(self) -> int:
        """Number of live cells."""
        return self.table.n_alive

    def rows(self) -> NDArray[np.int64]:
        """Live rows, ascending, shape ``(N,)``."""
        return self.table.live_rows()

    def sites(self, rows: NDArray[np.int64] | None = None) -> NDArray[np.int64]:
        """Sites of ``rows`` (default: all live rows), shape ``(N,)``."""
        rows = self.rows() if rows is None else rows
        return self.table.attrs["site"][rows]

    def state(self, rows: NDArray[np.int64] | None = None) -> Named:
        """States of ``rows`` (default: all live rows) as a named copy: ``y["ca"]``."""
        rows = self.rows() if rows is None else rows
        return self.system.index(self.table.get(rows))

    def species(self, name: str, rows: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """One species over ``rows`` (default: all live rows), shape ``(N,)``."""
        rows = self.rows() if rows is None else rows
        return self.table.get(rows)[:, self.system.index.col(name)]

    def set_species(self, name: str, rows: NDArray[np.int64], values: Any) -> None:
        """Write one species for ``rows``."""
        col = self.system.index.col(name)
        y = self.table.get(rows)
        y[:, col] = values
        self.table.set_rows(rows, y)

    def __repr__(self) -> str:
        return f"Cells({self.name!r}, n={self.n}, species={list(self.system.species)})"
