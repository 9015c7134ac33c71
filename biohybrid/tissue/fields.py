"""Declarations of diffusing tissue species (fields)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import math

BoundaryKind = Literal["neumann", "dirichlet", "periodic"]


@dataclass(frozen=True)
class FieldSpec:
    """One diffusing species on the tissue mesh.

    Attributes:
        name: Field name, e.g. ``"atp"``.
        diffusion: Diffusion coefficient D, in µm²/(model time unit); must be >= 0.
        decay: First-order decay rate, in 1/(model time unit); must be >= 0.
        units: Concentration units, e.g. ``"µM"``.
        boundary: ``"neumann"`` (no flux), ``"dirichlet"`` (fixed value) or ``"periodic"``.
        boundary_value: The fixed value for Dirichlet boundaries, in ``units``.
        initial: Uniform initial concentration, in ``units``.
        description: One-line meaning.
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
        for attr in ("diffusion", "decay", "boundary_value", "initial"):
            value = getattr(self, attr)
            if not math.isfinite(value):
                raise ValueError(f"field {self.name!r}: {attr} must be finite, got {value!r}")
        if self.diffusion < 0:
            raise ValueError(f"field {self.name!r}: diffusion must be >= 0, got {self.diffusion}")
        if self.decay < 0:
            raise ValueError(f"field {self.name!r}: decay must be >= 0, got {self.decay}")
        if self.boundary not in ("neumann", "dirichlet", "periodic"):
            raise ValueError(
                f"field {self.name!r}: boundary must be neumann, dirichlet or periodic,"
                f" got {self.boundary!r}"
            )
