"""Intracellular scale: per-cell ODE state, declared systems and batched stiff integration."""

from biohybrid.intracellular.integrate import IntegrationResult, integrate
from biohybrid.intracellular.relaxation import RelaxationStepper
from biohybrid.intracellular.species import Named, SpeciesIndex
from biohybrid.intracellular.state_table import StateTable
from biohybrid.intracellular.stepper import Stepper
from biohybrid.intracellular.steppers import STEPPERS, StepperProtocol, make_stepper
from biohybrid.intracellular.system import OdeSystem
from biohybrid.intracellular.tolerances import species_atol

__all__ = [
    "STEPPERS",
    "IntegrationResult",
    "Named",
    "OdeSystem",
    "RelaxationStepper",
    "SpeciesIndex",
    "StateTable",
    "Stepper",
    "StepperProtocol",
    "integrate",
    "make_stepper",
    "species_atol",
]
