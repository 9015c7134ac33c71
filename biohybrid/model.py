"""The hybrid model base: populations of Mesa agents, state tables, fields, couplings, stages.

:class:`HybridModel` wires the scales of a biohybrid model and steps them through a declared
sequence of operator-split stages (:mod:`biohybrid.stages`), each on its own clock
(:mod:`biohybrid.schedule`). One step moves data in one direction::

    fields ──sample at cell sites──▶ inputs u (N, m)          per population
    state table y (N, k) ──batched stiff integrate with u──▶ y'   per population
    cell-to-cell coupling of a species (implicit, conservative)   per declared coupling
    phenotype map (y') ──▶ secretion / uptake ──▶ implicit field step ──▶ fields'
    behaviour (y') ──▶ divide / die / move ──▶ Mesa agents act (rows added / freed / moved)
    aggregator (y', agents, fields') ──▶ one row of biomarkers per dt_output

Scales talk through arrays, never through calls from an agent into a solver.

**Contract for subclasses.** Class attributes:

1. ``name``, ``description`` and ``time_units`` (e.g. ``"s"``, ``"min"``, ``"yr"``).
2. ``parameters``: a :class:`~biohybrid.params.ParameterSet` of the model's parameters.
3. ``populations``: the cell types, a tuple of :class:`~biohybrid.populations.Population`
   (default: one population ``"cell"``), each with its own parameters.
4. ``run_defaults``: default run settings (``t_end``, clocks, ``shape``/``spacing`` or
   ``nx``/``ny``/``dx``, ``method``, ``rtol``, ``atol``, ``splitting``), see
   :data:`biohybrid.schedule.RUN_PARAMETERS`.
5. ``biomarkers``: a tuple of :class:`~biohybrid.organ.Biomarker`; aggregates of a
   population's species are computed by the engine, the rest by :meth:`measure`.

Required hooks: :meth:`build_system` (the ODE system of a population), :meth:`setup` (place
the initial cells with :meth:`add_cell`) and, if any biomarker is not an aggregate,
:meth:`measure`.

Optional hooks: :meth:`prepare` (validate parameters and precompute, before anything is
built), :meth:`build_fields`, :meth:`build_couplings`, :meth:`build_stages`,
:meth:`build_driver`, :meth:`stepper_method`, and per population (each receives the
:class:`~biohybrid.populations.Cells` it is called for, its live ``rows`` of shape ``(N,)``
and their states ``y`` as a named view, ``y["ca"]``): :meth:`cell_params`,
:meth:`cell_inputs`, :meth:`cell_outputs`, :meth:`coupling_conductance`, :meth:`behaviour`,
:meth:`motility`, :meth:`on_division`; plus :meth:`summary` and :meth:`write_outputs`.

**Two-phase construction.** ``Model(params, run, seed)`` resolves the settings, calls
:meth:`prepare`, builds the lattice, populations, fields, couplings, stages and driver, then
places the cells (:meth:`setup`) and records the first biomarker row. With
``populate=False`` it stops after building; call :meth:`populate` later. A subclass never
overrides ``__init__`` or :meth:`step`: if it needs to, a seam is missing here.

**Time.** ``model.t`` is the biological time in :attr:`time_units`; ``model.tick`` counts
base ticks. Mesa's own ``model.time`` and ``model.steps`` count calls of :meth:`step`
(one per tick, or one per output interval under a projective driver), not biological time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import mesa
import numpy as np
import scipy.sparse as sp
from mesa.discrete_space import OrthogonalMooreGrid, OrthogonalVonNeumannGrid
from numpy.typing import ArrayLike, NDArray

from biohybrid.cells.agent import BioCell
from biohybrid.errors import UserError, did_you_mean
from biohybrid.geometry import Lattice
from biohybrid.intracellular import OdeSystem, StateTable
from biohybrid.intracellular.species import Named
from biohybrid.memory import check_fits
from biohybrid.organ import Biomarker, BiomarkerRecorder
from biohybrid.organ.aggregator import reduce_values
from biohybrid.params import ParameterSet
from biohybrid.populations import Cells, Population
from biohybrid.schedule import Schedule
from biohybrid.settings import resolve_model_settings
from biohybrid.stages import Stage, check_stages
from biohybrid.tissue import FieldSpec, TissueLayer

#: Clocks every model has (a model may add its own through ``run_defaults``).
ENGINE_CLOCKS: tuple[str, ...] = ("dt_ode", "dt_field", "dt_coupling", "dt_behaviour", "dt_output")


@dataclass(frozen=True)
class Coupling:
    """A species of one population coupled between neighbouring cells through the tissue.

    ``du_i/dt = Σ_j g_ij (u_j − u_i)`` over the neighbours ``j`` of cell ``i`` that belong to
    the same population: gap-junction exchange, or the monodomain voltage. Stepped
    implicitly on its own clock (:class:`biohybrid.coupling.CellCoupling`), conservative.

    Attributes:
        name: Stage name suffix; default the species.
        population: The population whose cells are coupled.
        species: The coupled species.
        conductance: Junction conductance, 1/time: one value, or one per axis (fibres).
            Per-cell values come from :meth:`HybridModel.coupling_conductance`.
        neighbourhood: ``"von_neumann"`` (faces) or ``"moore"``.
        scheme: ``"backward-euler"``, ``"crank-nicolson"`` or ``"tr-bdf2"``.
        clock: The run setting giving its step.
    """

    population: str
    species: str
    conductance: float | tuple[float, ...]
    neighbourhood: str = "von_neumann"
    scheme: str = "backward-euler"
    clock: str = "dt_coupling"
    name: str = ""

    @property
    def key(self) -> str:
        """The coupling's name (its species unless named)."""
        return self.name or self.species


