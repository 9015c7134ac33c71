"""Parameter sweeps: grid, Latin hypercube, Sobol and Morris designs; local pool or Dask.

:func:`sweep` runs a scenario over a design and returns a tidy table, one row per run;
:func:`sensitivity` turns a Sobol or Morris sweep into sensitivity indices;
:func:`load_sweep` reads a sweep folder back. See ``docs/sweeps.md``.
"""

from biohybrid.sweep.api import load_sweep, sweep
from biohybrid.sweep.design import DESIGNS, Design, make_design, parse_param_text
from biohybrid.sweep.sensitivity import indices, sensitivity

__all__ = [
    "DESIGNS",
    "Design",
    "indices",
    "load_sweep",
    "make_design",
    "parse_param_text",
    "sensitivity",
    "sweep",
]
