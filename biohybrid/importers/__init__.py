"""Importers that turn model files (SBML, CellML) into batched :class:`OdeSystem` objects."""

from biohybrid.importers.cellml import CellmlInfo, load_cellml
from biohybrid.importers.sbml import SbmlCache, SbmlModel, load_sbml, read_sbml

__all__ = ["CellmlInfo", "SbmlCache", "SbmlModel", "load_cellml", "load_sbml", "read_sbml"]
