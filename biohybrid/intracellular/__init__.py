"""Intracellular scale: per-cell ODE state, declared systems and batched stiff integration."""

from biohybrid.intracellular.integrate import IntegrationResult, integrate
from biohybrid.intracellular.species import Named, SpeciesIndex
from biohybrid.intracellular.state_table import StateTable
from biohybrid.intracellular.stepper import Stepper
from biohybrid.intracellular.system import OdeSystem

__all__ = [
    "IntegrationResult",
    "Named",
    "OdeSystem",
    "SpeciesIndex",
    "StateTable",
    "Stepper",
    "integrate",
]
