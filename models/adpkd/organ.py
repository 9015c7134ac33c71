"""Organ scale: from the simulated patch to the kidney pair, and the Mayo imaging class.

**Scaling.** One grid unit stands for one nephron's tubule. A kidney holds about 10⁶
nephrons (Bertram et al. 2011: mean ~0.9 × 10⁶, range 0.2-2.7 × 10⁶), so an ``nx × ny``
patch is the fraction ``nx·ny / (2 × nephrons_per_kidney)`` of the kidney pair, and every
patch total (cyst volume, cyst count) is multiplied by ``2 × nephrons_per_kidney / (nx·ny)``.

**TKV.** ``TKV = parenchyma + total cyst volume``. The non-cystic parenchyma is
``htTKV_0 × height(age)`` with ``htTKV_0 = 150 mL/m``, the value Irazabal et al. (2015)
assume for a kidney without cysts, and a crude growth curve of height,
``height = h_adult − (h_adult − h_birth) e^{−age/τ_h}`` (birth length ~0.5 m). Cysts are
added to, not subtracted from, the parenchyma (compression is ignored).

**Mayo imaging class** (Irazabal et al. 2015). From one htTKV at age ``a`` (15-80 yr), the
implied yearly growth from 150 mL/m at birth is ``(htTKV/150)^{1/a} − 1``; classes 1A-1E are
< 1.5, 1.5-3, 3-4.5, 4.5-6 and > 6 %/yr. Reported here as 1..5 (1 = 1A … 5 = 1E); 0 when the
age is outside 15-80.

References:
    Bertram, J. F., Douglas-Denton, R. N., Diouf, B., Hughson, M. D. & Hoy, W. E. (2011).
    Human nephron number: implications for health and disease. Pediatr. Nephrol.
    26(9):1529-1533.
    Irazabal, M. V. et al. (2015). Imaging classification of autosomal dominant polycystic
    kidney disease: a simple model for selecting patients for clinical trials. J. Am. Soc.
    Nephrol. 26(1):160-172.
    Grantham, J. J. et al. (2006). Volume progression in polycystic kidney disease. N. Engl.
    J. Med. 354(20):2122-2130.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAYO_CLASSES = ("1A", "1B", "1C", "1D", "1E")
MAYO_BOUNDS_PCT = (1.5, 3.0, 4.5, 6.0)
HTTKV_BIRTH_ML_M = 150.0


def height_m(age: float, p: Mapping[str, Any]) -> float:
    """Body height (m) at ``age`` (yr), a saturating curve from birth length to adult height."""
    return float(p["height_m"] - (p["height_m"] - 0.5) * np.exp(-age / p["tau_height"]))


def scale_factor(n_sites: int, p: Mapping[str, Any]) -> float:
    """Nephrons of the kidney pair per simulated unit."""
    return 2.0 * p["nephrons_per_kidney"] / n_sites


def parenchyma_ml(age: float, p: Mapping[str, Any]) -> float:
    """Non-cystic kidney-pair volume (mL) at ``age``."""
    return p["httkv_parenchyma"] * height_m(age, p)


def mayo_rate_pct(httkv: float, age: float) -> float:
    """Implied yearly htTKV growth (%) from 150 mL/m at birth (Irazabal et al. 2015)."""
    if age <= 0:
        return float("nan")
    return 100.0 * ((max(httkv, 1e-9) / HTTKV_BIRTH_ML_M) ** (1.0 / age) - 1.0)


def mayo_class(httkv: float, age: float) -> int:
    """Mayo class as 1..5 (1A..1E), or 0 outside the 15-80 yr range of the classification."""
    if not 15.0 <= age <= 80.0:
        return 0
    return 1 + int(np.searchsorted(MAYO_BOUNDS_PCT, mayo_rate_pct(httkv, age), side="right"))


def growth_rate_pct(ages: NDArray, tkv: NDArray, start: float, end: float) -> float:
    """Annual TKV growth (%/yr) over ``[start, end]``, exponential fit.

    ``100 (e^b − 1)`` with ``b`` the least-squares slope of ``log TKV`` on age (as in the
    CRISP and TEMPO 3:4 analyses).

    Args:
        ages: Ages, yr, shape ``(T,)``.
        tkv: TKV, mL, shape ``(T,)``.
        start: Window start age, yr.
        end: Window end age, yr.

    Returns:
        Growth rate in %/yr (NaN if fewer than two samples fall in the window).
    """
    ages, tkv = np.asarray(ages, float), np.asarray(tkv, float)
    m = (ages >= start - 1e-9) & (ages <= end + 1e-9) & (tkv > 0)
    if m.sum() < 2:
        return float("nan")
    b = np.polyfit(ages[m], np.log(tkv[m]), 1)[0]
    return float(100.0 * np.expm1(b))
