"""biohybrid: multiscale hybrid models of Mesa agents, stiff ODEs and FiPy fields.

The public surface is what this module exports; everything else may move.
"""

from biohybrid.analysis import multiscale_entropy, sample_entropy  # noqa: F401 (public API)
from biohybrid.errors import SimulationError, UserError
from biohybrid.model import HybridModel
from biohybrid.organ import Biomarker
from biohybrid.params import Param, ParameterSet
from biohybrid.results import RunData, load_run
from biohybrid.runner import RunResult, run
from biohybrid.scenario import Scenario, load_scenario
from biohybrid.sweep import sensitivity, sweep

__version__ = "0.1.0"

__all__ = [
    "Biomarker",
    "HybridModel",
    "Param",
    "ParameterSet",
    "RunData",
    "RunResult",
    "Scenario",
    "SimulationError",
    "UserError",
    "__version__",
    "load_run",
    "load_scenario",
    "run",
    "sensitivity",
    "sweep",
]
