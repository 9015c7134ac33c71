"""The demo cell's intracellular system: fast receptor binding driving a slow response.

Two species per cell:

* ``r``: fraction of receptors bound by the extracellular signal (dimensionless), fast;
* ``x``: a slow downstream response (dimensionless, 0..~1).

.. math::

    dr/dt = k_{on} c (1 - r) - k_{off} r

    dx/dt = k_{act} r^2 / (K^2 + r^2) - k_{deg} x

with ``c`` the local signal concentration (µM) sampled from the tissue field. With the
defaults, receptor binding relaxes in about a second while the response evolves over tens
of minutes, a stiffness ratio of ~10³ that the implicit integrator steps over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.intracellular import OdeSystem, SpeciesIndex
from biohybrid.params import Param, ParameterSet

#: Named state and input columns (``s = IDX(y); s["r"]``).
IDX = SpeciesIndex(("r", "x"))
INPUTS = SpeciesIndex(("signal",), what="inputs")

SYSTEM_PARAMETERS = {
    "k_on": Param(100.0, "1/(µM·min)", "Receptor binding rate constant", ge=0),
    "k_off": Param(60.0, "1/min", "Receptor unbinding rate", gt=0),
    "k_act": Param(0.08, "1/min", "Maximal response activation rate", ge=0),
    "k_half": Param(0.3, "1", "Bound fraction giving half-maximal activation", gt=0),
    "k_deg": Param(0.04, "1/min", "Response decay rate", gt=0),
}


def rhs(t: float, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """Vectorised right-hand side.

    Args:
        t: Time, min (unused: autonomous).
        y: States ``(r, x)``, shape ``(N, 2)``.
        p: Parameters (floats or ``(N,)`` arrays).
        u: Local signal concentration, µM, shape ``(N, 1)``.

    Returns:
        ``dy/dt``, shape ``(N, 2)``, per minute.
    """
    s = IDX(y)
    r, x = s["r"], s["x"]
    c = INPUTS(u)["signal"]
    r2 = r * r
    out = IDX.empty_like(y)
    out["r"] = p["k_on"] * c * (1.0 - r) - p["k_off"] * r
    out["x"] = p["k_act"] * r2 / (p["k_half"] ** 2 + r2) - p["k_deg"] * x
    return out.array


def jac(t: float, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """Analytic Jacobian, shape ``(N, 2, 2)``."""
    r = IDX(y)["r"]
    c = INPUTS(u)["signal"]
    k2 = p["k_half"] ** 2
    J = np.zeros((y.shape[0], 2, 2))
    Jn = IDX.jac(J)
    Jn["r", "r"] = -p["k_on"] * c - p["k_off"]
    Jn["x", "r"] = p["k_act"] * 2.0 * r * k2 / (k2 + r * r) ** 2
    Jn["x", "x"] = -p["k_deg"]
    return J


def make_system() -> OdeSystem:
    """The declared demo system."""
    return OdeSystem(
        name="receptor-response",
        species=IDX.names,
        params=ParameterSet(SYSTEM_PARAMETERS, title="demo receptor system"),
        rhs=rhs,
        jac=jac,
        initial={"r": 0.0, "x": 0.0},
        inputs=INPUTS.names,
        units={"r": "1", "x": "1"},
        autonomous=True,
    )
