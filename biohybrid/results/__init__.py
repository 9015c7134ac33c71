"""Run outputs for analysis: per-cell tables, field datasets, ParaView files, and loading them.

* :class:`~biohybrid.results.observer.OutputObserver` writes them during a run
  (run settings ``cells_every``, ``fields_every``, ``vtk_every``);
* :func:`load_run` opens a run folder again.
"""

from biohybrid.results.load import RunData, load_run
from biohybrid.results.observer import OutputObserver

__all__ = ["OutputObserver", "RunData", "load_run"]
