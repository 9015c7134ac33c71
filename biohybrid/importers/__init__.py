"""Importers that turn model files (SBML, CellML) into batched :class:`OdeSystem` objects."""
