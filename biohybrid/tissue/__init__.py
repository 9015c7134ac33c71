"""Tissue scale: diffusing FiPy fields on a mesh aligned with the agent grid."""

from biohybrid.tissue.fields import FieldSpec
from biohybrid.tissue.layer import FieldSystem, TissueLayer
from biohybrid.tissue.ledger import FieldLedger, StepLedger
from biohybrid.tissue.solvers import CachedLUSolver, FieldSolver, FiPySolver, SolverStats

__all__ = [
    "CachedLUSolver",
    "FiPySolver",
    "FieldLedger",
    "FieldSolver",
    "FieldSpec",
    "FieldSystem",
    "SolverStats",
    "StepLedger",
    "TissueLayer",
]
