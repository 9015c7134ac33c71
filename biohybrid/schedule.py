"""Run settings and the multirate schedule: each stage on its own clock, one integer tick grid.

**Run settings** (:data:`RUN_PARAMETERS`) are what every scenario's ``[run]`` table may set:
the horizon ``t_end``, the clocks ``dt_*``, the geometry (``shape`` and ``spacing``, or the
2-D shorthand ``nx``/``ny``/``dx``), the intracellular method and tolerances, and the
splitting scheme. :func:`run_parameter_set` gives them with a model's own defaults and time
units.

**Clocks.** A model's stages (:mod:`biohybrid.stages`) each name a clock (``dt_ode``,
``dt_field``, ``dt_coupling``, ``dt_behaviour``, ``dt_output``, or one the model declares).
Every clock must be positive, no longer than ``t_end``, a whole multiple of the smallest
clock (the base tick) and a whole divisor of ``t_end``, so every stage ends exactly at
``t_end`` and no process runs past the horizon under an earlier time label. Times are
computed as ``tick * base``, never accumulated, so clocks line up exactly and never drift.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from biohybrid.errors import UserError
from biohybrid.params import Param, ParameterSet

if TYPE_CHECKING:
    from biohybrid.model import HybridModel

_REL_TOL = 1e-9

#: Intracellular methods a scenario may choose (``[run] method``).
METHODS: tuple[str, ...] = ("rodas4", "rodas3", "implicit-euler")

#: Operator-splitting schemes (``[run] splitting``).
SPLITTINGS: tuple[str, ...] = ("lie", "strang")

#: Run settings every model accepts; units of times are the model's ``time_units``.
RUN_PARAMETERS: dict[str, Param] = {
    "t_end": Param(100.0, "time", "Run horizon", gt=0),
    "dt_output": Param(1.0, "time", "Output (biomarker) interval", gt=0),
    "dt_ode": Param(1.0, "time", "Intracellular ODE macro step (coupling interval)", gt=0),
    "dt_field": Param(1.0, "time", "Tissue field step", gt=0),
    "dt_coupling": Param(
        None, "time", "Cell-to-cell coupling step (default: dt_ode)", gt=0, optional=True
    ),
    "dt_behaviour": Param(1.0, "time", "Cell behaviour (division, death, motility) step", gt=0),
    "shape": Param(
        None,
        "sites",
        "Sites per axis: [n], [nx, ny] or [nx, ny, nz] (default: [nx, ny])",
        kind=list,
        optional=True,
    ),
    "spacing": Param(
        None,
        "µm",
        "Site spacing, one value or one per axis (default: dx)",
        kind=list,
        optional=True,
    ),
    "nx": Param(20, "sites", "Grid width (2-D shorthand for shape)", ge=1, le=4096, kind=int),
    "ny": Param(20, "sites", "Grid height (2-D shorthand for shape)", ge=1, le=4096, kind=int),
    "dx": Param(10.0, "µm", "Grid spacing (one cell per site)", gt=0),
    "method": Param(
        "rodas4",
        "-",
        "Intracellular integrator of every population (per population: [run.<name>])",
        kind=str,
        choices=METHODS,
    ),
    "rtol": Param(1e-6, "1", "Relative tolerance of the intracellular integrator", gt=0, lt=1),
    "atol": Param(
        1e-9,
        "species units",
        "Absolute tolerance: a number, or a table {species = value} (per population)",
        gt=0,
        kind=dict,
    ),
    "splitting": Param(
        "lie",
        "-",
        "Operator splitting of the split stages: 'lie' (order 1) or 'strang' (order 2)",
        kind=str,
        choices=SPLITTINGS,
    ),
    "cells_every": Param(
        None,
        "time",
        "Per-cell table (cells/*.parquet) interval; 0 or unset: off",
        ge=0,
        optional=True,
    ),
    "fields_every": Param(
        None, "time", "Field output (fields.zarr) interval; 0 or unset: off", ge=0, optional=True
    ),
    "vtk_every": Param(
        None,
        "time",
        "ParaView files (vtk/*.vtu, *.pvd) interval; 0 or unset: off",
        ge=0,
        optional=True,
    ),
}

#: Run settings that switch on a run output at an interval (off when 0 or unset).
OUTPUT_INTERVALS: tuple[str, ...] = ("cells_every", "fields_every", "vtk_every")

#: Run settings that may also be given per population, as ``[run.<population>]``.
POPULATION_RUN_SETTINGS: tuple[str, ...] = ("method", "rtol", "atol")


def check_output_intervals(run: Mapping[str, Any], time_units: str = "") -> dict[str, float]:
    """The output intervals that are on, checked against ``t_end`` and ``dt_output``.

    An output is written at ``t = 0`` and then every interval, so an interval must be a
    whole multiple of ``dt_output`` (outputs fall on biomarker rows) and divide ``t_end``
    (the last output is at ``t_end``).

    Args:
        run: Resolved run settings.
        time_units: The model's time units, for messages.

    Returns:
        ``{setting: interval}`` for every output interval that is on.

    Raises:
        UserError: An interval that is not a multiple of ``dt_output`` or does not divide
            ``t_end``.
    """
    out: dict[str, float] = {}
    t_end, dt_out = float(run["t_end"]), float(run["dt_output"])
    unit = f" {time_units}" if time_units else ""
    for name in OUTPUT_INTERVALS:
        every = run.get(name)
        if every is None or every == 0:
            continue
        every = float(every)
        n = every / dt_out
        k = t_end / every
        if round(n) < 1 or abs(n - round(n)) > _REL_TOL * max(1.0, n):
            raise UserError(
                f"{name} = {every:g}{unit} is not a whole multiple of dt_output ="
                f" {dt_out:g}{unit}: outputs are written on biomarker rows. Choose {name} ="
                f" {dt_out:g}, {2 * dt_out:g}, ... (dividing t_end = {t_end:g}), or 0 for off."
            )
        if round(k) < 1 or abs(k - round(k)) > _REL_TOL * max(1.0, k):
            raise UserError(
                f"t_end = {t_end:g}{unit} is not a whole multiple of {name} = {every:g}{unit}:"
                f" the last output would not fall on t_end. Choose {name} dividing t_end"
                " (and a multiple of dt_output), or 0 for off."
            )
        out[name] = every
    return out


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


def geometry_from_run(run: Mapping[str, Any], given: set[str] | None = None) -> dict[str, Any]:
    """Resolve ``shape`` and ``spacing`` from run settings (``nx``/``ny``/``dx`` shorthand).

    Args:
        run: Resolved run settings.
        given: Names the user set explicitly (to refuse ``shape`` together with ``nx``/``ny``).

    Returns:
        ``{"shape": [...], "spacing": [...], "nx": ..., "ny": ..., "dx": ...}`` consistent
        with each other (``nx``/``ny`` are the first two extents, 1 where absent; ``dx`` the
        first spacing).

    Raises:
        UserError: ``shape`` and ``nx``/``ny`` both set, a malformed shape or spacing.
    """
    from biohybrid.geometry import Lattice

    given = given or set()
    shape = run.get("shape")
    if shape is None:
        shape = [run["nx"], run["ny"]]
    elif given & {"nx", "ny"} and "shape" in given:
        implied = [shape[0] if shape else None, shape[1] if len(shape) > 1 else 1]
        if [run["nx"], run["ny"]] != implied:
            raise UserError(
                f"shape = {list(shape)} contradicts nx = {run['nx']}, ny = {run['ny']}: set"
                " either shape (e.g. shape = [100, 100]) or the 2-D shorthand nx/ny."
            )
    spacing = run.get("spacing")
    if spacing is None:
        spacing = [run["dx"]]
    for value in list(shape) + list(spacing if isinstance(spacing, list) else [spacing]):
        if isinstance(value, bool):
            raise UserError(f"shape and spacing take numbers, got {value!r}.")
    if any(not isinstance(n, int) for n in shape):
        raise UserError(f"shape must be whole numbers of sites per axis, got {list(shape)}.")
    lattice = Lattice(shape, spacing if isinstance(spacing, list) else [spacing])
    s = lattice.shape
    return {
        "shape": list(s),
        "spacing": list(lattice.spacing),
        "nx": s[0],
        "ny": s[1] if len(s) > 1 else 1,
        "dx": lattice.spacing[0],
    }


def _multiple(value: float, base: float, what: str, of: str) -> int:
    n = value / base
    m = round(n)
    if m < 1 or abs(n - m) > _REL_TOL * max(1.0, n):
        raise UserError(
            f"{what} = {value:g} is not a whole multiple of {of} = {base:g}. Every clock"
            f" must be a whole multiple of the smallest one, and t_end a whole multiple of"
            f" every clock."
        )
    return int(m)


@dataclass(frozen=True)
class Schedule:
    """Integer tick counts for each clock.

    Attributes:
        base: Length of one tick, model time unit.
        n_ticks: Ticks in the whole run.
        clocks: ``{clock name: ticks per step}``.
    """

    base: float
    n_ticks: int
    clocks: Mapping[str, int]

    @classmethod
    def from_clocks(
        cls, *, t_end: float, clocks: Mapping[str, float] | None = None, **named: float
    ) -> Schedule:
        """Build a schedule from clock lengths, checking that they line up.

        Args:
            t_end: Run horizon, model time unit.
            clocks: ``{clock name: length}``, e.g. ``{"dt_ode": 0.25, "dt_output": 0.5}``.
            **named: More clocks by keyword (``dt_ode=0.25``).

        Returns:
            The schedule.

        Raises:
            UserError: A clock not positive and finite, longer than ``t_end``, not a whole
                multiple of the smallest clock, or not a whole divisor of ``t_end``.
        """
        all_clocks = {**dict(clocks or {}), **named}
        if not all_clocks:
            raise UserError("a schedule needs at least one clock (e.g. dt_output)")
        for name, value in {"t_end": t_end, **all_clocks}.items():
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and math.isfinite(value) and value > 0
            ):
                raise UserError(f"{name} must be a positive, finite time; got {value!r}.")
        for name, value in all_clocks.items():
            if value > t_end * (1 + _REL_TOL):
                raise UserError(
                    f"{name} = {value:g} is longer than t_end = {t_end:g}: the step would run"
                    f" past the end of the run. Choose {name} <= t_end (and dividing it)."
                )
        which = min(all_clocks, key=all_clocks.__getitem__)
        base = all_clocks[which]
        ticks = {name: _multiple(v, base, name, which) for name, v in all_clocks.items()}
        n_ticks = _multiple(t_end, base, "t_end", which)
        for name, n in ticks.items():
            if n_ticks % n:
                raise UserError(
                    f"t_end = {t_end:g} is not a whole multiple of {name} = {all_clocks[name]:g}:"
                    f" its last step would run past t_end. Choose clocks that divide t_end."
                )
        return cls(base=base, n_ticks=n_ticks, clocks=ticks)

    def time(self, tick: int) -> float:
        """Model time at the start of ``tick``."""
        return tick * self.base

    def snap(self, t: float) -> float:
        """``t`` moved onto the tick grid when it is a tick time up to round-off.

        ``t0 + dt`` may differ from ``time(k + n)`` in the last bit; stages that integrate to
        an end time use the grid's own value, so a run does not depend on how its times
        were summed. Off-grid times (Strang half steps) are returned unchanged.
        """
        k = round(t / self.base)
        return self.time(k) if abs(k * self.base - t) <= 1e-9 * self.base else t

    def ticks(self, clock: str) -> int:
        """Ticks per step of ``clock``.

        Raises:
            UserError: An unknown clock; the message lists the clocks.
        """
        try:
            return self.clocks[clock]
        except KeyError:
            raise UserError(
                f"unknown clock {clock!r}; clocks are: {', '.join(self.clocks)}"
            ) from None

    def dt(self, clock: str) -> float:
        """Length of one step of ``clock``, model time unit."""
        return self.ticks(clock) * self.base

    def starts(self, clock: str, tick: int) -> bool:
        """Whether a step of ``clock`` starts at ``tick``."""
        return tick % self.ticks(clock) == 0

    def ends(self, clock: str, tick: int) -> bool:
        """Whether a step of ``clock`` ends at the end of ``tick``."""
        return (tick + 1) % self.ticks(clock) == 0

    # Compatibility with the four fixed clocks of the first engine.
    @property
    def n_ode(self) -> int:
        """Ticks per ODE step."""
        return self.ticks("dt_ode")

    @property
    def n_field(self) -> int:
        """Ticks per field step."""
        return self.ticks("dt_field")

    @property
    def n_behaviour(self) -> int:
        """Ticks per behaviour step."""
        return self.ticks("dt_behaviour")

    @property
    def n_output(self) -> int:
        """Ticks per output step."""
        return self.ticks("dt_output")

    @property
    def n_outputs(self) -> int:
        """Number of output rows after t = 0."""
        return self.n_ticks // self.n_output
