"""Error-control tolerances of the intracellular steppers, per species.

Species of one system can live on very different scales (a membrane potential in mV beside a
Ca²⁺ concentration in µM, or a 1e-13 intermediate beside a unit fraction), so the absolute
tolerance may be given per species: as one float for all, as a ``(k,)`` array in species
order, or as a mapping ``{species name: value}`` whose missing species take a default.
Every stepper resolves it once, with :func:`species_atol`, into a ``(k,)`` array.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from biohybrid.errors import UserError
from biohybrid.intracellular.species import SpeciesIndex

#: Default absolute tolerance (the run parameter ``atol`` has the same default).
DEFAULT_ATOL = 1e-9

#: What a stepper accepts as ``atol``.
AtolSpec = float | ArrayLike | Mapping[str, float]


def species_atol(
    atol: AtolSpec, index: SpeciesIndex, default: float = DEFAULT_ATOL
) -> NDArray[np.float64]:
    """Resolve an absolute tolerance into one value per species.

    Args:
        atol: A float (every species), a ``(k,)`` array in species order, or a mapping
            ``{species name: value}``; species missing from the mapping take ``default``.
        index: The species of the system (``OdeSystem.index``).
        default: Tolerance of species a mapping leaves out.

    Returns:
        A new array of shape ``(k,)``, every entry finite and positive.

    Raises:
        UserError: An unknown species name (the message lists the species), an array of
            the wrong length, or a non-positive or non-finite value.
    """
    k = len(index)
    if isinstance(atol, Mapping):
        # vector() raises a UserError listing the declared species on an unknown name.
        out = index.vector({n: float(v) for n, v in atol.items()}, fill=float(default))
    else:
        try:
            arr = np.asarray(atol, dtype=float)
        except (TypeError, ValueError):
            raise UserError(
                f"atol must be a number, an array of {k} values or a mapping"
                f" {{species: value}}; got {atol!r}"
            ) from None
        if arr.ndim == 0:
            out = np.full(k, float(arr))
        elif arr.shape == (k,):
            out = arr.copy()
        else:
            raise UserError(
                f"atol has shape {arr.shape}; expected a number or {k} values, one per"
                f" species ({', '.join(index.names)})"
            )
    bad = ~(np.isfinite(out) & (out > 0))
    if bad.any():
        names = [index.names[i] for i in np.flatnonzero(bad)]
        raise UserError(f"atol must be finite and > 0; got {out[bad].tolist()} for {names}")
    return out


def check_rtol(rtol: float) -> float:
    """``rtol`` as a float in ``(0, 1)``.

    Raises:
        UserError: ``rtol`` is not a number in ``(0, 1)``.
    """
    try:
        r = float(rtol)
    except (TypeError, ValueError):
        raise UserError(f"rtol must be a number in (0, 1); got {rtol!r}") from None
    if not 0.0 < r < 1.0:
        raise UserError(f"rtol must be in (0, 1); got {r:g}")
    return r
