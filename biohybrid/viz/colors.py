"""Colour maps of the tissue views: one place decides how cells, fields and phenotypes look.

Cells are drawn in a bright perceptually uniform map on top of a field drawn in a muted
one, so that both remain readable where they overlap; phenotypes (categorical ``kind``
labels) get qualitative colours in a fixed order.

References:
    Smith N. & van der Walt S. (2015). A better default colormap for matplotlib (viridis,
    magma, inferno, plasma). SciPy 2015.
    Crameri F., Shephard G. E. & Heron P. J. (2020). The misuse of colour in science
    communication. Nat. Commun. 11, 5444.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from numpy.typing import ArrayLike

#: Colour map of the cells when coloured by an intracellular state.
CELL_CMAP = "viridis"
#: Colour map of a field drawn under the cells: white to mid-grey, so cells stay readable.
FIELD_UNDER_CMAP = ListedColormap(colormaps["Greys"](np.linspace(0.0, 0.62, 128)), "field_under")
#: Colour map of a field drawn on its own.
FIELD_CMAP = "magma"
#: Colour of an empty site when there is no field underneath (RGBA).
EMPTY_RGBA = (0.94, 0.94, 0.94, 1.0)

_SPECIES_HINTS = (
    (("ca", "calcium"), "inferno"),
    (("camp",), "cividis"),
)


def species_cmap(name: str) -> str:
    """The colour map of an intracellular species (calcium-like states glow in ``inferno``).

    Args:
        name: Species name, e.g. ``"Ca_cyt"`` or ``"cAMP"``.

    Returns:
        A matplotlib colour-map name.
    """
    low = name.lower()
    for keys, cmap in _SPECIES_HINTS:
        if any(low == k or low.startswith(k + "_") or low.endswith("_" + k) for k in keys):
            return cmap
    return CELL_CMAP


def kind_cmap(kinds: Sequence[str]) -> ListedColormap:
    """A qualitative colour map with one colour per phenotype, in the order given.

    Args:
        kinds: Phenotype labels (e.g. ``("normal", "cystic")``).

    Returns:
        A colour map with ``len(kinds)`` colours (``tab10``, cycling past ten).
    """
    base = colormaps["tab10"].colors
    n = max(len(kinds), 1)
    return ListedColormap([base[i % len(base)] for i in range(n)], name="kinds")


def color_limits(*arrays: ArrayLike) -> tuple[float, float]:
    """Shared colour limits over arrays that may hold NaN (empty sites).

    Args:
        *arrays: Arrays of any shape.

    Returns:
        ``(vmin, vmax)`` over the finite values, widened to a non-empty interval; ``(0, 1)``
        when there are no finite values.
    """
    finite = [np.asarray(a, dtype=float) for a in arrays]
    finite = [a[np.isfinite(a)] for a in finite]
    finite = [a for a in finite if a.size]
    if not finite:
        return 0.0, 1.0
    lo = float(min(a.min() for a in finite))
    hi = float(max(a.max() for a in finite))
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1.0):
        pad = 0.5 if lo == 0 else 0.05 * abs(lo)
        lo, hi = lo - pad, hi + pad
    return lo, hi
