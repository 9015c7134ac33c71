"""Reference problems for validating and benchmarking the batched stiff integrator.

All right-hand sides are vectorised over cells: ``y`` has shape ``(N, k)`` and per-cell
parameters are floats or arrays of shape ``(N,)``.

References:
    Y.-X. Li and J. Rinzel, "Equations for InsP3 receptor-mediated [Ca2+]i oscillations
    derived from a detailed kinetic model: a Hodgkin-Huxley like formalism",
    *J. Theor. Biol.* 166 (1994) 461-473.
    F. Mazzia and C. Magherini, *Test Set for Initial Value Problem Solvers*, release 2.4,
    University of Bari (2008), problems ROBER and HIRES.
    H. H. Robertson, "The solution of a set of reaction rate equations", in *Numerical
    Analysis: An Introduction*, Academic Press (1966) 178-182.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.intracellular.system import OdeSystem
from biohybrid.params import Param, ParameterSet

Array = NDArray[np.float64]

# ----------------------------------------------------------------------------- Li-Rinzel
LI_RINZEL_PARAMETERS = {
    "c0": Param(2.0, "µM", "Total free Ca2+ per cytosolic volume", gt=0, source="Li & Rinzel 1994"),
    "c1": Param(0.185, "1", "ER/cytosol volume ratio", gt=0, source="Li & Rinzel 1994"),
    "v1": Param(6.0, "1/s", "Maximal IP3R channel flux rate", ge=0, source="Li & Rinzel 1994"),
    "v2": Param(0.11, "1/s", "ER leak rate", ge=0, source="Li & Rinzel 1994"),
    "v3": Param(0.9, "µM/s", "Maximal SERCA pump rate", ge=0, source="Li & Rinzel 1994"),
    "k3": Param(0.1, "µM", "SERCA half-activation Ca2+", gt=0, source="Li & Rinzel 1994"),
    "d1": Param(0.13, "µM", "IP3 dissociation constant", gt=0, source="Li & Rinzel 1994"),
    "d2": Param(1.049, "µM", "Ca2+ inactivation dissociation constant", gt=0,
                source="Li & Rinzel 1994"),
    "d3": Param(0.9434, "µM", "IP3 dissociation constant", gt=0, source="Li & Rinzel 1994"),
    "d5": Param(0.08234, "µM", "Ca2+ activation dissociation constant", gt=0,
                source="Li & Rinzel 1994"),
    "a2": Param(0.2, "1/(µM·s)", "Ca2+ inactivation binding rate", gt=0,
                source="Li & Rinzel 1994"),
    "ip3": Param(0.4, "µM", "Cytosolic IP3 (per cell)", ge=0),
}  # fmt: skip


def li_rinzel_rhs(t: Any, y: Array, p: Mapping[str, Any], u: Array | None = None) -> Array:
    """Li-Rinzel (1994) two-variable IP3-receptor Ca2+ model, vectorised.

    ``dCa/dt = (v1 m∞³ n∞³ h³ + v2)(c0 - (1 + c1) Ca) - v3 Ca²/(k3² + Ca²)`` and
    ``dh/dt = a2 (Q2 (1 - h) - Ca h)`` with ``m∞ = IP3/(IP3 + d1)``,
    ``n∞ = Ca/(Ca + d5)`` and ``Q2 = d2 (IP3 + d1)/(IP3 + d3)``.

    Args:
        t: Time, s (unused: autonomous).
        y: States ``(Ca [µM], h [1])``, shape ``(N, 2)``.
        p: Parameters of :data:`LI_RINZEL_PARAMETERS`; ``ip3`` may be an ``(N,)`` array.
        u: Unused external inputs, shape ``(N, 0)``.

    Returns:
        ``dy/dt``, shape ``(N, 2)``, per second.

    References:
        Li & Rinzel (1994), Eqs. (1)-(4) and Table 1.
    """
    ca, h = y[:, 0], y[:, 1]
    ip3 = p["ip3"]
    c1, d5, k3 = p["c1"], p["d5"], p["k3"]
    m_inf = ip3 / (ip3 + p["d1"])
    n_inf = ca / (ca + d5)
    mnh = m_inf * n_inf * h
    ca2 = ca * ca
    grad = p["c0"] - (1.0 + c1) * ca
    out = np.empty_like(y)
    out[:, 0] = (p["v1"] * mnh * mnh * mnh + p["v2"]) * grad - p["v3"] * ca2 / (k3 * k3 + ca2)
    q2 = p["d2"] * (ip3 + p["d1"]) / (ip3 + p["d3"])
    out[:, 1] = p["a2"] * (q2 * (1.0 - h) - ca * h)
    return out


def li_rinzel_jac(t: Any, y: Array, p: Mapping[str, Any], u: Array | None = None) -> Array:
    """Analytic Jacobian of :func:`li_rinzel_rhs`, shape ``(N, 2, 2)``."""
    ca, h = y[:, 0], y[:, 1]
    ip3 = p["ip3"]
    c1, d5, k3, v1 = p["c1"], p["d5"], p["k3"], p["v1"]
    m_inf = ip3 / (ip3 + p["d1"])
    m3 = m_inf * m_inf * m_inf
    n_inf = ca / (ca + d5)
    dn = d5 / ((ca + d5) * (ca + d5))
    grad = p["c0"] - (1.0 + c1) * ca
    h2 = h * h
    n2 = n_inf * n_inf
    k32 = k3 * k3
    ca2 = ca * ca
    J = np.empty((y.shape[0], 2, 2))
    J[:, 0, 0] = (
        v1 * m3 * h2 * h * (3.0 * n2 * dn * grad - (1.0 + c1) * n2 * n_inf)
        - p["v2"] * (1.0 + c1)
        - p["v3"] * 2.0 * ca * k32 / ((k32 + ca2) * (k32 + ca2))
    )
    J[:, 0, 1] = 3.0 * v1 * m3 * n2 * n_inf * h2 * grad
    q2 = p["d2"] * (ip3 + p["d1"]) / (ip3 + p["d3"])
    J[:, 1, 0] = -p["a2"] * h
    J[:, 1, 1] = -p["a2"] * (q2 + ca)
    return J


def li_rinzel_system() -> OdeSystem:
    """The Li-Rinzel model as a declared :class:`OdeSystem` (state ``(ca, h)``)."""
    return OdeSystem(
        name="li-rinzel",
        species=("ca", "h"),
        params=ParameterSet(LI_RINZEL_PARAMETERS, title="Li-Rinzel Ca2+ model"),
        rhs=li_rinzel_rhs,
        jac=li_rinzel_jac,
        initial={"ca": 0.1, "h": 0.7},
        units={"ca": "µM", "h": "1"},
        autonomous=True,
    )


# ----------------------------------------------------------------------------- Robertson
#: ROBER reference solution at t = 1e11 (Mazzia & Magherini 2008, problem ROBER).
ROBERTSON_T_END = 1e11
ROBERTSON_REF = np.array([0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050])


def robertson_rhs(t: Any, y: Array, k1: Any = 0.04, k2: Any = 3e7, k3: Any = 1e4) -> Array:
    """Robertson's chemical kinetics, vectorised; rate constants may be ``(N,)`` arrays.

    Args:
        t: Time (unused).
        y: States, shape ``(N, 3)``.
        k1: Rate of A -> B.
        k2: Rate of 2B -> B + C.
        k3: Rate of B + C -> A + C.

    Returns:
        ``dy/dt``, shape ``(N, 3)``.
    """
    a, b, c = y[:, 0], y[:, 1], y[:, 2]
    r1 = k1 * a
    r2 = k2 * b * b
    r3 = k3 * b * c
    out = np.empty_like(y)
    out[:, 0] = -r1 + r3
    out[:, 1] = r1 - r2 - r3
    out[:, 2] = r2
    return out


def robertson_jac(t: Any, y: Array, k1: Any = 0.04, k2: Any = 3e7, k3: Any = 1e4) -> Array:
    """Analytic Jacobian of :func:`robertson_rhs`, shape ``(N, 3, 3)``."""
    b, c = y[:, 1], y[:, 2]
    J = np.zeros((y.shape[0], 3, 3))
    J[:, 0, 0] = -k1
    J[:, 0, 1] = k3 * c
    J[:, 0, 2] = k3 * b
    J[:, 1, 0] = k1
    J[:, 1, 1] = -2.0 * k2 * b - k3 * c
    J[:, 1, 2] = -k3 * b
    J[:, 2, 1] = 2.0 * k2 * b
    return J


# ----------------------------------------------------------------------------- HIRES
#: HIRES reference solution at t = 321.8122 (Mazzia & Magherini 2008, problem HIRES).
HIRES_T_END = 321.8122
HIRES_Y0 = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057])
HIRES_REF = np.array([
    0.7371312573325668e-3, 0.1442485726316185e-3, 0.5888729740967575e-4, 0.1175651343283149e-2,
    0.2386356198831331e-2, 0.6238968252742796e-2, 0.2849998395185769e-2, 0.2850001604814231e-2,
])  # fmt: skip


def hires_rhs(t: Any, y: Array) -> Array:
    """HIRES (plant photomorphogenesis) problem, 8 species, vectorised; shape ``(N, 8)``."""
    y1, y2, y3, y4, y5, y6, y7, y8 = (y[:, i] for i in range(8))
    out = np.empty_like(y)
    out[:, 0] = -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007
    out[:, 1] = 1.71 * y1 - 8.75 * y2
    out[:, 2] = -10.03 * y3 + 0.43 * y4 + 0.035 * y5
    out[:, 3] = 8.32 * y2 + 1.71 * y3 - 1.12 * y4
    out[:, 4] = -1.745 * y5 + 0.43 * y6 + 0.43 * y7
    out[:, 5] = -280.0 * y6 * y8 + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7
    out[:, 6] = 280.0 * y6 * y8 - 1.81 * y7
    out[:, 7] = -280.0 * y6 * y8 + 1.81 * y7
    return out
