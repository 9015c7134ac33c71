"""Importers that turn model files into batched :class:`~biohybrid.intracellular.OdeSystem`s."""

from biohybrid.importers.sbml import SbmlCache, SbmlModel, load_sbml, read_sbml

__all__ = ["SbmlCache", "SbmlModel", "load_sbml", "read_sbml"]
