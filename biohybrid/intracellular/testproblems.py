"""Reference problems for validating and benchmarking the batched stiff integrator.

All right-hand sides are vectorised over cells: ``y`` has shape ``(N, k)`` and per-cell
parameters are floats or arrays of shape ``(N,)``.

Only generic numerical test problems live here. The biological Li–Rinzel (1994) cell used by
the integrator's tests and benchmarks is owned by the astrocyte model
(:mod:`biohybrid.models.astrocyte.li_rinzel`: ``li_rinzel_rhs``, ``li_rinzel_system``); the
engine does not depend on bundled models.

References:
    F. Mazzia and C. Magherini, *Test Set for Initial Value Problem Solvers*, release 2.4,
    University of Bari (2008), problems ROBER and HIRES.
    H. H. Robertson, "The solution of a set of reaction rate equations", in *Numerical
    Analysis: An Introduction*, Academic Press (1966) 178-182.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

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
