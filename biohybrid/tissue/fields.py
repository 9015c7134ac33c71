"""Declarations of diffusing tissue species (fields)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import UserError

if TYPE_CHECKING:
    from biohybrid.geometry import Lattice

BoundaryKind = Literal["neumann", "dirichlet", "periodic"]
BOUNDARY_KINDS: tuple[str, ...] = get_args(BoundaryKind)

#: What ``FieldSpec.diffusion`` accepts (see :class:`FieldSpec`).
Diffusion = float | tuple[float, ...] | NDArray[np.float64]


def _number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _normalise_diffusion(name: str, value: object) -> Diffusion:
    """Check ``FieldSpec.diffusion`` on its own (the lattice is checked later).

    Returns a float (isotropic), a tuple of 1-3 floats (per axis) or a read-only float
    array of shape ``(n,)`` or ``(n, d)`` (per site).
    """
    expected = (
        "a number (isotropic), a tuple of one number per axis (anisotropic, e.g. (1000, 100))"
        " or a NumPy array with one value per site, shape (n_sites,) or (n_sites, ndim)"
        " (heterogeneous)"
    )
    if _number(value):
        d = float(value)  # type: ignore[arg-type]
        if not math.isfinite(d):
            raise UserError(f"field {name!r}: diffusion must be a finite number, got {value!r}")
        if d < 0:
            raise UserError(f"field {name!r}: diffusion must be >= 0, got {d}")
        return d
    if isinstance(value, tuple | list):
        if not 1 <= len(value) <= 3 or not all(_number(v) for v in value):
            raise UserError(
                f"field {name!r}: a per-axis diffusion must be 1 to 3 numbers (µm²/time along"
                f" x, y, z), got {list(value)!r}; diffusion is {expected}"
            )
        axes = tuple(float(v) for v in value)
        if not all(math.isfinite(v) for v in axes):
            raise UserError(f"field {name!r}: diffusion must be finite, got {list(axes)}")
        if any(v < 0 for v in axes):
            raise UserError(f"field {name!r}: diffusion must be >= 0 on every axis, got {axes}")
        return axes
    if isinstance(value, np.ndarray):
        if value.ndim not in (1, 2) or value.size == 0 or not np.issubdtype(value.dtype, np.number):
            raise UserError(
                f"field {name!r}: a per-site diffusion must be a numeric array of shape"
                f" (n_sites,) or (n_sites, ndim), got shape {value.shape} of {value.dtype}"
            )
        arr = np.array(value, dtype=float)
        if not np.all(np.isfinite(arr)):
            raise UserError(f"field {name!r}: per-site diffusion contains NaN or Inf")
        if np.any(arr < 0):
            raise UserError(
                f"field {name!r}: diffusion must be >= 0 at every site, got min {arr.min():g}"
            )
        arr.flags.writeable = False
        return arr
    raise UserError(f"field {name!r}: diffusion must be {expected}; got {value!r}")


@dataclass(frozen=True)
class FieldSpec:
    """One diffusing species on the tissue lattice.

    The field obeys ``∂c/∂t = ∇·(D ∇c) − (decay + Σ uptake) c + Σ secretion / V`` on the
    lattice, ``V`` the site volume (see :mod:`biohybrid.tissue.layer` for the coupling units).

    Attributes:
        name: Field name, e.g. ``"atp"``.
        diffusion: Diffusion coefficient in µm²/(model time unit), >= 0, as one of

            * a number: isotropic and uniform;
            * a tuple of one number per lattice axis, e.g. ``(1000.0, 100.0)``: uniform,
              anisotropic with the principal axes along the lattice axes (fibres along x);
            * a NumPy array of shape ``(n_sites,)`` (isotropic) or ``(n_sites, ndim)`` (one
              value per axis) in the lattice's site order: heterogeneous. Across a face the
              two sites' values combine by their harmonic mean, so a site with zero
              diffusion exchanges nothing with its neighbours.

            A list is read as a per-axis tuple; only an array is per site.
        decay: First-order decay rate, in 1/(model time unit); must be >= 0.
        units: Concentration units, e.g. ``"µM"``.
        boundary: ``"neumann"`` (no flux on every outer face), ``"dirichlet"`` (fixed value
            ``boundary_value`` on every outer face) or ``"periodic"`` (every axis wraps).
        boundary_value: The fixed value for Dirichlet boundaries, in ``units``.
        initial: Uniform initial concentration, in ``units``.
        description: One-line meaning.

    Raises:
        UserError: A non-finite or negative coefficient, a malformed diffusion, or an
            unknown boundary kind.
    """

    name: str
    diffusion: Diffusion
    decay: float = 0.0
    units: str = "1"
    boundary: BoundaryKind = "neumann"
    boundary_value: float = 0.0
    initial: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserError(f"field name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "diffusion", _normalise_diffusion(self.name, self.diffusion))
        for attr in ("decay", "boundary_value", "initial"):
            value = getattr(self, attr)
            if not _number(value) or not math.isfinite(value):
                raise UserError(
                    f"field {self.name!r}: {attr} must be a finite number, got {value!r}"
                )
        if self.decay < 0:
            raise UserError(f"field {self.name!r}: decay must be >= 0, got {self.decay}")
        if self.boundary not in BOUNDARY_KINDS:
            raise UserError(
                f"field {self.name!r}: boundary must be one of {', '.join(BOUNDARY_KINDS)},"
                f" got {self.boundary!r}"
            )

    def _key(self) -> tuple:
        d = self.diffusion
        dkey = (d.shape, d.tobytes()) if isinstance(d, np.ndarray) else d
        return tuple(dkey if f.name == "diffusion" else getattr(self, f.name) for f in fields(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSpec):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def diffusion_kind(self) -> str:
        """``"isotropic"``, ``"anisotropic"`` (per axis) or ``"heterogeneous"`` (per site)."""
        if isinstance(self.diffusion, np.ndarray):
            return "heterogeneous"
        if isinstance(self.diffusion, tuple) and len(set(self.diffusion)) > 1:
            return "anisotropic"
        return "isotropic"

    def diffusion_per_site(self, lattice: Lattice) -> NDArray[np.float64]:
        """The diffusion coefficient of every site along every axis, µm²/time.

        Args:
            lattice: The lattice the field lives on.

        Returns:
            Shape ``(n_sites, ndim)``: column ``a`` is the coefficient for flux along axis
            ``a``.

        Raises:
            UserError: A per-axis tuple of the wrong length or a per-site array of the wrong
                shape for this lattice.
        """
        n, d = lattice.n_sites, lattice.ndim
        value = self.diffusion
        if isinstance(value, float):
            return np.full((n, d), value)
        if isinstance(value, tuple):
            if len(value) == 1:
                return np.full((n, d), value[0])
            if len(value) != d:
                raise UserError(
                    f"field {self.name!r}: per-axis diffusion needs {d} value(s) for the"
                    f" {d}-D lattice of shape {list(lattice.shape)}, got {len(value)}:"
                    f" {list(value)}"
                )
            return np.tile(np.asarray(value, dtype=float), (n, 1))
        arr = np.asarray(value, dtype=float)
        if arr.shape == (n,):
            return np.repeat(arr[:, None], d, axis=1)
        if arr.shape == (n, d):
            return arr.copy()
        raise UserError(
            f"field {self.name!r}: per-site diffusion must have shape ({n},) or ({n}, {d})"
            f" for the lattice of shape {list(lattice.shape)}, got {arr.shape}"
        )
