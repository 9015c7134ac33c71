"""Phenotype map and cyst bookkeeping: from per-cell PKA/ERK to cyst lumen and wall.

**Phenotype map** (per unit, from the relaxed signalling state):

* CFTR-mediated fluid secretion per apical area, net of passive reabsorption,
  ``J = J_max · pka^4/(K_cftr^4 + pka^4) − J_abs`` (µm³/µm²/yr = µm/yr). PKA opens CFTR
  by phosphorylating its R domain at several sites, hence the steep response; cAMP-driven,
  CFTR-dependent Cl⁻ and fluid secretion is what fills ADPKD cysts (Sullivan, Wallace &
  Grantham 1998; Magenheimer et al. 2006: CFTR inhibitors block cyst growth).
* Proliferation (divisions per cell per year) ``p = p_max · c(age) · erk``, where ERK is
  cAMP-driven only in Ca²⁺-low cells (the switch in :mod:`.signalling`) and ``c(age) =
  c_adult + (1 − c_adult) e^{−age/τ_dev}`` is the declining proliferative competence of the
  maturing kidney (Piontek et al. 2007: the same Pkd1 loss gives fast cysts before and slow
  cysts after a developmental switch).

**Cysts.** A cyst is a connected cluster (8-neighbour, the model's Moore neighbourhood) of
cystic units, labelled with :func:`scipy.ndimage.label`. Each cystic unit carries two slow
variables: ``lining`` (cells of cyst wall it contributes) and ``lumen`` (its share of the
lumen, mL). Per cyst ``k`` with wall area ``A_k = a_cell Σ lining``:

* wall: ``d lining_i / dt = (p_i − d) lining_i`` (proliferation minus apoptosis);
* lumen: ``d lumen_i / dt = J_i · a_cell · lining_i`` (its cells' net secretion);
* the wall bounds the lumen: ``V_k <= A_k^{3/2} / (6 √π)`` (a sphere of area ``A_k``);
  fluid beyond it is not retained (it raises pressure and leaks back), and a lumen never
  shrinks below the dilated tubule it started from.

So a cyst grows as fast as its wall proliferates while secretion keeps up, and as fast as
its cells secrete once the wall outgrows the secretory capacity (``V ∝ t³``). Both are
computed from its cells' states, none is set per cyst.

References:
    Sullivan, L. P., Wallace, D. P. & Grantham, J. J. (1998). Epithelial transport in
    polycystic kidney disease. Physiol. Rev. 78(4):1165-1191.
    Magenheimer, B. S. et al. (2006). Early embryonic renal tubules of wild-type and
    polycystic kidney disease kidneys respond to cAMP stimulation with cystic fibrosis
    transmembrane conductance regulator/Na+,K+,2Cl- co-transporter-dependent cystic
    dilation. J. Am. Soc. Nephrol. 17(12):3424-3437.
    Piontek, K., Menezes, L. F., Garcia-Gonzalez, M. A., Huso, D. L. & Germino, G. G.
    (2007). A critical developmental switch defines the kinetics of kidney cyst formation
    after loss of Pkd1. Nat. Med. 13(12):1490-1495.
    Grantham, J. J., Mulamalla, S. & Swenson-Fields, K. I. (2011). Why kidneys fail in
    autosomal dominant polycystic kidney disease. Nat. Rev. Nephrol. 7(10):556-566.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

UM3_PER_ML = 1e12
_SPHERE = 1.0 / (6.0 * np.sqrt(np.pi))


def competence(age: float | NDArray, p: Mapping[str, Any]) -> float | NDArray:
    """Proliferative competence at ``age`` (yr; scalar or array), 1 at birth → ``c_adult``."""
    c = p["c_adult"] + (1.0 - p["c_adult"]) * np.exp(-np.asarray(age, dtype=float) / p["tau_dev"])
    return float(c) if np.ndim(c) == 0 else c


def proliferation(erk: NDArray, age: float | NDArray, p: Mapping[str, Any]) -> NDArray:
    """Divisions per cell per year, shape ``(N,)``, from active ERK ``erk``.

    Args:
        erk: Active ERK fraction, shape ``(N,)``.
        age: Age, yr: a scalar or per cell, shape ``(N,)``.
        p: Model parameters.
    """
    return p["p_max"] * competence(age, p) * np.clip(erk, 0.0, None)


def fluid_secretion(pka: NDArray, p: Mapping[str, Any]) -> NDArray:
    """Net apical fluid flux, µm/yr (µm³ per µm² per yr), shape ``(N,)``; may be negative."""
    x = np.power(np.clip(pka, 0.0, None) / p["K_cftr"], 4)
    return p["J_max"] * x / (1.0 + x) - p["J_abs"]


def wall_volume_ml(lining: NDArray, a_cell: float) -> NDArray:
    """Largest lumen (mL) a wall of ``lining`` cells of apical area ``a_cell`` µm² encloses."""
    area = np.clip(lining, 0.0, None) * a_cell
    return area**1.5 * _SPHERE / UM3_PER_ML


def label_cysts(cystic_sites: NDArray[np.int64], nx: int, ny: int) -> tuple[NDArray, int]:
    """Label connected clusters of cystic sites (8-neighbour).

    Args:
        cystic_sites: Flat site indices of cystic units, shape ``(M,)``.
        nx: Grid width.
        ny: Grid height.

    Returns:
        ``(labels, n)``: the cyst label (1..n) of each input site, shape ``(M,)``, and the
        number of cysts.
    """
    grid = np.zeros(nx * ny, dtype=bool)
    grid[cystic_sites] = True
    lab, n = ndimage.label(grid.reshape(ny, nx), structure=np.ones((3, 3), dtype=int))
    return lab.reshape(-1)[cystic_sites], int(n)


def constrain_lumen(
    lining: NDArray, lumen: NDArray, floor: NDArray, labels: NDArray, n: int, a_cell: float
) -> tuple[NDArray, NDArray, NDArray]:
    """Apply the wall bound and the tubular floor to each cyst, sharing by lining.

    Args:
        lining: Wall cells per cystic unit, shape ``(M,)``.
        lumen: Lumen share per unit, mL, shape ``(M,)``.
        floor: Smallest lumen share per unit (its dilated tubule), mL, shape ``(M,)``.
        labels: Cyst label (1..n) per unit, shape ``(M,)``.
        n: Number of cysts.
        a_cell: Apical area per lining cell, µm².

    Returns:
        ``(lumen', cyst_volume, cyst_lining)``: constrained shares (shape ``(M,)``), and per
        cyst volume (mL) and wall cells, shape ``(n,)``.
    """
    if lining.size == 0:
        return lumen.copy(), np.zeros(0), np.zeros(0)
    idx = labels - 1
    n_k = np.bincount(idx, lining, n)
    v_k = np.bincount(idx, lumen, n)
    f_k = np.bincount(idx, floor, n)
    vmax = np.maximum(wall_volume_ml(n_k, a_cell), f_k)
    v_new = np.clip(v_k, f_k, vmax)
    share = lining / np.maximum(n_k[idx], 1e-300)
    return v_new[idx] * share, v_new, n_k


def advance_cysts(
    lining: NDArray,
    lumen: NDArray,
    prolif: NDArray,
    secretion: NDArray,
    dt: float,
    p: Mapping[str, Any],
) -> tuple[NDArray, NDArray]:
    """One explicit update of wall and lumen over ``dt`` (before :func:`constrain_lumen`).

    Args:
        lining: Wall cells per cystic unit, shape ``(M,)``.
        lumen: Lumen share per unit, mL, shape ``(M,)``.
        prolif: Proliferation rate, 1/yr, shape ``(M,)``.
        secretion: Net fluid flux, µm/yr, shape ``(M,)``.
        dt: Step, yr.
        p: Model parameters (``apoptosis``, ``a_cell``).

    Returns:
        ``(lining', lumen')``.
    """
    lining_new = lining * np.exp((prolif - p["apoptosis"]) * dt)
    # secretion over the step through the mean wall area (exact for exponential walls)
    g = prolif - p["apoptosis"]
    mean_cells = np.where(np.abs(g * dt) > 1e-9, (lining_new - lining) / (g * dt), lining)
    lumen_new = lumen + secretion * p["a_cell"] * mean_cells * dt / UM3_PER_ML
    return lining_new, lumen_new
