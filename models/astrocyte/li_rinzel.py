"""Per-cell Ca²⁺/IP3 kernels: Li–Rinzel IP3R dynamics with De Pittà IP3 metabolism.

Three species per cell (all concentrations in µM, time in s):

* ``ca``: free cytosolic Ca²⁺ ``C``;
* ``h``: fraction of IP3R subunits not inactivated by Ca²⁺ (Li–Rinzel gate, 1);
* ``ip3``: cytosolic IP3 ``P`` (``I`` in the papers).

.. math::

    dC/dt = v_1 m_∞^3 n_∞^3 h^3 (c_0 - (1+c_1) C) + v_2 (c_0 - (1+c_1) C)
            - v_3 C^2/(C^2 + k_3^2)

    dh/dt = a_2 [Q_2 (1 - h) - C h],  Q_2 = d_2 (P + d_1)/(P + d_3)

    dP/dt = (1 - clamp) [J_β(A) + J_δ(C, P) - J_{3K}(C, P) - r_{5P} P + J_{stim}]

with ``m∞ = P/(P + d1)``, ``n∞ = C/(C + d5)``, the ER Ca²⁺ eliminated through the
conserved total ``c0`` (Li & Rinzel 1994, eqs. 1-3; written as in De Pittà et al. 2009,
eqs. 1-2), and

* ``J_β = v_β A^{n_A}/(A^{n_A} + K_A^{n_A})``: P2Y-receptor-coupled PLCβ driven by the
  local extracellular ATP ``A`` (µM), the agonist-dependent Hill term of De Pittà et al.
  2009 (eq. 4, quasi-static receptor) with ATP as the agonist;
* ``J_δ = v_δ /(1 + P/κ_δ) · C²/(C² + K_δ²)``: Ca²⁺-dependent PLCδ (De Pittà 2009, eq. 5);
* ``J_{3K} = v_{3K} C⁴/(C⁴ + K_D⁴) · P/(P + K_3)``: IP3 3-kinase (De Pittà 2009, eq. 6);
* ``r_{5P} P``: inositol polyphosphate 5-phosphatase (De Pittà 2009, eq. 7);
* ``J_stim``: an imposed IP3 production (the stimulus), per cell.

``clamp`` = 1 freezes IP3 (the clamped single-cell Li–Rinzel scenario).

Gap-junction IP3 exchange between cells is not part of this per-cell system; the model
applies it as a separate implicit graph-Laplacian step (see :mod:`.model`).

References:
    Li Y-X, Rinzel J (1994) Equations for InsP3 receptor-mediated [Ca2+]i oscillations
    derived from a detailed kinetic model: a Hodgkin-Huxley like formalism. J Theor Biol
    166:461-473.
    De Pittà M, Goldberg M, Volman V, Berry H, Ben-Jacob E (2009) Glutamate regulation of
    calcium and IP3 oscillating and pulsating dynamics in astrocytes. J Biol Phys
    35:383-411.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.intracellular import OdeSystem, SpeciesIndex
from biohybrid.intracellular.species import NamedJacobian
from biohybrid.params import Param, ParameterSet

LR94 = "Li & Rinzel 1994 J Theor Biol 166:461"
DP09 = "De Pittà et al. 2009 J Biol Phys 35:383, Table 1 (AM-encoding set)"

#: Names of the Li & Rinzel (1994) IP3R-module parameters.
LI_RINZEL_NAMES = ("c0", "c1", "v1", "v2", "v3", "k3", "d1", "d2", "d3", "d5", "a2")

#: Parameters of the per-cell rate laws (names follow the papers).
SYSTEM_PARAMETERS: dict[str, Param] = {
    # --- Li & Rinzel (1994) Ca²⁺/IP3R module
    "c0": Param(2.0, "µM", "Total free Ca²⁺ per cytosolic volume", gt=0, source=LR94),
    "c1": Param(0.185, "1", "ER/cytosol volume ratio", gt=0, source=LR94),
    "v1": Param(6.0, "1/s", "Maximal IP3R (CICR) flux rate", ge=0, source=LR94),
    "v2": Param(0.11, "1/s", "ER Ca²⁺ leak rate", ge=0, source=LR94),
    "v3": Param(0.9, "µM/s", "Maximal SERCA pump rate", ge=0, source=LR94),
    "k3": Param(0.1, "µM", "SERCA Ca²⁺ affinity", gt=0, source=LR94),
    "d1": Param(0.13, "µM", "IP3 dissociation constant (IP3R)", gt=0, source=LR94),
    "d2": Param(1.049, "µM", "Ca²⁺ inactivation dissociation constant", gt=0, source=LR94),
    "d3": Param(0.9434, "µM", "IP3 dissociation constant (inactivation)", gt=0, source=LR94),
    "d5": Param(0.08234, "µM", "Ca²⁺ activation dissociation constant", gt=0, source=LR94),
    "a2": Param(0.2, "1/(µM·s)", "IP3R inactivation binding rate", gt=0, source=LR94),
    # --- IP3 metabolism, De Pittà et al. (2009)
    "v_beta": Param(
        3.2,
        "µM/s",
        "Maximal P2Y/PLCβ IP3 production (agonist-dependent term, ATP as agonist)",
        ge=0,
        source="O_β = 3.2 µM/s of De Pittà's G-ChI astrocyte as used by Stimberg et al. 2017"
        " Front Neuroinform 11 (De Pittà 2009 eq. 4 form)",
    ),
    "k_atp": Param(
        2.0,
        "µM",
        "ATP giving half-maximal P2Y/PLCβ activation (P2Y1/P2Y2 EC50 ~ 0.1-10 µM)",
        gt=0,
        source="Bennett et al. 2005 Biophys J 89:2235 (P2Y EC50 range)",
    ),
    "n_atp": Param(
        2.0,
        "1",
        "Hill coefficient of P2Y/PLCβ activation (cooperative: no ATP feedback at rest)",
        gt=0,
        source="calibrated (De Pittà 2009 eq. 4 uses 0.7 for glutamate/mGluR), see README",
    ),
    "v_delta": Param(0.02, "µM/s", "Maximal PLCδ rate", ge=0, source=DP09),
    "kappa_delta": Param(1.5, "µM", "PLCδ inhibition constant by IP3", gt=0, source=DP09),
    "k_plcd": Param(0.1, "µM", "PLCδ Ca²⁺ affinity", gt=0, source=DP09),
    "v_3k": Param(2.0, "µM/s", "Maximal IP3-3K rate", ge=0, source=DP09),
    "k_d": Param(0.7, "µM", "IP3-3K Ca²⁺/CaM affinity", gt=0, source=DP09),
    "k_3": Param(1.0, "µM", "IP3-3K IP3 affinity", gt=0, source=DP09),
    "r_5p": Param(0.04, "1/s", "IP-5P (5-phosphatase) degradation rate", ge=0, source=DP09),
}

#: Per-cell entries the model supplies at run time (not user parameters).
RUNTIME_PARAMETERS: dict[str, Param] = {
    "clamp": Param(0.0, "1", "1 freezes IP3 (clamped Li–Rinzel cell), 0 lets it evolve"),
    "j_stim": Param(0.0, "µM/s", "Imposed IP3 production (the stimulus)", ge=0),
}


#: Named state columns of the full system and of the two-variable (IP3-clamped) one.
IDX = SpeciesIndex(("ca", "h", "ip3"))
IDX_CA_H = SpeciesIndex(("ca", "h"))
ATP = SpeciesIndex(("atp",), what="inputs")

#: The two-variable Li–Rinzel (1994) model: the IP3R module with IP3 a (per-cell) parameter.
LI_RINZEL_PARAMETERS: dict[str, Param] = {
    **{name: SYSTEM_PARAMETERS[name] for name in LI_RINZEL_NAMES},
    "ip3": Param(0.4, "µM", "Cytosolic IP3 (per cell)", ge=0),
}


# ----------------------------------------------------------------------------- kernels
def _ca_h_rates(C: NDArray, h: NDArray, P: Any, p: Mapping[str, Any]) -> tuple[NDArray, NDArray]:
    """Li–Rinzel IP3R module: ``(dC/dt, dh/dt)`` at Ca²⁺ ``C``, gate ``h`` and IP3 ``P``."""
    E = p["c0"] - (1.0 + p["c1"]) * C
    m = P / (P + p["d1"])
    n = C / (C + p["d5"])
    C2 = C * C
    dC = p["v1"] * (m * n * h) ** 3 * E + p["v2"] * E - p["v3"] * C2 / (C2 + p["k3"] ** 2)
    Q2 = p["d2"] * (P + p["d1"]) / (P + p["d3"])
    dh = p["a2"] * (Q2 * (1.0 - h) - C * h)
    return dC, dh


def _ca_h_jac(J: NamedJacobian, C: NDArray, h: NDArray, P: Any, p: Mapping[str, Any]) -> None:
    """Write the IP3R module's partial derivatives into ``J`` (and those by IP3 if present)."""
    c1p = 1.0 + p["c1"]
    E = p["c0"] - c1p * C
    d1, d5 = p["d1"], p["d5"]
    m = P / (P + d1)
    n = C / (C + d5)
    dn = d5 / (C + d5) ** 2
    k32 = p["k3"] ** 2
    C2 = C * C
    g = p["v1"] * m**3 * h**3
    J["ca", "ca"] = g * (3.0 * n**2 * dn * E - c1p * n**3) - p["v2"] * c1p
    J["ca", "ca"] -= p["v3"] * 2.0 * C * k32 / (C2 + k32) ** 2
    J["ca", "h"] = 3.0 * p["v1"] * m**3 * n**3 * h**2 * E
    Q2 = p["d2"] * (P + d1) / (P + p["d3"])
    J["h", "ca"] = -p["a2"] * h
    J["h", "h"] = -p["a2"] * (Q2 + C)
    if "ip3" in J.index:
        dm = d1 / (P + d1) ** 2
        J["ca", "ip3"] = 3.0 * p["v1"] * m**2 * dm * n**3 * h**3 * E
        dQ2 = p["d2"] * (p["d3"] - d1) / (P + p["d3"]) ** 2
        J["h", "ip3"] = p["a2"] * (1.0 - h) * dQ2