class Driver(Protocol):
    """Advances a model by one call of :meth:`HybridModel.step` in its own way.

    A driver (e.g. :class:`biohybrid.projective.ProjectiveDriver`) composes the engine's
    public operations: :meth:`HybridModel.tick_once` (one base tick of every stage),
    :meth:`HybridModel.jump` (advance time by whole ticks without stepping) and
    :meth:`HybridModel.record`.
    """

    def advance(self, model: HybridModel) -> None:
        """Advance ``model`` by at least one tick."""


class HybridModel(mesa.Model):
    """Base class of every biohybrid model (see the module docstring for the contract).

    Args:
        params: Model and population parameter values (population ones qualified,
            ``"neuron.g_na"``); validated, defaults filled in.
        run: Run settings; validated against :func:`biohybrid.schedule.run_parameter_set`.
        seed: Seed of the model's random generators (``self.rng``, ``self.random``).
        populate: Place the initial cells (phase two); ``False`` stops after building.

    Attributes:
        params: Resolved model parameters (population ones are in ``cells[name].params``).
        run: Resolved run settings.
        lattice: The tissue geometry.
        schedule: The multirate schedule.
        cells: ``{population name: Cells}`` in declaration order.
        grid: The Mesa discrete-space grid (one agent per site at most).
        tissue: The tissue layer, or ``None`` for a model without fields.
        couplings: The declared cell-to-cell couplings by name.
        stages: The stage sequence.
        recorder: The biomarker recorder.
        tick: Ticks completed.
        t: Model time (``tick * schedule.base``), in :attr:`time_units`.
        counters: Work and event counters of the run.
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    time_units: ClassVar[str] = "s"
    parameters: ClassVar[ParameterSet] = ParameterSet({})
    populations: ClassVar[tuple[Population, ...]] = (Population("cell"),)
    run_defaults: ClassVar[dict[str, Any]] = {}
    biomarkers: ClassVar[tuple[Biomarker, ...]] = ()
    neighbourhood: ClassVar[str] = "moore"

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        run: Mapping[str, Any] | None = None,
        seed: int = 0,
        *,
        populate: bool = True,
    ) -> None:
        model_params, pop_params, run_resolved = resolve_model_settings(type(self), params, run)
        shape = run_resolved["shape"]
        check_fits(math.prod(shape), shape, self.name)  # refuse before allocating anything
        super().__init__(rng=int(seed))
        self.seed = int(seed)
        self.params: dict[str, Any] = model_params
        self.run: dict[str, Any] = run_resolved
        self.tick = 0
        self.t = 0.0
        self.counters: dict[str, int] = {
            "ticks": 0,
            "ode_macro_steps": 0,
            "field_steps": 0,
            "coupling_steps": 0,
            "behaviour_steps": 0,
            "divisions": 0,
            "deaths": 0,
            "moves": 0,
        }
        self.prepare()
        self._build_geometry()
        self._build_populations(pop_params)
        self._build_tissue()
        self._build_couplings()
        self._build_schedule()
        self.recorder = BiomarkerRecorder(self.biomarkers)
        self._check_biomarkers()
        self.driver: Driver | None = self.build_driver()
        self._populated = False
        if populate:
            self.populate()

    # ------------------------------------------------------------------ building
    def _build_geometry(self) -> None:
        self.lattice = Lattice(self.run["shape"], self.run["spacing"])
        shape = self.lattice.shape
        self.nx = shape[0]
        self.ny = shape[1] if len(shape) > 1 else 1
        self.dx = self.lattice.spacing[0]
        grid_cls = (
            OrthogonalMooreGrid if self.neighbourhood == "moore" else OrthogonalVonNeumannGrid
        )
        self.grid = grid_cls(shape, torus=False, capacity=1, random=self.random)
        coords = self.lattice.coordinates(np.arange(self.lattice.n_sites))
        self._cells_by_site = [self.grid[tuple(int(c) for c in xyz)] for xyz in coords]
        self._site_of_cell = {id(c): s for s, c in enumerate(self._cells_by_site)}

    def _build_populations(self, pop_params: Mapping[str, dict[str, Any]]) -> None:
        from biohybrid.intracellular.steppers import make_stepper

        self.cells: dict[str, Cells] = {}
        self._agents: list[dict[int, BioCell]] = []
        capacity = self.lattice.n_sites
        for i, spec in enumerate(self.populations):
            system = self.build_system(spec.name)
            if not isinstance(system, OdeSystem):
                raise UserError(
                    f"model '{self.name}': build_system({spec.name!r}) must return an OdeSystem,"
                    f" got {type(system).__name__}"
                )
            settings = self.run.get("populations", {}).get(spec.name, {})
            rtol = settings.get("rtol", self.run["rtol"])
            atol = settings.get("atol", self.run["atol"])
            params = {**self.params, **pop_params.get(spec.name, {})}
            cells = Cells(
                spec=spec,
                index=i,
                system=system,
                table=StateTable(system.species, capacity=capacity),
                stepper=None,  # type: ignore[arg-type]
                params=params,
                method="",
            )
            method = self.stepper_method(cells) or settings.get("method", self.run["method"])
            cells.method = method
            cells.stepper = make_stepper(method, system, rtol=rtol, atol=atol)
            self.cells[spec.name] = cells
            self._agents.append({})

    def _build_tissue(self) -> None:
        try:
            fields = list(self.build_fields())
        except ValueError as exc:  # invalid field declaration from user parameters
            raise UserError(f"Invalid field settings for model '{self.name}': {exc}.") from None
        self.tissue: TissueLayer | None = TissueLayer(self.lattice, fields) if fields else None

    def _build_couplings(self) -> None:
        self.couplings: dict[str, Coupling] = {}
        self._coupling_ops: dict[str, Any] = {}
        for c in self.build_couplings():
            from biohybrid.coupling import CellCoupling

            cells = self.population(c.population)
            cells.system.index.col(c.species)  # a clear error for an unknown species
            if c.key in self.couplings:
                raise UserError(f"coupling {c.key!r} is declared twice")
            self.couplings[c.key] = c
            self._coupling_ops[c.key] = CellCoupling(
                self.lattice,
                conductance=c.conductance,
                neighbourhood=c.neighbourhood,
                scheme=c.scheme,
            )

    def _build_schedule(self) -> None:
        self.stages: list[Stage] = list(self.build_stages())
        run = self.run
        clocks = {
            name: (run["dt_ode"] if name == "dt_coupling" and run[name] is None else run[name])
            for name in self.clock_names()
        }
        check_stages(self.stages, list(clocks), run["splitting"])
        used = {s.clock for s in self.stages}
        self.schedule = Schedule.from_clocks(
            t_end=run["t_end"], clocks={k: v for k, v in clocks.items() if k in used}
        )
        check_stages(self.stages, list(self.schedule.clocks), run["splitting"])
        split = [s for s in self.stages if s.role == "split"]
        if run["splitting"] == "strang" and len({self.schedule.ticks(s.clock) for s in split}) > 1:
            desc = ", ".join(f"{s.name} every {self.schedule.dt(s.clock):g}" for s in split)
            raise UserError(
                "Strang splitting composes the split stages over one common step, but their"
                f" clocks differ ({desc} {self.time_units}). Make those clocks equal or use"
                " splitting = 'lie'."
            )

    def clock_names(self) -> list[str]:
        """The clocks of this model: the engine's plus any ``dt_*`` in ``run_defaults``."""
        extra = [k for k in self.run_defaults if k.startswith("dt_") and k not in ENGINE_CLOCKS]
        return [*ENGINE_CLOCKS, *extra]

    def _check_biomarkers(self) -> None:
        for b in self.biomarkers:
            if b.is_aggregate:
                cells = self.population(b.population)  # type: ignore[arg-type]
                if b.species is not None:
                    cells.system.index.col(b.species)

    def populate(self) -> None:
        """Phase two: place the initial cells (:meth:`setup`) and record the first row.

        Raises:
            UserError: If the model was already populated.
        """
        if self._populated:
            raise UserError(f"model '{self.name}' is already populated")
        self._populated = True
        self.setup()
        self.record()

    # ------------------------------------------------------------------ contract
    def prepare(self) -> None:
        """Validate parameters and precompute model-level values (before building)."""

    def build_system(self, population: str) -> OdeSystem:
        """The ODE system of ``population``: its ``model_file`` imported, or the model's own."""
        spec = next(p for p in self.populations if p.name == population)
        if spec.model_file is not None:
            from biohybrid.importers import import_model

            return import_model(spec.model_file)
        raise NotImplementedError(f"model '{self.name}' must implement build_system()")

    def build_fields(self) -> Sequence[FieldSpec]:
        """Return the tissue fields; the default is none."""
        return []

    def build_couplings(self) -> Sequence[Coupling]:
        """Return the cell-to-cell couplings; the default is none."""
        return []

    def build_stages(self) -> Sequence[Stage]:
        """The stage sequence: couplings, ODEs, fields (split); behaviour, output (end)."""
        stages = [Stage.coupling(c.key, c.clock) for c in self.couplings.values()]
        stages.append(Stage.ode())
        if self.tissue is not None:
            stages.append(Stage.fields())
        stages += [Stage.behaviour(), Stage.output()]
        return stages

    def build_driver(self) -> Driver | None:
        """A driver that replaces plain ticking (e.g. projective integration); default none."""
        return None

    def stepper_method(self, cells: Cells) -> str | None:
        """The intracellular method of a population, or ``None`` for the run setting."""
        return None

    def setup(self) -> None:
        """Place the initial cells with :meth:`add_cell` (required)."""
        raise NotImplementedError(f"model '{self.name}' must implement setup()")

    def measure(self) -> dict[str, float]:
        """Values of the biomarkers that are not aggregates, at the current time."""
        if any(not b.is_aggregate for b in self.biomarkers):
            raise NotImplementedError(f"model '{self.name}' must implement measure()")
        return {}

    def cell_params(self, cells: Cells, rows: NDArray[np.int64]) -> Mapping[str, Any]:
        """ODE parameters over ``rows``: floats or arrays of shape ``(N,)``."""
        return cells.params

    def cell_inputs(self, cells: Cells, rows: NDArray[np.int64]) -> NDArray[np.float64] | None:
        """External ODE inputs over ``rows``, shape ``(N, m)``.

        The default samples, at each cell's site, the field named by each of the system's
        inputs.
        """
        system = cells.system
        if not system.inputs:
            return None
        if self.tissue is None:
            raise NotImplementedError(f"model '{self.name}' must provide cell_inputs()")
        missing = [n for n in system.inputs if n not in self.tissue.names]
        if missing:
            raise UserError(
                f"inputs {missing} of population {cells.name!r} are not fields; fields are"
                f" {list(self.tissue.names)} (or provide cell_inputs())"
            )
        sites = cells.sites(rows)
        return np.column_stack([self.tissue.sample(name, sites) for name in system.inputs])

    def cell_outputs(
        self, cells: Cells, rows: NDArray[np.int64], y: Named
    ) -> Mapping[str, tuple[ArrayLike | None, ArrayLike | None]]:
        """The phenotype map to the tissue: ``{field: (secretion, uptake)}`` per cell.

        Returns:
            For each field, secretion (amount per cell per time, concentration × µm^d /
            time) and uptake (1/time) arrays of shape ``(N,)``, or ``None``.
        """
        return {}

    def coupling_conductance(
        self, coupling: Coupling, cells: Cells, rows: NDArray[np.int64]
    ) -> NDArray[np.float64] | None:
        """Per-cell conductances ``(N,)`` or ``(N, ndim)``; ``None`` for the declared value."""
        return None

    def behaviour(
        self, cells: Cells, rows: NDArray[np.int64], y: Named, dt: float
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Decide, vectorised, which cells divide and which die over ``dt``.

        Returns:
            ``(divide, die)``: boolean masks of shape ``(N,)``.
        """
        none = np.zeros(rows.size, dtype=bool)
        return none, none

    def motility(self, cells: Cells, rows: NDArray[np.int64], y: Named) -> Any | None:
        """The population's motility (:class:`biohybrid.cells.motility.Motility`) or ``None``.

        Its ``rate`` may be a float or per-cell ``(N,)``; a ``field`` biases the walk up
        (``chemotaxis > 0``) or down its gradient.
        """
        return None

    def on_division(self, cells: Cells, parent_row: int, daughter_row: int) -> None:
        """Split state between parent and daughter (default: the daughter is a copy)."""

    def summary(self) -> dict[str, Any]:
        """Model-specific summary values written to ``summary.json`` (default: none)."""
        return {}

    def write_outputs(self, run_dir: Path) -> None:
        """Write model-specific files (e.g. extra figures) into ``run_dir``."""

    # ------------------------------------------------------------------ populations
    def population(self, name: str | None = None) -> Cells:
        """The population ``name`` (default: the only one).

        Raises:
            UserError: An unknown name, or no name in a model with several populations.
        """
        if name is None:
            if len(self.cells) != 1:
                raise UserError(f"model '{self.name}' has populations {list(self.cells)}: name one")
            return next(iter(self.cells.values()))
        try:
            return self.cells[name]
        except KeyError:
            raise UserError(
                f"unknown population {name!r};{did_you_mean(name, self.cells)} populations of"
                f" model '{self.name}': {', '.join(self.cells)}"
            ) from None

    @property
    def table(self) -> StateTable:
        """The state table of a single-population model."""
        return self.population().table

    @property
    def system(self) -> OdeSystem:
        """The ODE system of a single-population model."""
        return self.population().system

    @property
    def stepper(self) -> Any:
        """The stepper of a single-population model."""
        return self.population().stepper

    # ------------------------------------------------------------------ sites and cells
    def site_of(self, coordinate: Sequence[int]) -> int:
        """Flat site index of an integer coordinate (first axis fastest)."""
        return self.lattice.site_of(coordinate)

    def coordinate_of(self, site: int) -> tuple[int, ...]:
        """Integer coordinate of a flat site index."""
        return tuple(int(c) for c in self.lattice.coordinates([site])[0])

    def site_positions(self, sites: ArrayLike) -> NDArray[np.float64]:
        """Centre positions in µm of flat ``sites``, shape ``(N, ndim)``."""
        return self.lattice.positions(sites)

    def agent_at_row(self, row: int, population: str | None = None) -> BioCell:
        """The agent that owns ``row`` of a population's table."""
        return self._agents[self.population(population).index][row]

    def add_cell(
        self,
        site: int,
        state: ArrayLike | Mapping[str, float] | None = None,
        kind: str | None = None,
        population: str | None = None,
        **attrs: float,
    ) -> BioCell:
        """Create a cell agent at ``site`` with its own state-table row.

        Args:
            site: Flat site index; the site must be empty.
            state: Initial state: shape ``(k,)``, or ``{species: value}`` (missing species
                take the system's initial values); default ``system.initial_state()``.
            kind: Phenotype label (default: the population's ``kind`` or its name).
            population: The population (default: the only one).
            **attrs: Initial per-row attributes.

        Returns:
            The new agent.
        """
        cells = self.population(population)
        cell = self._cells_by_site[site]
        if not cell.is_empty:
            raise ValueError(f"site {site} is occupied")
        system = cells.system
        if state is None:
            state = system.initial_state()
        elif isinstance(state, Mapping):
            state = system.index.vector({**system.initial, **state})
        row = cells.table.add(state, site=site, **attrs)
        agent = BioCell(self, cell, row, kind or cells.spec.kind or cells.name)
        agent.population = cells.name
        self._agents[cells.index][row] = agent
        return agent

    def _cells_of(self, agent: BioCell) -> Cells:
        return self.cells[getattr(agent, "population", None) or next(iter(self.cells))]

    def remove_cell(self, agent: BioCell) -> None:
        """Kill ``agent``: free its row and remove it from the grid and the model."""
        cells = self._cells_of(agent)
        cells.table.free(agent.row)
        del self._agents[cells.index][agent.row]
        agent.remove()
        self.counters["deaths"] += 1

    def divide_cell(self, agent: BioCell) -> BioCell | None:
        """Divide ``agent`` into an empty neighbouring site, if there is one.

        The daughter gets a copy of the parent's row (then :meth:`on_division`) and records
        its parent's ``unique_id`` as ``parent_id`` (lineage; initial cells have none).

        Returns:
            The daughter, or ``None`` when every neighbouring site is occupied (contact
            inhibition).
        """
        empty = [c for c in agent.cell.connections.values() if c.is_empty]
        if not empty:
            return None
        cells = self._cells_of(agent)
        target = empty[self.random.randrange(len(empty))]
        row = cells.table.copy_row(agent.row)
        site = self._site_of_cell[id(target)]
        cells.table.attrs["site"][row] = site
        daughter = BioCell(self, target, row, agent.kind)
        daughter.population = cells.name
        daughter.parent_id = agent.unique_id  # lineage, for the per-cell output
        self._agents[cells.index][row] = daughter
        self.on_division(cells, agent.row, row)
        self.counters["divisions"] += 1
        return daughter

    def move_cell(self, agent: BioCell, site: int) -> None:
        """Move ``agent`` to the empty ``site``; its row and attributes follow it.

        Raises:
            ValueError: If ``site`` is occupied.
        """
        target = self._cells_by_site[site]
        if not target.is_empty:
            raise ValueError(f"site {site} is occupied")
        cells = self._cells_of(agent)
        agent.cell = target
        cells.table.attrs["site"][agent.row] = site
        self.counters["moves"] += 1

    def occupied(self) -> NDArray[np.bool_]:
        """Whether each site holds a cell (of any population), shape ``(n_sites,)``."""
        occ = np.zeros(self.lattice.n_sites, dtype=bool)
        for cells in self.cells.values():
            occ[cells.sites()] = True
        return occ

    def adjacency(self) -> sp.csr_matrix:
        """The site adjacency of the model's neighbourhood, shape ``(n_sites, n_sites)``."""
        if not hasattr(self, "_adjacency"):
            kind = "moore" if self.neighbourhood == "moore" else "von_neumann"
            self._adjacency = self.lattice.adjacency(kind)
        return self._adjacency

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """Advance one tick of the schedule (or one call of the model's driver)."""
        if self.tick >= self.schedule.n_ticks:
            self.running = False
            return
        if self.driver is not None:
            self.driver.advance(self)
        else:
            self.tick_once()
        if self.tick >= self.schedule.n_ticks:
            self.running = False

    def tick_once(self) -> None:
        """Run every stage due in the current tick and advance time by one tick."""
        sched = self.schedule
        k = self.tick
        t0 = sched.time(k)
        for st in self.stages:
            if st.role == "start" and sched.starts(st.clock, k):
                st.run(self, t0, sched.dt(st.clock))
        split = [st for st in self.stages if st.role == "split" and sched.starts(st.clock, k)]
        if self.run["splitting"] == "strang" and split:
            h = sched.dt(split[0].clock)
            for st in split[:-1]:
                st.run(self, t0, 0.5 * h)
            split[-1].run(self, t0, h)
            for st in reversed(split[:-1]):
                st.run(self, t0 + 0.5 * h, 0.5 * h)
        else:
            for st in split:
                st.run(self, t0, sched.dt(st.clock))
        self.tick += 1
        self.t = sched.time(self.tick)
        self.counters["ticks"] += 1
        for st in self.stages:
            if st.role == "end" and sched.ends(st.clock, k):
                dt = sched.dt(st.clock)
                st.run(self, self.t - dt, dt)

    def jump(self, n_ticks: int) -> None:
        """Advance time by ``n_ticks`` without running stages (for a projective driver)."""
        self.tick += int(n_ticks)
        self.t = self.schedule.time(self.tick)
        self.counters["ticks"] += int(n_ticks)

    def step_odes(self, t0: float, dt: float) -> None:
        """Integrate every population's live cells over ``[t0, t0 + dt]``."""
        for cells in self.cells.values():
            rows = cells.rows()
            if rows.size:
                # The stepper raises SimulationError (naming rows and time) on NaN/Inf.
                cells.stepper.advance(
                    cells.table,
                    t0,
                    self.schedule.snap(t0 + dt),
                    self.cell_params(cells, rows),
                    self.cell_inputs(cells, rows),
                    rows,
                )
        self.counters["ode_macro_steps"] += 1

    def step_fields(self, t0: float, dt: float) -> None:
        """Cells' secretion and uptake from their current state, then one field step."""
        if self.tissue is None:
            return
        per_field: dict[str, list[tuple[NDArray, Any, Any]]] = {n: [] for n in self.tissue.names}
        for cells in self.cells.values():
            rows = cells.rows()
            outputs = self.cell_outputs(cells, rows, cells.system.index(cells.table.get(rows)))
            unknown = [n for n in outputs if n not in per_field]
            if unknown:
                raise UserError(
                    f"cell_outputs of population {cells.name!r} names unknown fields"
                    f" {unknown}; fields are {list(self.tissue.names)}"
                )
            sites = cells.sites(rows)
            for name, (sec, upt) in outputs.items():
                per_field[name].append((sites, sec, upt))
        for name, parts in per_field.items():
            if len(parts) == 1:
                sites, sec, upt = parts[0]
            elif not parts:
                sites, sec, upt = np.zeros(0, dtype=np.int64), None, None
            else:
                sites = np.concatenate([p[0] for p in parts])
                sec = _concat([(p[0], p[1]) for p in parts])
                upt = _concat([(p[0], p[2]) for p in parts])
            self.tissue.set_coupling(name, sites, secretion=sec, uptake=upt)
        self.tissue.step(dt)  # raises SimulationError if a field becomes NaN/Inf
        self.counters["field_steps"] += 1

    def step_coupling(self, name: str, t0: float, dt: float) -> None:
        """Step one declared cell-to-cell coupling over ``dt``."""
        c = self.couplings[name]
        op = self._coupling_ops[name]
        cells = self.cells[c.population]
        rows = cells.rows()
        if rows.size == 0:
            return
        g = self.coupling_conductance(c, cells, rows)
        if g is None and np.all(np.asarray(c.conductance, dtype=float) == 0):
            return  # uncoupled: nothing to do (and nothing to factorise)
        if g is None:
            op.set_cells(cells.sites(rows))
        else:
            op.set_cells(cells.sites(rows), conductance=np.asarray(g, dtype=float))
        col = cells.system.index.col(c.species)
        y = cells.table.get(rows)
        y[:, col] = op.step(y[:, col], dt)
        cells.table.set_rows(rows, y)
        self.counters["coupling_steps"] += 1

    def step_behaviour(self, t0: float, dt: float) -> None:
        """Death, division and motility of every population over ``dt``."""
        for cells in self.cells.values():
            rows = cells.rows()
            if not rows.size:
                continue
            agents = self._agents[cells.index]
            divide, die = self.behaviour(cells, rows, cells.state(rows), dt)
            die = np.asarray(die, dtype=bool)
            for row in rows[die]:
                self.remove_cell(agents[int(row)])
            dividing = rows[np.asarray(divide, dtype=bool) & ~die]
            for row in dividing[self.rng.permutation(dividing.size)]:
                self.divide_cell(agents[int(row)])
            self._move(cells, dt)
        self.counters["behaviour_steps"] += 1

    def _move(self, cells: Cells, dt: float) -> None:
        rows = cells.rows()
        if not rows.size:
            return
        mot = self.motility(cells, rows, cells.state(rows))
        if mot is None:
            return
        from biohybrid.cells.motility import propose_moves

        sites = cells.sites(rows)
        gradient = None
        if mot.field is not None:
            if self.tissue is None:
                raise UserError(f"motility of {cells.name!r} follows a field, but there is none")
            gradient = self.tissue.gradient(mot.field, sites)
        new = propose_moves(
            self.lattice,
            sites,
            self.occupied(),
            mot.rate,
            dt,
            self.rng,
            gradient=gradient,
            chemotaxis=mot.chemotaxis,
            neighbourhood=mot.neighbourhood,
        )
        agents = self._agents[cells.index]
        for row, old, site in zip(rows, sites, new, strict=True):
            if site != old:
                self.move_cell(agents[int(row)], int(site))

    # ------------------------------------------------------------------ outputs
    def record(self) -> None:
        """Record one row of biomarkers at the current time."""
        values = dict(self.measure())
        for b in self.biomarkers:
            if b.is_aggregate:
                cells = self.cells[b.population]  # type: ignore[index]
                v = np.zeros(cells.n) if b.species is None else cells.species(b.species)
                values[b.name] = reduce_values(v, b.reduce)  # type: ignore[arg-type]
        self.recorder.record(self.t, values)

    def all_counters(self) -> dict[str, int]:
        """Engine counters merged with each population's stepper work counters."""
        out = dict(self.counters)
        single = len(self.cells) == 1
        for cells in self.cells.values():
            prefix = "ode_" if single else f"{cells.name}.ode_"
            out.update({f"{prefix}{k}": int(v) for k, v in cells.stepper.counters.items()})
        out.update(getattr(self.driver, "counters", {}))
        out["cells_alive"] = sum(c.n for c in self.cells.values())
        return out


def _concat(parts: list[tuple[NDArray, Any]]) -> NDArray[np.float64] | None:
    """Concatenate per-population coupling arrays (``None`` parts are zeros)."""
    if all(a is None for _, a in parts):
        return None
    out = []
    for sites, a in parts:
        out.append(np.zeros(sites.size) if a is None else np.broadcast_to(a, sites.shape))
    return np.concatenate(out)
