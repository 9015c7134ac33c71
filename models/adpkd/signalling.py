"""Per-cell Ca²⁺-cAMP-PKA-ERK signalling of a renal tubular epithelial unit.

Four species per unit (time in years; every rate constant is declared per second and
converted with :data:`SECONDS_PER_YEAR`):

* ``ca``: cytosolic Ca²⁺, µM. Polycystin (the PC1-PC2 channel complex at the primary cilium)
  carries a Ca²⁺ entry, so less functional polycystin ``pc`` means lower resting Ca²⁺
  (Yamaguchi et al. 2006: ADPKD cyst cells have lower resting [Ca²⁺]i than normal cells):

  ``dca/dt = k_ca (ca_0 + ca_pc · pc − ca)``

* ``camp``: cAMP, µM. Made by adenylyl cyclase 6, which Ca²⁺ inhibits, stimulated by the
  vasopressin V2 receptor (competitively antagonised by tolvaptan) and by a paracrine cyst
  mitogen (a forskolin-like lipid of cyst fluid, Putnam et al. 2007); broken down by
  Ca²⁺/calmodulin-activated PDE1 and Ca²⁺-independent PDE4 (Wang et al. 2010):

  ``dcamp/dt = v_ac · AC6(ca) · (a_0 + a_v2r · occ + a_mit · m/(K_mit + m))
  − (k_pde1 · ca²/(K_pde1² + ca²) + k_pde4) · camp``

  with ``AC6(ca) = 1 / (1 + ca/K_ac6)`` and V2R occupancy
  ``occ = (avp/K_avp) / (1 + avp/K_avp + tol/K_tol)`` (Gaddum competitive antagonism).
  Low Ca²⁺ therefore raises cAMP twice: less PDE1 activity and less AC6 inhibition
  (Calvet 2008/2015; Torres & Harris 2014).

* ``pka``: active fraction of PKA, relaxing to ``camp^h/(K_pka^h + camp^h)``.

* ``erk``: active fraction of ERK. PKA activates B-Raf → MEK → ERK only when Ca²⁺ is low
  (the phenotypic switch; Yamaguchi et al. 2004, 2006): the gate
  ``G(ca) = 1/(1 + (ca/K_sw)^n_sw)`` is near 0 in normal cells and near 1 in cystic ones:

  ``derk/dt = k_erk (e_0 + (1 − e_0) · pka · G(ca) − erk)``

The phenotype map (CFTR fluid secretion, proliferation) lives in :mod:`.cysts`.

The system is stiff on the year clock (relaxation in seconds to minutes, λ·dt ~ 10⁵-10⁸ for
a step of weeks). Its Jacobian is lower triangular (ca → camp → pka → erk), so a backward
Euler step is solved by Newton in at most four iterations; the engine's
:class:`~biohybrid.intracellular.relaxation.RelaxationStepper` (method ``"implicit-euler"``,
re-exported here) does that vectorised over all cells (L-stable: the fast modes relax to
their quasi-steady state within each macro step, which is exactly what the year clock
needs).

References:
    Yamaguchi, T. et al. (2004). Calcium restriction allows cAMP activation of the
    B-Raf/ERK pathway, switching cells to a cAMP-dependent growth-stimulated phenotype.
    J. Biol. Chem. 279(39):40419-40430.
    Yamaguchi, T., Hempson, S. J., Reif, G. A., Hedge, A. M. & Wallace, D. P. (2006).
    Calcium restores a normal proliferation phenotype in human polycystic kidney disease
    epithelial cells. J. Am. Soc. Nephrol. 17(1):178-187.
    Wang, X., Ward, C. J., Harris, P. C. & Torres, V. E. (2010). Cyclic nucleotide
    signaling in polycystic kidney disease. Kidney Int. 77(2):129-140.
    Calvet, J. P. (2008). Strategies to inhibit cyst formation in ADPKD. Clin. J. Am. Soc.
    Nephrol. 3(4):1205-1211; Calvet, J. P. (2015). The role of calcium and cyclic AMP in
    PKD. In: Polycystic Kidney Disease, Codon Publications, ch. 8.
    Putnam, W. C. et al. (2007). Identification of a forskolin-like molecule in human renal
    cysts. J. Am. Soc. Nephrol. 18(3):934-943.
    Yamamura, Y. et al. (1998). OPC-41061, a highly potent human vasopressin V2-receptor
    antagonist. J. Pharmacol. Exp. Ther. 287(3):860-867.
    Guillou, J. L., Nakata, H. & Cooper, D. M. (1999). Inhibition by calcium of mammalian
    adenylyl cyclases. J. Biol. Chem. 274(50):35539-35545.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.intracellular import OdeSystem, SpeciesIndex

# The engine's backward-Euler stepper, still importable from here (models/adpkd/model.py).
from biohybrid.intracellular.relaxation import RelaxationStepper as RelaxationStepper
from biohybrid.params import Param, ParameterSet

SECONDS_PER_YEAR = 365.25 * 86400.0

#: Lower bound (µM) of Ca²⁺ and cAMP Newton iterates (``OdeSystem.floor``).
NEWTON_FLOOR = 1e-12

_Y06 = "Yamaguchi et al. 2006 JASN 17:178 (lower resting Ca2+ in ADPKD cells, ~100 nM normal)"
_W10 = "Wang et al. 2010 Kidney Int 77:129 (PDE1 Ca/CaM-dependent, PDE4 in renal epithelia)"

SYSTEM_PARAMETERS = {
    "k_ca": Param(
        0.5,
        "1/s",
        "Cytosolic Ca2+ relaxation rate (pumps, buffers)",
        gt=0,
        source="Berridge et al. 2003 Nat Rev Mol Cell Biol 4:517 (seconds)",
    ),
    "ca_0": Param(0.06, "µM", "Resting Ca2+ without functional polycystin", ge=0, source=_Y06),
    "ca_pc": Param(0.04, "µM", "Extra resting Ca2+ at wild-type polycystin", ge=0, source=_Y06),
    "v_ac": Param(
        1.26,
        "µM/s",
        "Maximal AC6 cAMP synthesis",
        ge=0,
        source="scaled so that wild-type resting cAMP ~1 µM (Wang 2010)",
    ),
    "k_ac6": Param(
        0.4,
        "µM",
        "Ca2+ inhibiting AC6 by half",
        gt=0,
        source="Guillou et al. 1999 JBC 274:35539 (AC5/6 IC50 0.2-0.5 µM)",
    ),
    "a_0": Param(
        0.32,
        "1",
        "Receptor-independent AC activity (relative)",
        ge=0,
        source="calibrated: V2R-independent cAMP (TEMPO 3:4 residual growth)",
    ),
    "a_v2r": Param(
        2.38,
        "1",
        "AC activity per unit V2R occupancy (relative)",
        ge=0,
        source="calibrated to TEMPO 3:4 tolvaptan effect (Torres 2012)",
    ),
    "a_mit": Param(
        0.3,
        "1",
        "Maximal AC stimulation by the cyst mitogen (relative)",
        ge=0,
        source="Putnam et al. 2007 JASN 18:934 (forskolin-like cyst lipid)",
    ),
    "k_mit": Param(
        1.0,
        "a.u.",
        "Mitogen giving half-maximal AC stimulation",
        gt=0,
        source="scale of the mitogen field (arbitrary units)",
    ),
    "k_avp": Param(
        5.0,
        "pM",
        "Effective AVP EC50 for V2R-cAMP",
        gt=0,
        source="order of AVP EC50 for collecting-duct cAMP; plasma AVP 1-5 pM",
    ),
    "k_tol": Param(
        0.43,
        "nM",
        "Tolvaptan inhibition constant at human V2R",
        gt=0,
        source="Yamamura et al. 1998 JPET 287:860 (Ki 0.43 nM)",
    ),
    "k_pde1": Param(2.3, "1/s", "Maximal Ca2+/CaM PDE1 cAMP hydrolysis rate", ge=0, source=_W10),
    "K_pde1": Param(0.15, "µM", "Ca2+ half-activating PDE1 (via CaM)", gt=0, source=_W10),
    "k_pde4": Param(0.3, "1/s", "Ca2+-independent PDE4 hydrolysis rate", ge=0, source=_W10),
    "k_pka": Param(
        0.1,
        "1/s",
        "PKA activation relaxation rate",
        gt=0,
        source="seconds-scale PKA holoenzyme dissociation",
    ),
    "K_pka": Param(
        1.0, "µM", "cAMP half-activating PKA", gt=0, source="cellular PKA activation by ~µM cAMP"
    ),
    "h_pka": Param(
        2.0,
        "1",
        "Hill coefficient of PKA activation",
        gt=0,
        source="two cAMP sites per regulatory subunit",
    ),
    "k_erk": Param(
        0.01, "1/s", "ERK activation relaxation rate", gt=0, source="minutes-scale MAPK cascade"
    ),
    "erk_0": Param(
        0.05,
        "1",
        "Basal active ERK fraction",
        ge=0,
        le=1,
        source="Yamaguchi et al. 2004 JBC 279:40419",
    ),
    "K_sw": Param(
        0.07,
        "µM",
        "Ca2+ at which the B-Raf switch is half open",
        gt=0,
        source="Yamaguchi et al. 2004 JBC 279:40419 (Ca restriction < ~100 nM)",
    ),
    "n_sw": Param(
        6.0,
        "1",
        "Steepness of the Ca2+-gated B-Raf switch",
        gt=0,
        source="Yamaguchi et al. 2004/2006 (switch-like phenotype)",
    ),
    "pc": Param(1.0, "1", "Functional polycystin (set per cell by the model)", ge=0),
}

SPECIES = ("ca", "camp", "pka", "erk")


#: Named columns of the state and of the inputs (``s = IDX(y); s["ca"]``).
IDX = SpeciesIndex(SPECIES)
INPUTS = SpeciesIndex(("avp", "tolvaptan", "mitogen"), what="inputs")


def _drives(
    y: NDArray, p: Mapping[str, Any], u: NDArray
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray, NDArray, NDArray]:
    s, i = IDX(y), INPUTS(u)
    ca, camp, pka = s["ca"], s["camp"], s["pka"]
    avp, tol, mit = i["avp"], i["tolvaptan"], i["mitogen"]
    ra, rt = avp / p["k_avp"], tol / p["k_tol"]
    occ = ra / (1.0 + ra + rt)
    stim = p["a_0"] + p["a_v2r"] * occ + p["a_mit"] * mit / (p["k_mit"] + mit)
    ac6 = 1.0 / (1.0 + ca / p["k_ac6"])
    ca2, k2 = ca * ca, p["K_pde1"] ** 2
    pde1 = ca2 / (k2 + ca2)
    hyd = p["k_pde1"] * pde1 + p["k_pde4"]
    cp = np.power(np.clip(camp, 0.0, None), p["h_pka"])
    pka_inf = cp / (p["K_pka"] ** p["h_pka"] + cp)
    gate = 1.0 / (1.0 + np.power(np.clip(ca, 0.0, None) / p["K_sw"], p["n_sw"]))
    return ac6, stim, hyd, pde1, pka_inf, gate, pka


def rhs(t: float, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """Vectorised right-hand side.

    Args:
        t: Time, yr (unused: autonomous).
        y: States ``(ca, camp, pka, erk)``, shape ``(N, 4)``.
        p: Parameters (floats or ``(N,)`` arrays); rates per second.
        u: Inputs ``(avp pM, tolvaptan nM, mitogen a.u.)``, shape ``(N, 3)``.

    Returns:
        ``dy/dt`` per year, shape ``(N, 4)``.
    """
    s = IDX(y)
    ca, camp, erk = s["ca"], s["camp"], s["erk"]
    ac6, stim, hyd, _, pka_inf, gate, pka = _drives(y, p, u)
    out = IDX.empty_like(y)
    out["ca"] = p["k_ca"] * (p["ca_0"] + p["ca_pc"] * p["pc"] - ca)
    out["camp"] = p["v_ac"] * ac6 * stim - hyd * camp
    out["pka"] = p["k_pka"] * (pka_inf - pka)
    e0 = p["erk_0"]
    out["erk"] = p["k_erk"] * (e0 + (1.0 - e0) * pka * gate - erk)
    return out.array * SECONDS_PER_YEAR


def jac(t: float, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """Analytic (lower-triangular) Jacobian per year, shape ``(N, 4, 4)``."""
    s = IDX(y)
    ca, camp = s["ca"], s["camp"]
    ac6, stim, hyd, _, _, gate, pka = _drives(y, p, u)
    n = y.shape[0]
    J = np.zeros((n, 4, 4))
    Jn = IDX.jac(J)
    Jn["ca", "ca"] = -p["k_ca"]
    dac6 = -ac6 * ac6 / p["k_ac6"]
    k2 = p["K_pde1"] ** 2
    dpde1 = 2.0 * ca * k2 / (k2 + ca * ca) ** 2
    Jn["camp", "ca"] = p["v_ac"] * dac6 * stim - p["k_pde1"] * dpde1 * camp
    Jn["camp", "camp"] = -hyd
    h, K = p["h_pka"], p["K_pka"]
    c = np.clip(camp, 1e-30, None)
    ch = np.power(c, h)
    dpka = h * ch / c * K**h / (K**h + ch) ** 2
    Jn["pka", "camp"] = p["k_pka"] * dpka
    Jn["pka", "pka"] = -p["k_pka"]
    e0 = p["erk_0"]
    x = np.power(np.clip(ca, 1e-30, None) / p["K_sw"], p["n_sw"])
    dgate = -p["n_sw"] * x / np.clip(ca, 1e-30, None) * gate * gate
    Jn["erk", "ca"] = p["k_erk"] * (1.0 - e0) * pka * dgate
    Jn["erk", "pka"] = p["k_erk"] * (1.0 - e0) * gate
    Jn["erk", "erk"] = -p["k_erk"]
    return J * SECONDS_PER_YEAR


def make_system() -> OdeSystem:
    """The declared per-cell signalling system."""
    return OdeSystem(
        name="adpkd-ca-camp",
        species=SPECIES,
        params=ParameterSet(SYSTEM_PARAMETERS, title="ADPKD Ca-cAMP-PKA-ERK signalling"),
        rhs=rhs,
        jac=jac,
        initial={"ca": 0.1, "camp": 1.0, "pka": 0.5, "erk": 0.1},
        inputs=INPUTS.names,
        units={"ca": "µM", "camp": "µM", "pka": "1", "erk": "1"},
        # Newton iterates of the backward-Euler stepper stay positive where the rate laws
        # divide by or take powers of Ca²⁺ and cAMP.
        floor={"ca": NEWTON_FLOOR, "camp": NEWTON_FLOOR},
    )


def quasi_steady_state(
    pc: NDArray[np.float64],
    avp: NDArray[np.float64],
    tol: NDArray[np.float64],
    mit: NDArray[np.float64],
    params: Mapping[str, Any],
) -> NDArray[np.float64]:
    """The steady state of the cascade by forward substitution (analytic), shape ``(N, 4)``.

    Used by tests as the analytic reference of the relaxed fast modes.
    """
    p = dict(params)
    ca = p["ca_0"] + p["ca_pc"] * np.asarray(pc, dtype=float)
    y = np.zeros((ca.size, 4))
    s = IDX(y)
    s["ca"] = ca
    u = np.column_stack([avp * np.ones_like(ca), tol * np.ones_like(ca), mit * np.ones_like(ca)])
    ac6, stim, hyd, _, _, gate, _ = _drives(y, p, u)
    s["camp"] = p["v_ac"] * ac6 * stim / hyd
    ac6, stim, hyd, _, pka_inf, gate, _ = _drives(y, p, u)
    s["pka"] = pka_inf
    s["erk"] = p["erk_0"] + (1.0 - p["erk_0"]) * s["pka"] * gate
    return y
