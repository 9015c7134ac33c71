"""Validation of the Li–Rinzel (1994) cell: Jacobian, IP3 window of oscillation, period, amplitude.

Sources:
    Li Y-X, Rinzel J (1994) J Theor Biol 166:461-473 (model and parameter set).
    De Pittà M et al. (2009) J Biol Phys 35:383-411 (same module; Ca²⁺ oscillates for IP3
    between the two Hopf bifurcations at ≈ 0.355 and ≈ 0.637 µM with the 1994 parameters).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import biohybrid
from biohybrid.models.astrocyte.li_rinzel import (
    RUNTIME_PARAMETERS,
    SYSTEM_PARAMETERS,
    jac,
    rhs,
)
from biohybrid.models.astrocyte.readout import oscillation_statistics

P = {k: v.default for k, v in {**SYSTEM_PARAMETERS, **RUNTIME_PARAMETERS}.items()}


def test_published_1994_parameter_set():
    # Li & Rinzel 1994, Table/figure legends: the parameter set quoted in issue 5.
    expected = {
        "c0": 2.0, "c1": 0.185, "v1": 6.0, "v2": 0.11, "v3": 0.9, "k3": 0.1,
        "d1": 0.13, "d2": 1.049, "d3": 0.9434, "d5": 0.08234, "a2": 0.2,
    }  # fmt: skip
    for name, value in expected.items():
        assert SYSTEM_PARAMETERS[name].default == value
        assert "Li & Rinzel 1994" in SYSTEM_PARAMETERS[name].source


def test_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    y = rng.uniform(0.05, 1.0, (6, 3))
    u = rng.uniform(0.0, 3.0, (6, 1))
    J = jac(0.0, y, P, u)
    eps = 1e-7
    for j in range(3):
        yp, ym = y.copy(), y.copy()
        yp[:, j] += eps
        ym[:, j] -= eps
        fd = (rhs(0.0, yp, P, u) - rhs(0.0, ym, P, u)) / (2 * eps)
        np.testing.assert_allclose(J[:, :, j], fd, rtol=1e-5, atol=1e-7)


def _clamped_amplitudes(ip3: np.ndarray, t_end: float = 800.0) -> tuple[np.ndarray, np.ndarray]:
    """Peak-to-trough Ca²⁺ over the two halves of [t_end - 300, t_end] for each clamped IP3."""
    n = ip3.size
    p = dict(P, clamp=1.0)

    def f(t, z):
        y = np.column_stack([z[:n], z[n:], ip3])
        d = rhs(t, y, p, np.zeros((n, 0)))
        return np.concatenate([d[:, 0], d[:, 1]])

    t_eval = np.arange(t_end - 300.0, t_end, 0.05)
    sol = solve_ivp(
        f, (0.0, t_end), np.r_[np.full(n, 0.1), np.full(n, 0.7)], method="LSODA",
        rtol=1e-8, atol=1e-10, t_eval=t_eval,
    )  # fmt: skip
    c = sol.y[:n]
    half = t_eval.size // 2
    return np.ptp(c[:, :half], axis=1), np.ptp(c[:, half:], axis=1)


def test_ip3_window_of_oscillation():
    # Sustained oscillation = a non-decaying peak-to-trough amplitude > 0.01 µM.
    ip3 = np.round(np.arange(0.330, 0.6701, 0.005), 4)
    a1, a2 = _clamped_amplitudes(ip3)
    sustained = (a2 > 0.01) & (np.abs(a2 - a1) < 0.05 * a2 + 1e-4)
    window = ip3[sustained]
    # one contiguous window
    assert np.all(np.diff(np.flatnonzero(sustained)) == 1)
    # Hopf points ≈ 0.355 and ≈ 0.637 µM (Li & Rinzel 1994; De Pittà et al. 2009 Fig. 2)
    assert window.min() == pytest.approx(0.355, abs=0.006)
    assert window.max() == pytest.approx(0.637, abs=0.006)
    assert not sustained[ip3 < 0.345].any()
    assert not sustained[ip3 > 0.645].any()


@pytest.fixture(scope="module")
def lr_reference():
    """High-accuracy reference of the published equations at IP3 = 0.5 µM (LSODA)."""
    p = dict(P, clamp=1.0)

    def f(t, z):
        return rhs(t, np.array([[z[0], z[1], 0.5]]), p, np.zeros((1, 0)))[0, :2]

    t = np.arange(0.0, 200.0 + 1e-9, 0.1)
    sol = solve_ivp(f, (0, 200), [0.1, 0.7], method="LSODA", rtol=1e-10, atol=1e-12, t_eval=t)
    return oscillation_statistics(t, sol.y[0], t_from=100.0)


def test_li_rinzel_scenario_period_and_amplitude(lr_reference):
    res = biohybrid.run("li-rinzel", write=False)
    assert res.ok, res.message
    df = res.biomarkers
    assert "ca_mean" in df.columns
    assert res.units["ca_mean"] == "µM"
    s = res.summary
    # Reference values of the 1994 equations at IP3 = 0.5 µM (computed in the fixture):
    # period ≈ 11.5 s, Ca²⁺ between ≈ 0.11 and ≈ 0.44 µM (oscillations of order 10 s and
    # a few tenths of µM: Li & Rinzel 1994 Fig. 3).
    assert lr_reference["period"] == pytest.approx(11.49, abs=0.05)
    assert lr_reference["amplitude"] == pytest.approx(0.337, abs=0.005)
    assert s["ca_period_s"] == pytest.approx(lr_reference["period"], rel=0.01)
    assert s["ca_amplitude_uM"] == pytest.approx(lr_reference["amplitude"], rel=0.02)


def test_li_rinzel_outside_window_is_steady():
    # IP3 = 0.2 µM is below the lower Hopf point: Ca²⁺ settles (Li & Rinzel 1994).
    res = biohybrid.run(
        "li-rinzel", overrides={"ip3": 0.2, "t_end": 150.0, "dt_output": 0.5}, write=False
    )
    assert res.ok
    df = res.biomarkers
    assert len(df) == 301  # --set t_end and dt_output are honoured
    late = df["ca_mean"][df.index >= 100.0]
    assert np.ptp(late) < 1e-3