def _parts(y: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    s = IDX(y)
    C = np.maximum(s["ca"], 0.0)
    h = s["h"]
    P = np.maximum(s["ip3"], 0.0)
    return C, h, P


def rhs(t: float, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """Vectorised right-hand side.

    Args:
        t: Time, s (unused: autonomous; the stimulus enters through ``p["j_stim"]``).
        y: States ``(ca, h, ip3)``, shape ``(N, 3)``, µM, 1, µM.
        p: Parameters (floats or ``(N,)`` arrays), see :data:`SYSTEM_PARAMETERS`.
        u: Local extracellular ATP, µM, shape ``(N, 1)`` (or ``(N, 0)``: no ATP).

    Returns:
        ``dy/dt``, shape ``(N, 3)``, per second.
    """
    C, h, P = _parts(y)
    A = np.maximum(ATP(u)["atp"], 0.0) if u.shape[1] else np.zeros(y.shape[0])
    out = IDX.empty_like(y)
    out["ca"], out["h"] = _ca_h_rates(C, h, P, p)
    C2 = C * C
    An = A ** p["n_atp"]
    j_beta = p["v_beta"] * An / (An + p["k_atp"] ** p["n_atp"])
    j_delta = p["v_delta"] / (1.0 + P / p["kappa_delta"]) * C2 / (C2 + p["k_plcd"] ** 2)
    C4 = C2 * C2
    j_3k = p["v_3k"] * C4 / (C4 + p["k_d"] ** 4) * P / (P + p["k_3"])
    out["ip3"] = (1.0 - p["clamp"]) * (j_beta + j_delta - j_3k - p["r_5p"] * P + p["j_stim"])
    return out.array


def jac(t: float, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """Analytic Jacobian ``J[n, i, j] = ∂f_i/∂y_j``, shape ``(N, 3, 3)``."""
    C, h, P = _parts(y)
    N = y.shape[0]
    J = np.zeros((N, 3, 3))
    Jn = IDX.jac(J)
    _ca_h_jac(Jn, C, h, P, p)
    C2 = C * C
    free = 1.0 - p["clamp"]
    kd2 = p["k_plcd"] ** 2
    kap = p["kappa_delta"]
    hill2 = C2 / (C2 + kd2)
    dhill2 = 2.0 * C * kd2 / (C2 + kd2) ** 2
    C4 = C2 * C2
    kd4 = p["k_d"] ** 4
    hill4 = C4 / (C4 + kd4)
    dhill4 = 4.0 * C**3 * kd4 / (C4 + kd4) ** 2
    K3 = p["k_3"]
    Jn["ip3", "ca"] = free * (
        p["v_delta"] / (1.0 + P / kap) * dhill2 - p["v_3k"] * dhill4 * P / (P + K3)
    )
    Jn["ip3", "ip3"] = free * (
        -p["v_delta"] / kap / (1.0 + P / kap) ** 2 * hill2
        - p["v_3k"] * hill4 * K3 / (P + K3) ** 2
        - p["r_5p"]
    )
    return J


def li_rinzel_rhs(t: Any, y: NDArray, p: Mapping[str, Any], u: NDArray | None = None) -> NDArray:
    """The two-variable Li–Rinzel (1994) model: state ``(ca, h)``, IP3 the parameter ``ip3``.

    The same IP3R kernel as :func:`rhs` (``ca`` floored at 0 the same way), with IP3 held
    at ``p["ip3"]`` (a float or an ``(N,)`` array) instead of evolving.

    Args:
        t: Time, s (unused: autonomous).
        y: States ``(ca [µM], h [1])``, shape ``(N, 2)``.
        p: Parameters of :data:`LI_RINZEL_PARAMETERS`.
        u: Unused external inputs, shape ``(N, 0)``.

    Returns:
        ``dy/dt``, shape ``(N, 2)``, per second.

    References:
        Li & Rinzel (1994), Eqs. (1)-(4) and Table 1.
    """
    s = IDX_CA_H(y)
    out = IDX_CA_H.empty_like(y)
    out["ca"], out["h"] = _ca_h_rates(np.maximum(s["ca"], 0.0), s["h"], p["ip3"], p)
    return out.array


def li_rinzel_jac(t: Any, y: NDArray, p: Mapping[str, Any], u: NDArray | None = None) -> NDArray:
    """Analytic Jacobian of :func:`li_rinzel_rhs`, shape ``(N, 2, 2)``."""
    s = IDX_CA_H(y)
    J = np.zeros((y.shape[0], 2, 2))
    _ca_h_jac(IDX_CA_H.jac(J), np.maximum(s["ca"], 0.0), s["h"], p["ip3"], p)
    return J


def li_rinzel_system() -> OdeSystem:
    """The two-variable Li–Rinzel (1994) model as an :class:`OdeSystem` (state ``(ca, h)``)."""
    return OdeSystem(
        name="li-rinzel",
        species=IDX_CA_H.names,
        params=ParameterSet(LI_RINZEL_PARAMETERS, title="Li-Rinzel Ca2+ model"),
        rhs=li_rinzel_rhs,
        jac=li_rinzel_jac,
        initial={"ca": 0.1, "h": 0.7},
        units={"ca": "µM", "h": "1"},
        autonomous=True,
    )


def make_system(with_atp: bool = True) -> OdeSystem:
    """The declared per-cell Ca²⁺/h/IP3 system.

    Args:
        with_atp: Read the local extracellular ATP (µM) as input ``"atp"``; ``False`` for
            a cell without a tissue field (the clamped Li–Rinzel scenario).

    Returns:
        The system, species ``("ca", "h", "ip3")``.
    """
    return OdeSystem(
        name="li-rinzel-ip3",
        species=IDX.names,
        params=ParameterSet(
            {**SYSTEM_PARAMETERS, **RUNTIME_PARAMETERS}, title="Li–Rinzel/IP3 system"
        ),
        rhs=rhs,
        jac=jac,
        initial={"ca": 0.05, "h": 0.8, "ip3": 0.1},
        inputs=ATP.names if with_atp else (),
        units={"ca": "µM", "h": "1", "ip3": "µM"},
        autonomous=True,
    )
