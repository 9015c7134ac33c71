"""Coarse projective integration (biohybrid.projective) against analytic solutions.

References:
    Gear, C. W. & Kevrekidis, I. G. (2003). Projective methods for stiff differential
    equations. SIAM J. Sci. Comput. 24(4):1091-1106 (the stiff linear test problem with a
    gap between fast and slow eigenvalues).
    Lee, S. L. & Gear, C. W. (2007). Second-order accurate projective integrators for
    multiscale problems. J. Comput. Appl. Math. 201(1):258-274.
"""

from __future__ import annotations

import numpy as np
import pytest

from biohybrid.errors import UserError
from biohybrid.projective import CoarseProjectiveIntegrator, fit_slopes, projective_solve

LAM_SLOW, LAM_FAST = 0.1, 1000.0  # eigenvalues with a gap (Gear & Kevrekidis 2003)


def _micro(y: np.ndarray, dt: float) -> np.ndarray:
    """Backward Euler on x' = -λs x, z' = -λf (z - x): exact linear solve."""
    x = y[0] / (1 + LAM_SLOW * dt)
    z = (y[1] + LAM_FAST * dt * x) / (1 + LAM_FAST * dt)
    return np.array([x, z])


def test_fit_slopes_exact_line_and_late_columns() -> None:
    t = np.linspace(0.0, 1.0, 5)
    x = np.column_stack([2.0 + 3.0 * t, -1.0 * t, np.r_[np.nan, np.nan, 1.0, 2.0, 3.0]])
    value, slope, t_mid = fit_slopes(t, x)
    np.testing.assert_allclose(slope, [3.0, -1.0, 4.0], atol=1e-12)
    np.testing.assert_allclose(value, [5.0, -1.0, 3.0], atol=1e-12)
    assert t_mid[0] == pytest.approx(0.5) and t_mid[2] == pytest.approx(0.75)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_stiff_linear_slow_mode_matches_exact(order: int) -> None:
    """The slow mode e^{-λs t} is followed across projections; errors fall with order."""
    y, stats = projective_solve(
        _micro,
        lambda y: y[:1],
        lambda x, y: np.array([x[0], x[0]]),  # lift: the fast variable is slaved
        np.array([1.0, 0.0]),
        dt_micro=0.01,
        n_burst=5,
        delta=0.95,
        t_end=20.0,
        order=order,
    )
    exact = np.exp(-LAM_SLOW * 20.0)
    err = abs(y[0] / exact - 1)
    # micro-step (backward Euler, dt=0.01) error alone is ~1e-3 over 20 time units
    # projective forward Euler: global error ~ λs Δ/2 · λs T = 0.1 (Gear & Kevrekidis 2003)
    assert err < {1: 0.15, 2: 5e-3, 3: 5e-3}[order]
    assert stats.projected_time > 10 * stats.simulated_time


def test_order_improves_accuracy_on_time_dependent_rate() -> None:
    """x' = g(t) x with g decaying exponentially: exact log x = ∫g; order 3 < order 2 < 1."""

    def g(t: float) -> float:
        return 0.1 + 2.0 * np.exp(-t / 5.0)

    errors = []
    for order in (1, 2, 3):
        state = {"t": 0.0, "x": 1.0}

        def micro(state: dict = state) -> float:
            t0, t1 = state["t"], state["t"] + 0.01
            state["x"] *= np.exp(0.1 * 0.01 + 10.0 * (np.exp(-t0 / 5) - np.exp(-t1 / 5)))
            state["t"] = t1
            return t1

        def lift(x: np.ndarray, d: float, state: dict = state) -> None:
            state["x"], state["t"] = float(x[0]), state["t"] + d

        integ = CoarseProjectiveIntegrator(
            micro,
            lambda state=state: np.array([state["x"]]),
            lift,
            n_burst=10,
            log=True,
            order=order,
        )
        integ.step(0.0, 0.0, n_burst=100)  # start-up interval simulated in full
        while state["t"] < 20.0 - 1e-9:
            integ.step(state["t"], 0.9)
        exact = 0.1 * 20.0 + 10.0 * (1 - np.exp(-20.0 / 5))
        errors.append(abs(np.log(state["x"]) - exact))
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 0.01


def test_log_projection_exact_for_exponential_growth() -> None:
    y, _ = projective_solve(
        lambda y, dt: y * np.exp(0.3 * dt),
        lambda y: y,
        lambda x, y: x,
        np.array([2.0]),
        dt_micro=0.1,
        n_burst=3,
        delta=2.0,
        t_end=10.0,
        log=True,
    )
    assert y[0] == pytest.approx(2.0 * np.exp(3.0), rel=1e-10)


def test_bad_settings_raise_user_error() -> None:
    with pytest.raises(UserError):
        CoarseProjectiveIntegrator(lambda: 0.0, lambda: np.zeros(1), lambda x, d: None, n_burst=0)
    with pytest.raises(UserError):
        CoarseProjectiveIntegrator(lambda: 0.0, lambda: np.zeros(1), lambda x, d: None, order=4)


def test_variable_appearing_late_in_a_burst_does_not_enter_the_slope_history() -> None:
    """A column present only at the end of a burst (one sample: no slope) must not enter
    the order-3 slope polynomial as a zero slope (x' = 0.5 x, exact)."""
    state = {"t": 0.0, "x": np.nan}

    def micro(state: dict = state) -> float:
        state["t"] += 0.05
        if state["t"] >= 1.0 - 1e-9:  # appears at the last sample of the start-up burst
            x = state["x"]
            state["x"] = np.exp(0.5 * (state["t"] - 1.0)) if np.isnan(x) else x * np.exp(0.025)
        return state["t"]

    def lift(x: np.ndarray, d: float, state: dict = state) -> None:
        state["x"], state["t"] = float(x[0]), state["t"] + d

    integ = CoarseProjectiveIntegrator(
        micro, lambda state=state: np.array([state["x"]]), lift, n_burst=4, log=True, order=3
    )
    integ.step(0.0, 0.0, n_burst=20)
    for _ in range(6):
        integ.step(state["t"], 0.8)
    assert state["x"] == pytest.approx(np.exp(0.5 * (state["t"] - 1.0)), rel=1e-6)
