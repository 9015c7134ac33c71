"""Tissue scale: diffusing fields (FiPy grids, 1-D to 3-D) on the model's lattice."""

from biohybrid.tissue.fields import FieldSpec
from biohybrid.tissue.layer import FieldSystem, TissueLayer, default_solver
from biohybrid.tissue.ledger import FieldLedger, StepLedger
from biohybrid.tissue.solvers import (
    CachedLUSolver,
    CGSolver,
    FieldSolver,
    FiPySolver,
    SolverStats,
)

__all__ = [
    "CGSolver",
    "CachedLUSolver",
    "FiPySolver",
    "FieldLedger",
    "FieldSolver",
    "FieldSpec",
    "FieldSystem",
    "SolverStats",
    "StepLedger",
    "TissueLayer",
    "default_solver",
]
