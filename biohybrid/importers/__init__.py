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


__all__ = ["FORMATS", "import_model"]
