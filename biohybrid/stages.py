"""Stages: a model's step as a declared sequence of operator-split stages, each on its clock.

A model's :meth:`~biohybrid.model.HybridModel.build_stages` returns a list of
:class:`Stage`. Each stage names a clock (a run setting such as ``dt_ode``) and a ``role``:

* ``"split"``: an operator that advances part of the state over ``[t, t + dt]`` (the
  intracellular ODEs, the fields, a cell-to-cell coupling, a model's own operator). Split
  stages are composed by the run's splitting scheme;
* ``"start"``: an instantaneous action at the start of a clock step, before the split
  stages (e.g. recording threshold crossings);
* ``"end"``: an instantaneous action at the end of a clock step, after time has advanced
  (behaviour: division, death, motility; output: a biomarker row).

**Lie splitting** (``splitting = "lie"``, first order): in every tick, each split stage whose
clock step starts there runs once over its whole clock step, in declared order.

**Strang splitting** (``splitting = "strang"``, second order): the split stages share one
clock ``h`` and run as ``S1(h/2) … S(m−1)(h/2) Sm(h) S(m−1)(h/2) … S1(h/2)``.

References:
    Strang, G. (1968). On the construction and comparison of difference schemes. SIAM J.
    Numer. Anal. 5(3):506-517.
    McLachlan, R. I. & Quispel, G. R. W. (2002). Splitting methods. Acta Numerica
    11:341-434.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from biohybrid.errors import UserError

if TYPE_CHECKING:
    from biohybrid.model import HybridModel

Role = Literal["split", "start", "end"]
ROLES: tuple[str, ...] = get_args(Role)

#: ``run(model, t0, dt)``: advance (or act) over ``[t0, t0 + dt]``.
StageFn = Callable[["HybridModel", float, float], None]


@dataclass(frozen=True)
class Stage:
    """One stage of a model's step.

    Attributes:
        name: Unique name, e.g. ``"ode"``, ``"field"``, ``"coupling:ip3"``.
        clock: The run setting giving its step, e.g. ``"dt_ode"``.
        run: ``run(model, t0, dt)``.
        role: ``"split"``, ``"start"`` or ``"end"`` (see the module docstring).
    """

    name: str
    clock: str
    run: StageFn
    role: Role = "split"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise UserError(
                f"stage {self.name!r}: role must be one of {', '.join(ROLES)}, got {self.role!r}"
            )
        if not callable(self.run):
            raise UserError(f"stage {self.name!r}: run must be callable (model, t0, dt)")

    # ------------------------------------------------------------------ built-ins
    @staticmethod
    def ode(clock: str = "dt_ode") -> Stage:
        """Integrate every population's ODEs (one batch per population)."""
        return Stage("ode", clock, lambda m, t0, dt: m.step_odes(t0, dt))

    @staticmethod
    def fields(clock: str = "dt_field") -> Stage:
        """Cells' secretion/uptake from their state, then one implicit field step."""
        return Stage("field", clock, lambda m, t0, dt: m.step_fields(t0, dt))

    @staticmethod
    def coupling(name: str, clock: str = "dt_coupling") -> Stage:
        """One declared cell-to-cell coupling (see :class:`biohybrid.model.Coupling`)."""
        return Stage(f"coupling:{name}", clock, lambda m, t0, dt: m.step_coupling(name, t0, dt))

    @staticmethod
    def behaviour(clock: str = "dt_behaviour") -> Stage:
        """Division, death and motility of every population."""
        return Stage("behaviour", clock, lambda m, t0, dt: m.step_behaviour(t0, dt), "end")

    @staticmethod
    def output(clock: str = "dt_output") -> Stage:
        """One row of biomarkers."""
        return Stage("output", clock, lambda m, t0, dt: m.record(), "end")


def check_stages(stages: Sequence[Stage], clocks: Sequence[str], splitting: str) -> None:
    """Validate a stage list against the known clocks and the splitting scheme.

    Raises:
        UserError: Duplicate stage names, an unknown clock or no output stage (Strang's
            common clock is checked by the model, which knows the clock lengths).
    """
    names = [s.name for s in stages]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"stages declared twice: {dup}; stages are {names}")
    for s in stages:
        if s.clock not in clocks:
            raise UserError(
                f"stage {s.name!r} runs on unknown clock {s.clock!r}; clocks are:"
                f" {', '.join(clocks)}"
            )
    if not any(s.name == "output" for s in stages):
        raise UserError(f"a model's stages must include Stage.output(); got {names}")
