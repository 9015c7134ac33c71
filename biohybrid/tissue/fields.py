"""Declarations of diffusing tissue species (fields)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from biohybrid.errors import UserError

BoundaryKind = Literal["neumann", "dirichlet", "periodic"]
BOUNDARY_KINDS: tuple[str, ...] = get_args(BoundaryKind)


@dataclass(frozen=True)
class FieldSpec:
    """One diffusing species on the tissue mesh.

    The field obeys ``∂c/∂t = D ∇²c − (decay + Σ uptake) c + Σ secretion / V`` on the mesh
    (see :mod:`biohybrid.tissue.layer` for the per-cell coupling units).

    Attributes:
        name: Field name, e.g. ``"atp"``.
        diffusion: Diffusion coefficient D, in µm²/(model time unit); must be >= 0.
        decay: First-order decay rate, in 1/(model time unit); must be >= 0.
        units: Concentration units, e.g. ``"µM"``.
        boundary: ``"neumann"`` (no flux on every outer face), ``"dirichlet"`` (fixed value
            ``boundary_value`` on every outer face) or ``"periodic"`` (both axes wrap).
        boundary_value: The fixed value for Dirichlet boundaries, in ``units``.
        initial: Uniform initial concentration, in ``units``.
        description: One-line meaning.

    Raises:
        UserError: A non-finite or negative coefficient, or an unknown boundary kind.
    """

    name: str
    diffusion: float
    decay: float = 0.0
    units: str = "1"
    boundary: BoundaryKind = "neumann"
    boundary_value: float = 0.0
    initial: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserError(f"field name must be a non-empty string, got {self.name!r}")
        for attr in ("diffusion", "decay", "boundary_value", "initial"):
            value = getattr(self, attr)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise UserError(
                    f"field {self.name!r}: {attr} must be a finite number, got {value!r}"
                )
        if self.diffusion < 0:
            raise UserError(f"field {self.name!r}: diffusion must be >= 0, got {self.diffusion}")
        if self.decay < 0:
            raise UserError(f"field {self.name!r}: decay must be >= 0, got {self.decay}")
        if self.boundary not in BOUNDARY_KINDS:
            raise UserError(
                f"field {self.name!r}: boundary must be one of {', '.join(BOUNDARY_KINDS)},"
                f" got {self.boundary!r}"
            )
