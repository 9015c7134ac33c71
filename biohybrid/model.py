"""The hybrid model base: Mesa agents, a state table, FiPy fields and an organ aggregator.

:class:`HybridModel` wires the four scales of a biohybrid model and steps them on the
multirate :class:`~biohybrid.schedule.Schedule`. One tick moves data in one direction
(see ``DESIGN.md``)::

    fields ──sample at cell sites──▶ inputs u (N, m)
    state table y (N, k) ──batched stiff integrate over dt_ode with u──▶ y'
    phenotype map (y') ──▶ per-cell secretion / uptake (N,) per field
    secretion / uptake ──▶ implicit field step over dt_field ──▶ fields'
    behaviour (y') ──▶ divide / die masks ──▶ Mesa agents act (rows added / freed)
    aggregator (y', agents, fields') ──▶ one row of biomarkers per dt_output

Scales talk through arrays, never through calls from an agent into a solver.

Contract for subclasses (class attributes and hooks):

1. ``name``, ``description`` and ``time_units`` (e.g. ``"s"``, ``"min"``, ``"yr"``).
2. ``parameters``: a :class:`~biohybrid.params.ParameterSet` declaring every model
   parameter once, with units, default and meaning.
3. ``run_defaults``: default run settings (``t_end``, ``dt_ode``, ``dt_field``,
   ``dt_behaviour``, ``dt_output``, ``nx``, ``ny``, ``dx``, ``rtol``, ``atol``); any not
   given fall back to :data:`RUN_PARAMETERS`.
4. ``biomarkers``: a tuple of :class:`~biohybrid.organ.Biomarker`.
5. :meth:`build_system` returns the :class:`~biohybrid.intracellular.OdeSystem`.
6. :meth:`build_fields` returns the :class:`~biohybrid.tissue.FieldSpec` list (may be empty).
7. :meth:`setup` places the initial cells with :meth:`add_cell`.
8. :meth:`measure` returns ``{biomarker name: value}``.

Optional hooks, all given arrays over the live rows ``rows`` (shape ``(N,)``) and their
states ``y`` (shape ``(N, k)``): :meth:`cell_params`, :meth:`cell_inputs`,
:meth:`cell_outputs`, :meth:`behaviour`, :meth:`on_division`; plus :meth:`summary` and
:meth:`write_outputs` for model-specific run outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import mesa
import numpy as np
import scipy.sparse as sp
from mesa.discrete_space import OrthogonalMooreGrid, OrthogonalVonNeumannGrid
from numpy.typing import ArrayLike, NDArray

from biohybrid.cells.agent import BioCell
from biohybrid.errors import UserError
from biohybrid.geometry import Lattice
from biohybrid.intracellular import OdeSystem, StateTable, Stepper
from biohybrid.organ import Biomarker, BiomarkerRecorder
from biohybrid.params import Param, ParameterSet
from biohybrid.schedule import Schedule
from biohybrid.tissue import FieldSpec, TissueLayer

#: Run settings every model accepts; units of times are the model's ``time_units``.
RUN_PARAMETERS: dict[str, Param] = {
    "t_end": Param(100.0, "time", "Run horizon", gt=0),
    "dt_output": Param(1.0, "time", "Output (biomarker) interval", gt=0),
    "dt_ode": Param(1.0, "time", "Intracellular ODE macro step (coupling interval)", gt=0),
    "dt_field": Param(1.0, "time", "Tissue field step", gt=0),
    "dt_behaviour": Param(1.0, "time", "Cell behaviour (division, death) step", gt=0),
    "nx": Param(20, "sites", "Grid width", ge=1, le=4096, kind=int),
    "ny": Param(20, "sites", "Grid height", ge=1, le=4096, kind=int),
    "dx": Param(10.0, "µm", "Grid spacing (one cell per site)", gt=0),
    "rtol": Param(1e-6, "1", "Relative tolerance of the intracellular integrator", gt=0, lt=1),
    "atol": Param(1e-9, "species units", "Absolute tolerance of the integrator", gt=0),
}


def run_parameter_set(model_cls: type[HybridModel]) -> ParameterSet:
    """The run settings a model accepts, with the model's defaults and time units.

    Args:
        model_cls: The model class.

    Returns:
        A parameter set over :data:`RUN_PARAMETERS`.
    """
    decl = {}
    for name, p in RUN_PARAMETERS.items():
        units = model_cls.time_units if p.units == "time" else p.units
        default = model_cls.run_defaults.get(name, p.default)
        decl[name] = dataclasses.replace(p, default=default, units=units)
    return ParameterSet(decl, title=f"run settings of model '{model_cls.name}'")


class HybridModel(mesa.Model):
    """Base class of every biohybrid model (see the module docstring for the contract).

    Args:
        params: Model parameter values; validated against :attr:`parameters`, defaults
            filled in.
        run: Run settings; validated against :func:`run_parameter_set`.
        seed: Seed of the model's random generators (``self.rng``, ``self.random``).

    Attributes:
        params: Resolved model parameters.
        run: Resolved run settings.
        schedule: The multirate schedule.
        system: The intracellular ODE system.
        table: The state table, one row per live cell.
        grid: The Mesa discrete-space grid (``nx × ny``, one agent per site at most).
        tissue: The tissue layer, or ``None`` for a model without fields.
        stepper: The intracellular stepper.
        recorder: The biomarker recorder.
        tick: Ticks completed.
        t: Model time (``tick * schedule.base``), in :attr:`time_units`.
        counters: Work and event counters of the run.
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    time_units: ClassVar[str] = "s"
    parameters: ClassVar[ParameterSet] = ParameterSet({})
    run_defaults: ClassVar[dict[str, Any]] = {}
    biomarkers: ClassVar[tuple[Biomarker, ...]] = ()
    neighbourhood: ClassVar[str] = "moore"

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        run: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        resolved = self.parameters.resolve(params)
        run_resolved = run_parameter_set(type(self)).resolve(run)
        super().__init__(rng=int(seed))
        self.seed = int(seed)
        self.params: dict[str, Any] = resolved
        self.run: dict[str, Any] = run_resolved
        self.schedule = Schedule.from_clocks(
            t_end=self.run["t_end"],
            dt_ode=self.run["dt_ode"],
            dt_field=self.run["dt_field"],
            dt_behaviour=self.run["dt_behaviour"],
            dt_output=self.run["dt_output"],
        )
        self.tick = 0
        self.t = 0.0
        self.nx, self.ny, self.dx = self.run["nx"], self.run["ny"], self.run["dx"]
        self.lattice = Lattice((self.nx, self.ny), self.dx)
        self.system: OdeSystem = self.build_system()
        self.table = StateTable(self.system.species, capacity=self.nx * self.ny)
        grid_cls = (
            OrthogonalMooreGrid if self.neighbourhood == "moore" else OrthogonalVonNeumannGrid
        )
        self.grid = grid_cls((self.nx, self.ny), torus=False, capacity=1, random=self.random)
        self._cells_by_site = [self.grid[(i, j)] for j in range(self.ny) for i in range(self.nx)]
        self._site_of_cell = {id(c): s for s, c in enumerate(self._cells_by_site)}
        self._agent_by_row: dict[int, BioCell] = {}
        try:
            fields = list(self.build_fields())
        except ValueError as exc:  # invalid field declaration from user parameters
            raise UserError(f"Invalid field settings for model '{self.name}': {exc}.") from None
        self.tissue: TissueLayer | None = (
            TissueLayer(self.nx, self.ny, self.dx, fields) if fields else None
        )
        self.stepper = Stepper(self.system, rtol=self.run["rtol"], atol=self.run["atol"])
        self.recorder = BiomarkerRecorder(self.biomarkers)
        self.counters: dict[str, int] = {
            "ticks": 0,
            "ode_macro_steps": 0,
            "field_steps": 0,
            "behaviour_steps": 0,
            "divisions": 0,
            "deaths": 0,
        }
        self.setup()
        self._record()

    # ------------------------------------------------------------------ contract
    def build_system(self) -> OdeSystem:
        """Return the intracellular ODE system (required)."""
        raise NotImplementedError

    def build_fields(self) -> Sequence[FieldSpec]:
        """Return the tissue fields; the default is none."""
        return []

    def setup(self) -> None:
        """Place the initial cells with :meth:`add_cell` (required)."""
        raise NotImplementedError

    def measure(self) -> dict[str, float]:
        """Return one value per declared biomarker at the current time (required)."""
        raise NotImplementedError

    def cell_params(self, rows: NDArray[np.int64]) -> Mapping[str, Any]:
        """Parameters for the ODE system over ``rows``: floats or arrays of shape ``(N,)``."""
        return self.params

    def cell_inputs(self, rows: NDArray[np.int64]) -> NDArray[np.float64] | None:
        """External ODE inputs over ``rows``, shape ``(N, m)``.

        The default samples, at each cell's site, the field named by each of the system's
        inputs.
        """
        if not self.system.inputs:
            return None
        if self.tissue is None:
            raise NotImplementedError(f"model '{self.name}' must provide cell_inputs()")
        sites = self.table.attrs["site"][rows]
        return np.column_stack([self.tissue.sample(name, sites) for name in self.system.inputs])

    def cell_outputs(
        self, rows: NDArray[np.int64], y: NDArray[np.float64]
    ) -> Mapping[str, tuple[ArrayLike, ArrayLike]]:
        """The phenotype map to the tissue: ``{field: (secretion, uptake)}`` per cell.

        Args:
            rows: Live rows, shape ``(N,)``.
            y: Their states, shape ``(N, k)``.

        Returns:
            For each field, secretion and uptake arrays of shape ``(N,)`` (see
            :meth:`biohybrid.tissue.TissueLayer.set_coupling` for units).
        """
        return {}

    def behaviour(
        self, rows: NDArray[np.int64], y: NDArray[np.float64], dt: float
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Decide, vectorised, which cells divide and which die over ``dt``.

        Returns:
            ``(divide, die)``: boolean masks of shape ``(N,)``.
        """
        none = np.zeros(rows.size, dtype=bool)
        return none, none

    def on_division(self, parent_row: int, daughter_row: int) -> None:
        """Split state between parent and daughter (default: the daughter is a copy)."""

    def summary(self) -> dict[str, Any]:
        """Model-specific summary values written to ``summary.json`` (default: none)."""
        return {}

    def write_outputs(self, run_dir: Path) -> None:
        """Write model-specific files (e.g. extra figures) into ``run_dir``."""

    # ------------------------------------------------------------------ sites and cells
    def site_of(self, coordinate: tuple[int, int]) -> int:
        """Flat site index ``i + nx * j`` of grid coordinate ``(i, j)``."""
        i, j = coordinate
        return int(i + self.nx * j)

    def coordinate_of(self, site: int) -> tuple[int, int]:
        """Grid coordinate ``(i, j)`` of a flat site index."""
        return int(site % self.nx), int(site // self.nx)

    def site_positions(self, sites: ArrayLike) -> NDArray[np.float64]:
        """Centre positions in µm of flat ``sites``, shape ``(N, 2)``."""
        sites = np.asarray(sites, dtype=np.int64)
        return np.column_stack(
            [(sites % self.nx + 0.5) * self.dx, (sites // self.nx + 0.5) * self.dx]
        )

    def agent_at_row(self, row: int) -> BioCell:
        """The agent that owns ``row``."""
        return self._agent_by_row[row]

    def add_cell(
        self, site: int, state: ArrayLike | None = None, kind: str = "cell", **attrs: float
    ) -> BioCell:
        """Create a cell agent at ``site`` with its own state-table row.

        Args:
            site: Flat site index; the site must be empty.
            state: Initial state, shape ``(k,)``; default ``system.initial_state()``.
            kind: Phenotype label.
            **attrs: Initial per-row attributes.

        Returns:
            The new agent.
        """
        cell = self._cells_by_site[site]
        if not cell.is_empty:
            raise ValueError(f"site {site} is occupied")
        state = self.system.initial_state() if state is None else state
        row = self.table.add(state, site=site, **attrs)
        agent = BioCell(self, cell, row, kind)
        self._agent_by_row[row] = agent
        return agent

    def remove_cell(self, agent: BioCell) -> None:
        """Kill ``agent``: free its row and remove it from the grid and the model."""
        self.table.free(agent.row)
        del self._agent_by_row[agent.row]
        agent.remove()
        self.counters["deaths"] += 1

    def divide_cell(self, agent: BioCell) -> BioCell | None:
        """Divide ``agent`` into an empty neighbouring site, if there is one.

        The daughter gets a copy of the parent's row (then :meth:`on_division`).

        Returns:
            The daughter, or ``None`` when every neighbouring site is occupied (contact
            inhibition).
        """
        empty = [c for c in agent.cell.connections.values() if c.is_empty]
        if not empty:
            return None
        target = empty[self.random.randrange(len(empty))]
        row = self.table.copy_row(agent.row)
        site = self._site_of_cell[id(target)]
        self.table.attrs["site"][row] = site
        daughter = BioCell(self, target, row, agent.kind)
        self._agent_by_row[row] = daughter
        self.on_division(agent.row, row)
        self.counters["divisions"] += 1
        return daughter

    def adjacency(self) -> sp.csr_matrix:
        """The site adjacency of the grid's neighbourhood, shape ``(n_sites, n_sites)``.

        Built once from the Mesa grid's cell connections, for vectorised graph operators
        (e.g. gap-junction coupling as a graph Laplacian).
        """
        if not hasattr(self, "_adjacency"):
            src, dst = [], []
            for s, cell in enumerate(self._cells_by_site):
                for other in cell.connections.values():
                    src.append(s)
                    dst.append(self._site_of_cell[id(other)])
            n = self.nx * self.ny
            data = np.ones(len(src))
            self._adjacency = sp.csr_matrix((data, (src, dst)), shape=(n, n))
        return self._adjacency

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """Advance one tick of the multirate schedule (see :mod:`biohybrid.schedule`)."""
        sched = self.schedule
        if self.tick >= sched.n_ticks:
            self.running = False
            return
        due = sched.due(self.tick)
        t0 = sched.time(self.tick)
        if due["ode"]:
            self._ode_step(t0, sched.time(self.tick + sched.n_ode))
        if due["field"] and self.tissue is not None:
            self._field_step(sched.n_field * sched.base)
        self.tick += 1
        self.t = sched.time(self.tick)
        self.counters["ticks"] += 1
        if due["behaviour"]:
            self._behaviour_step(sched.n_behaviour * sched.base)
        if due["output"]:
            self._record()
        if self.tick >= sched.n_ticks:
            self.running = False

    def _ode_step(self, t0: float, t1: float) -> None:
        rows = self.table.live_rows()
        if rows.size:
            # The stepper raises SimulationError (naming rows and time) on NaN/Inf.
            self.stepper.advance(
                self.table, t0, t1, self.cell_params(rows), self.cell_inputs(rows), rows
            )
        self.counters["ode_macro_steps"] += 1

    def _field_step(self, dt: float) -> None:
        assert self.tissue is not None
        rows = self.table.live_rows()
        sites = self.table.attrs["site"][rows]
        outputs = self.cell_outputs(rows, self.table.get(rows))
        for name in self.tissue.names:
            secretion, uptake = outputs.get(name, (None, None))
            self.tissue.set_coupling(name, sites, secretion=secretion, uptake=uptake)
        self.tissue.step(dt)  # raises SimulationError if a field becomes NaN/Inf
        self.counters["field_steps"] += 1

    def _behaviour_step(self, dt: float) -> None:
        rows = self.table.live_rows()
        if rows.size:
            divide, die = self.behaviour(rows, self.table.get(rows), dt)
            for row in rows[np.asarray(die, dtype=bool)]:
                self.remove_cell(self._agent_by_row[int(row)])
            dividing = rows[np.asarray(divide, dtype=bool) & ~np.asarray(die, dtype=bool)]
            for row in dividing[self.rng.permutation(dividing.size)]:
                self.divide_cell(self._agent_by_row[int(row)])
        self.counters["behaviour_steps"] += 1

    def _record(self) -> None:
        self.recorder.record(self.t, self.measure())

    def all_counters(self) -> dict[str, int]:
        """Engine counters merged with the intracellular stepper's work counters."""
        out = dict(self.counters)
        out.update({f"ode_{k}": int(v) for k, v in self.stepper.counters.items()})
        out["cells_alive"] = self.table.n_alive
        return out
