"""Validation of the batched, per-cell adaptive Rosenbrock integrator (issue 3).

Every expected number is either an exact solution or a published reference value; the
source is cited next to it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from biohybrid.errors import SimulationError, UserError
from biohybrid.intracellular import StateTable, Stepper, integrate
from biohybrid.intracellular.rosenbrock import batched_inverse, solve_cells
from biohybrid.intracellular.testproblems import (
    HIRES_REF,
    HIRES_T_END,
    HIRES_Y0,
    ROBERTSON_REF,
    ROBERTSON_T_END,
    hires_rhs,
    robertson_jac,
    robertson_rhs,
)
from biohybrid.models.astrocyte.li_rinzel import (
    LI_RINZEL_PARAMETERS,
    li_rinzel_jac,
    li_rinzel_rhs,
    li_rinzel_system,
)
from biohybrid.params import ParameterSet

# Robertson: species 2 sits near 1e-13 at t = 1e11, so its absolute tolerance must be tiny.
ROB_ATOL = np.array([1e-14, 1e-20, 1e-14])


def li_rinzel_params(ip3: np.ndarray | float) -> dict:
    p = ParameterSet(LI_RINZEL_PARAMETERS).defaults()
    p["ip3"] = ip3
    return p


# ----------------------------------------------------------------------------- test set
def test_robertson_1000_identical_rows_matches_reference() -> None:
    # Reference at t = 1e11: Mazzia & Magherini, IVP test set release 2.4, problem ROBER.
    y0 = np.tile([1.0, 0.0, 0.0], (1000, 1))
    res = integrate(
        robertson_rhs, y0, (0.0, ROBERTSON_T_END), jac=robertson_jac, rtol=1e-8, atol=ROB_ATOL,
        autonomous=True,
    )  # fmt: skip
    rel = np.abs(res.y - ROBERTSON_REF) / ROBERTSON_REF
    assert rel.max() < 1e-4
    # Identical rows must give identical answers (no cross-talk between cells).
    assert np.all(res.y == res.y[0])
    assert res.counters["steps"] == 1000 * res.counters["max_cell_steps"]


def test_robertson_finite_difference_jacobian_matches_analytic() -> None:
    # No Jacobian given and not flagged autonomous: forward differences and a ∂f/∂t term.
    # (A Rosenbrock method needs an accurate Jacobian; FD costs many more steps for
    # Robertson beyond t ~ 1e6, so the comparison stops at t = 1e5.)
    y0 = np.array([[1.0, 0.0, 0.0]])
    fd = integrate(robertson_rhs, y0, (0.0, 1e5), rtol=1e-8, atol=ROB_ATOL)
    exact_jac = integrate(
        robertson_rhs, y0, (0.0, 1e5), jac=robertson_jac, rtol=1e-8, atol=ROB_ATOL,
        autonomous=True,
    )  # fmt: skip
    assert np.max(np.abs(fd.y - exact_jac.y) / exact_jac.y) < 1e-6
    assert fd.counters["rhs_evals"] > 3 * fd.counters["jac_evals"]


def test_robertson_per_row_rate_constants_match_scipy_radau() -> None:
    rng = np.random.default_rng(3)
    n = 6
    k1 = 0.04 * rng.uniform(0.5, 2.0, n)
    k2 = 3e7 * rng.uniform(0.5, 2.0, n)
    k3 = 1e4 * rng.uniform(0.5, 2.0, n)
    t_end = 1e4
    res = integrate(
        robertson_rhs, np.tile([1.0, 0.0, 0.0], (n, 1)), (0.0, t_end), jac=robertson_jac,
        args=(k1, k2, k3), rtol=1e-8, atol=ROB_ATOL, autonomous=True,
    )  # fmt: skip
    for i in range(n):
        sol = solve_ivp(
            lambda t, y, i=i: robertson_rhs(t, y[None], k1[i], k2[i], k3[i])[0],
            (0.0, t_end), [1.0, 0.0, 0.0], method="Radau", rtol=1e-10, atol=ROB_ATOL,
            jac=lambda t, y, i=i: robertson_jac(t, y[None], k1[i], k2[i], k3[i])[0],
        )  # fmt: skip
        ref = sol.y[:, -1]
        assert np.max(np.abs(res.y[i] - ref) / np.abs(ref)) < 1e-5, i
    # Different rate constants must give different answers.
    assert np.unique(res.y[:, 0]).size == n


@pytest.mark.parametrize("method", ["rodas4", "rodas3"])
def test_hires_matches_reference(method: str) -> None:
    # Reference at t = 321.8122: Mazzia & Magherini, IVP test set, problem HIRES (k = 8,
    # exercises the batched LAPACK inverse and the finite-difference Jacobian).
    y0 = np.tile(HIRES_Y0, (3, 1))
    res = integrate(hires_rhs, y0, (0.0, HIRES_T_END), rtol=1e-7, atol=1e-10, method=method)
    assert np.max(np.abs(res.y - HIRES_REF) / HIRES_REF) < 1e-4


# ----------------------------------------------------------------------------- order
def _order_rhs(t, y):
    # y1' = -2 t y1^2 (exact 1/(1 + t^2)); y2' = -y2 + cos t (exact (sin t + cos t + e^-t)/2)
    tt = np.reshape(t, (-1,))
    out = np.empty_like(y)
    out[:, 0] = -2.0 * tt * y[:, 0] ** 2
    out[:, 1] = -y[:, 1] + np.cos(tt)
    return out


@pytest.mark.parametrize(("method", "order"), [("rodas4", 4), ("rodas3", 3)])
def test_observed_order_of_convergence(method: str, order: int) -> None:
    t_end = 2.0
    exact = np.array([1.0 / (1.0 + t_end**2), (np.sin(t_end) + np.cos(t_end) + np.exp(-t_end)) / 2])
    hs = np.array([0.1, 0.05, 0.025, 0.0125])
    errs = []
    for h in hs:
        res = solve_cells(
            _order_rhs, np.array([[1.0, 1.0]]), 0.0, t_end, h0=np.array([h]), method=method,
            fixed_step=True,
        )  # fmt: skip
        assert res.counters["steps"] == round(t_end / h)
        errs.append(np.abs(res.y[0] - exact).max())
    observed = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    # The observed order tends to the classical order as h -> 0.
    assert np.all(np.abs(observed - order) < 0.5), observed
    assert abs(observed[-1] - order) < 0.25, observed


# ----------------------------------------------------------------------------- L-stability
def test_l_stability_follows_cos_without_oscillation() -> None:
    # y' = -λ (y - cos t), λ = 1e6: the solution is cos t + O(1/λ) after a fast transient.
    lam = 1e6

    def rhs(t, y):
        return -lam * (y - np.reshape(np.cos(t), (-1, 1)))

    def jac(t, y):
        return np.full((y.shape[0], 1, 1), -lam)

    h = 0.1
    ts = np.arange(0.0, 5.0 + 1e-12, h)
    y = np.array([[2.0]])  # far from cos 0 = 1: the stiff transient must be damped at once
    dev = []
    for t0, t1 in itertools.pairwise(ts):
        res = solve_cells(rhs, y, t0, t1, jac=jac, h0=np.array([h]), fixed_step=True)
        y = res.y
        dev.append(y[0, 0] - np.cos(t1))
    dev = np.array(dev)
    # L-stable: R(∞) = 0, so the unit initial offset is gone after one step (to O(1/(hλ))),
    # and afterwards y follows the smooth solution cos t + sin(t)/λ + O(1/λ²).
    assert abs(dev[0]) < 1e-3
    smooth = np.sin(ts[2:]) / lam
    assert np.abs(dev[1:] - smooth).max() < 1e-6
    # No ringing: an A-stable but not L-stable method (trapezoidal rule, R(∞) = -1) would
    # flip the sign of the offset every step; here the sign changes only where sin t does.
    assert np.count_nonzero(np.diff(np.sign(dev[1:]))) <= 1
    # Adaptive run: large steps are taken (far fewer than λ t steps).
    res = integrate(rhs, np.array([[2.0]]), (0.0, 5.0), jac=jac, rtol=1e-6, atol=1e-9)
    assert abs(res.y[0, 0] - np.cos(5.0)) < 1e-5
    assert res.counters["steps"] < 500


def test_l_stability_stability_function_at_infinity() -> None:
    # For y' = λ y with h λ -> -∞ an L-stable method gives y1/y0 -> 0 (Hairer & Wanner,
    # Def. IV.3.7); one fixed step of h = 1 with λ = -1e12.
    for method in ("rodas4", "rodas3"):
        res = solve_cells(
            lambda t, y: -1e12 * y, np.array([[1.0]]), 0.0, 1.0, h0=np.array([1.0]),
            method=method, fixed_step=True, autonomous=True,
        )  # fmt: skip
        assert abs(res.y[0, 0]) < 1e-10, method


# ----------------------------------------------------------------------------- Li-Rinzel
@pytest.mark.slow
def test_li_rinzel_matches_radau_for_oscillating_and_steady_cells() -> None:
    # Li & Rinzel (1994) parameters; IP3 0.2 and 0.8 µM settle, 0.4-0.6 µM oscillate.
    ip3 = np.array([0.2, 0.35, 0.4, 0.5, 0.6, 0.8])
    p = li_rinzel_params(ip3)
    y0 = np.tile([0.1, 0.7], (ip3.size, 1))
    t_end = 40.0
    res = integrate(
        li_rinzel_rhs, y0, (0.0, t_end), jac=li_rinzel_jac, args=(p, None), rtol=1e-8,
        atol=1e-11, autonomous=True,
    )  # fmt: skip
    for i in range(ip3.size):
        pi = li_rinzel_params(float(ip3[i]))
        sol = solve_ivp(
            lambda t, y, pi=pi: li_rinzel_rhs(t, y[None], pi)[0], (0.0, t_end), y0[i],
            method="Radau", rtol=1e-10, atol=1e-13, dense_output=True,
        )  # fmt: skip
        assert np.abs(res.y[i] - sol.y[:, -1]).max() < 1e-6, ip3[i]
        if i == 3:
            ca = sol.sol(np.linspace(10.0, t_end, 600))[0]
            # IP3 = 0.5 µM lies inside the oscillatory range of Li & Rinzel (1994, Fig. 3):
            # Ca2+ swings between about 0.1 and 0.45 µM with a period of ~12 s.
            assert ca.max() - ca.min() > 0.3
        if i == 0:
            ca = sol.sol(np.linspace(30.0, t_end, 100))[0]
            assert ca.max() - ca.min() < 1e-3  # IP3 = 0.2 µM is at rest


def test_quiet_cells_take_fewer_steps_than_spiking_cells() -> None:
    # Per-cell step control: a resting cell must not be dragged along by an oscillating one.
    ip3 = np.array([0.2, 0.5])
    res = integrate(
        li_rinzel_rhs, np.tile([0.1, 0.7], (2, 1)), (0.0, 60.0), jac=li_rinzel_jac,
        args=(li_rinzel_params(ip3), None), autonomous=True,
    )  # fmt: skip
    solo = [
        integrate(
            li_rinzel_rhs, np.array([[0.1, 0.7]]), (0.0, 60.0), jac=li_rinzel_jac,
            args=(li_rinzel_params(np.array([v])), None), autonomous=True,
        ).counters["steps"]
        for v in ip3
    ]  # fmt: skip
    assert solo[0] < solo[1] / 3
    # The pair costs what the two cells cost alone: no shared step.
    assert res.counters["steps"] == sum(solo)


# ----------------------------------------------------------------------------- stepper
def _table(y0: np.ndarray) -> StateTable:
    table = StateTable(("ca", "h"), capacity=4)
    for row in y0:
        table.add(row)
    return table


def test_stepper_macro_steps_agree_with_one_call_and_warm_start_saves_work() -> None:
    system = li_rinzel_system()
    ip3 = np.linspace(0.3, 0.7, 8)
    p = li_rinzel_params(ip3)
    y0 = np.tile(system.initial_state(), (ip3.size, 1))
    one = integrate(
        li_rinzel_rhs, y0, (0.0, 20.0), jac=li_rinzel_jac, args=(p, None), rtol=1e-8,
        atol=1e-11, autonomous=True,
    ).y  # fmt: skip
    counts = {}
    for warm in (True, False):
        table = _table(y0)
        stepper = Stepper(system, rtol=1e-8, atol=1e-11, warm_start=warm)
        for i in range(40):
            stepper.advance(table, 0.5 * i, 0.5 * (i + 1), p)
        assert np.abs(table.live() - one).max() < 1e-5
        assert stepper.counters["macro_steps"] == 40
        counts[warm] = stepper.counters["sweeps"]
        if warm:
            assert np.all(table.attrs["ode_h"][table.live_rows()] > 0)
    assert counts[True] < counts[False]


def test_stepper_rows_added_and_removed_between_macro_steps() -> None:
    system = li_rinzel_system()
    p0 = li_rinzel_params(0.5)
    table = _table(np.tile(system.initial_state(), (3, 1)))
    stepper = Stepper(system, rtol=1e-8, atol=1e-11)
    stepper.advance(table, 0.0, 1.0, p0)
    daughter = table.copy_row(1)  # division: the daughter inherits state and step size
    assert table.attrs["ode_h"][daughter] == table.attrs["ode_h"][1]
    table.free(0)  # death
    newcomer = table.add(system.initial_state())  # reuses row 0, no step size yet
    assert newcomer == 0 and np.isnan(table.attrs["ode_h"][newcomer])
    rows = table.live_rows()
    ip3 = np.where(rows == newcomer, 0.3, 0.5)  # per-cell parameter aligned with rows
    stepper.advance(table, 1.0, 3.0, li_rinzel_params(ip3), None, rows)
    y = table.get(rows)
    assert np.all(np.isfinite(y))
    # Rows 1 and the daughter had equal states and parameters: they stay equal.
    assert np.allclose(table.get([1])[0], table.get([daughter])[0], rtol=1e-12, atol=0)
    # The newcomer started at t=1 from the initial state: compare with a direct solve.
    ref = integrate(
        li_rinzel_rhs, system.initial_state()[None], (1.0, 3.0), jac=li_rinzel_jac,
        args=(li_rinzel_params(0.3), None), rtol=1e-8, atol=1e-11, autonomous=True,
    ).y[0]  # fmt: skip
    assert np.abs(table.get([newcomer])[0] - ref).max() < 1e-9


# ----------------------------------------------------------------------------- errors
def test_nan_rhs_raises_naming_rows_and_time() -> None:
    def rhs(t, y, poison):
        bad = (poison > 0) & (np.reshape(t, (-1,)) > 0.5)
        return np.where(bad[:, None], np.nan, -y)

    with pytest.raises(SimulationError, match=r"rows \[2\] at t=0\.5"):
        integrate(rhs, np.ones((4, 1)), (0.0, 1.0), args=(np.array([0, 0, 1, 0]),))


def test_blow_up_raises_step_size_underflow() -> None:
    # y' = y^2, y(0) = 1 blows up at t = 1 (exact 1/(1 - t)); only row 1 does.
    def rhs(t, y, c):
        return c[:, None] * y * y

    with pytest.raises(SimulationError, match=r"rows \[1\]"):
        integrate(rhs, np.ones((3, 1)), (0.0, 2.0), args=(np.array([0.1, 1.0, 0.2]),))


def test_stepper_errors_name_table_rows() -> None:
    system = li_rinzel_system()
    table = _table(np.tile(system.initial_state(), (3, 1)))
    table.free(0)
    table.row(2)[:] = np.nan
    with pytest.raises(SimulationError, match=r"rows \[2\]"):
        Stepper(system).advance(table, 0.0, 1.0, li_rinzel_params(0.5))


def test_bad_input_is_a_user_error() -> None:
    with pytest.raises(UserError, match="rodas4"):
        integrate(lambda t, y: -y, np.ones((2, 1)), (0.0, 1.0), method="euler")
    with pytest.raises(UserError, match="expected"):
        integrate(lambda t, y: -y[:, :1], np.ones((2, 2)), (0.0, 1.0))


def test_single_cell_and_empty_inputs() -> None:
    res = integrate(lambda t, y: -y, np.array([[1.0]]), (0.0, 1.0), rtol=1e-10, atol=1e-12)
    assert abs(res.y[0, 0] - np.exp(-1.0)) < 1e-9  # exact solution e^-t
    empty = integrate(lambda t, y: -y, np.zeros((0, 2)), (0.0, 1.0))
    assert empty.y.shape == (0, 2)


def test_batched_inverse_matches_numpy_for_k_1_to_5() -> None:
    rng = np.random.default_rng(0)
    for k in range(1, 6):
        M = rng.normal(size=(7, k, k)) + 3 * np.eye(k)
        inv = batched_inverse(np.ascontiguousarray(np.moveaxis(M, 0, 2)))
        assert np.allclose(np.moveaxis(inv, 2, 0), np.linalg.inv(M))
    singular = np.zeros((2, 2, 3))
    singular[0, 0] = singular[1, 1] = 1.0
    singular[:, :, 1] = 0.0
    assert np.isnan(batched_inverse(singular)[:, :, 1]).all()
