"""The multirate schedule: each scale on its own clock, all on one integer tick grid.

Four clocks drive a run: the ODE macro step ``dt_ode`` (intracellular), the field step
``dt_field`` (tissue), the behaviour step ``dt_behaviour`` (division, death) and the output
step ``dt_output`` (organ biomarkers). Every clock must be an integer multiple of the base
tick (the smallest of them), and ``t_end`` a multiple of ``dt_output``. Times are computed as
``tick * base`` rather than accumulated, so clocks line up exactly and never drift.

Within one tick ``[t, t + base)`` the processes run in the order of the data flow
(Lie operator splitting):

1. ``ode`` (when ``t`` is on the ODE clock): sample fields at cell sites, integrate every
   cell's ODEs over ``[t, t + dt_ode]``;
2. ``field`` (when ``t`` is on the field clock): cells' secretion/uptake from their new
   state, then an implicit field step over ``[t, t + dt_field]``;
3. ``behaviour`` (when ``t + base`` is on the behaviour clock): division and death;
4. ``output`` (when ``t + base`` is on the output clock): one biomarker row at ``t + base``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from biohybrid.errors import UserError

_REL_TOL = 1e-9


def _multiple(value: float, base: float, what: str, of: str) -> int:
    n = value / base
    m = round(n)
    if m < 1 or abs(n - m) > _REL_TOL * max(1.0, n):
        raise UserError(
            f"{what} = {value:g} is not a whole multiple of {of} = {base:g}. Every clock"
            f" (dt_ode, dt_field, dt_behaviour, dt_output) must be a whole multiple of the"
            f" smallest one, and t_end a whole multiple of dt_output."
        )
    return int(m)


@dataclass(frozen=True)
class Schedule:
    """Integer tick counts for each clock.

    Attributes:
        base: Length of one tick, model time unit.
        n_ode: Ticks per ODE macro step.
        n_field: Ticks per field step.
        n_behaviour: Ticks per behaviour step.
        n_output: Ticks per output step.
        n_ticks: Ticks in the whole run.
    """

    base: float
    n_ode: int
    n_field: int
    n_behaviour: int
    n_output: int
    n_ticks: int

    @classmethod
    def from_clocks(
        cls,
        *,
        t_end: float,
        dt_ode: float,
        dt_field: float,
        dt_behaviour: float,
        dt_output: float,
    ) -> Schedule:
        """Build a schedule from clock lengths, checking that they line up.

        Args:
            t_end: Run horizon, model time unit.
            dt_ode: ODE macro step.
            dt_field: Field step.
            dt_behaviour: Behaviour step.
            dt_output: Output step.

        Returns:
            The schedule.

        Raises:
            UserError: If a clock is not positive and finite, or the clocks do not line up.
        """
        clocks = {
            "t_end": t_end,
            "dt_ode": dt_ode,
            "dt_field": dt_field,
            "dt_behaviour": dt_behaviour,
            "dt_output": dt_output,
        }
        for name, value in clocks.items():
            if not (math.isfinite(value) and value > 0):
                raise UserError(f"{name} must be a positive, finite time; got {value!r}.")
        base = min(dt_ode, dt_field, dt_behaviour, dt_output)
        which = min(("dt_ode", "dt_field", "dt_behaviour", "dt_output"), key=clocks.get)
        n_output = _multiple(dt_output, base, "dt_output", which)
        n_out_total = _multiple(t_end, dt_output, "t_end", "dt_output")
        return cls(
            base=base,
            n_ode=_multiple(dt_ode, base, "dt_ode", which),
            n_field=_multiple(dt_field, base, "dt_field", which),
            n_behaviour=_multiple(dt_behaviour, base, "dt_behaviour", which),
            n_output=n_output,
            n_ticks=n_out_total * n_output,
        )

    def time(self, tick: int) -> float:
        """Model time at the start of ``tick``."""
        return tick * self.base

    def due(self, tick: int) -> dict[str, bool]:
        """Which processes run during ``tick``.

        Args:
            tick: Tick index, ``0 <= tick < n_ticks``.

        Returns:
            ``{"ode", "field", "behaviour", "output"}`` → whether each runs this tick.
        """
        return {
            "ode": tick % self.n_ode == 0,
            "field": tick % self.n_field == 0,
            "behaviour": (tick + 1) % self.n_behaviour == 0,
            "output": (tick + 1) % self.n_output == 0,
        }

    @property
    def n_outputs(self) -> int:
        """Number of output rows after t = 0."""
        return self.n_ticks // self.n_output
