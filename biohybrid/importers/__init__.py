"""Importers that turn model files (SBML, CellML) into batched :class:`OdeSystem` objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from biohybrid.errors import UserError

if TYPE_CHECKING:
    from biohybrid.intracellular import OdeSystem

#: File endings and the importer each one goes to.
FORMATS: dict[str, str] = {".xml": "sbml", ".sbml": "sbml", ".cellml": "cellml"}


def import_model(path: str | Path) -> OdeSystem:
    """The batched ODE system of an SBML (``.xml``, ``.sbml``) or CellML (``.cellml``) file.

    Raises:
        UserError: An unknown file ending (naming the valid ones) or what the importer
            refuses (a missing file, an unsupported element).
    """
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise UserError(
            f"Cannot tell the format of model file '{path}': use one of"
            f" {', '.join(sorted(FORMATS))} (SBML or CellML)."
        )
    if kind == "sbml":
        from biohybrid.importers.sbml import load_sbml

        return load_sbml(path)
    from biohybrid.importers.cellml import load_cellml

    return load_cellml(path)[0]


_LAZY = {
    "SbmlCache": "sbml",
    "SbmlModel": "sbml",
    "load_sbml": "sbml",
    "read_sbml": "sbml",
    "CellmlInfo": "cellml",
    "load_cellml": "cellml",
}


def __getattr__(name: str) -> object:
    """The importers' own names, loaded on first use (libsbml, sympy, myokit are heavy)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"biohybrid.importers.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'biohybrid.importers' has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "CellmlInfo",
    "SbmlCache",
    "SbmlModel",
    "import_model",
    "load_cellml",
    "load_sbml",
    "read_sbml",
]
