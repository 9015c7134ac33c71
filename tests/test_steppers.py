"""Pluggable intracellular steppers: registry, protocol, per-species atol, backward Euler.

Reference values are exact solutions: of the ODE (linear relaxation), of the backward-Euler
equation ``z = y + h f(z)`` (closed-form roots for quadratic rate laws; Hairer & Wanner,
*Solving ODEs II*, 2nd ed. 1996, Sect. IV.3: implicit Euler has ``R(z) = 1/(1 - z)``), or
closed-form solutions of linear test equations (checked against scipy's Radau IIA).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from biohybrid.errors import SimulationError, UserError
from biohybrid.intracellular import (
    STEPPERS,
    OdeSystem,
    RelaxationStepper,
    StateTable,
    Stepper,
    StepperProtocol,
    make_stepper,
    species_atol,
)
from biohybrid.intracellular.counters import COUNTERS
from biohybrid.models.astrocyte.li_rinzel import LI_RINZEL_PARAMETERS, li_rinzel_system
from biohybrid.params import Param, ParameterSet

NO_U = np.zeros((1, 0))


def _system(name, species, rhs, jac=None, params=None, floor=None) -> OdeSystem:
    return OdeSystem(
        name=name,
        species=species,
        params=ParameterSet(params or {}),
        rhs=rhs,
        jac=jac,
        initial=dict.fromkeys(species, 1.0),
        floor=floor or {},
    )


def _table(species, states) -> StateTable:
    table = StateTable(species, capacity=2)
    for row in np.atleast_2d(states):
        table.add(row)
    return table


# ----------------------------------------------------------------------------- registry
def test_registry_builds_every_method_with_the_fixed_counters() -> None:
    system = li_rinzel_system()
    assert set(STEPPERS) == {"rodas4", "rodas3", "implicit-euler"}
    for method in STEPPERS:
        stepper = make_stepper(method, system, rtol=1e-6, atol=1e-9)
        assert isinstance(stepper, StepperProtocol)
        assert stepper.system is system
        assert set(COUNTERS) <= set(stepper.counters)
        assert not any(stepper.counters.values())
    assert make_stepper("rodas3", system).method == "rodas3"
    assert make_stepper("rodas4", system).row_attrs == ("ode_h",)
    assert make_stepper("implicit-euler", system, n_sub=4).n_sub == 4


def test_unknown_method_or_option_is_a_user_error_listing_the_choices() -> None:
    system = li_rinzel_system()
    with pytest.raises(UserError, match=r"'rodas5'.*rodas4.*choices: rodas4, rodas3, implicit"):
        make_stepper("rodas5", system)
    with pytest.raises(UserError, match=r"\['n_sub'\].*warm_start"):
        make_stepper("rodas4", system, n_sub=2)
    with pytest.raises(UserError, match="n_sub must be an integer >= 1"):
        make_stepper("implicit-euler", system, n_sub=0)
    with pytest.raises(UserError, match="rtol"):
        make_stepper("rodas4", system, rtol=0.0)


def test_extra_methods_are_per_call_and_the_registry_is_read_only() -> None:
    system = li_rinzel_system()

    def damped(system, *, rtol, atol, atol_default, n_sub=2):
        return RelaxationStepper(system, rtol, atol, n_sub=n_sub, atol_default=atol_default)

    stepper = make_stepper("damped", system, extra={"damped": damped}, n_sub=3)
    assert stepper.n_sub == 3
    with pytest.raises(UserError, match="unknown intracellular method 'damped'"):
        make_stepper("damped", system)  # not registered globally
    with pytest.raises(TypeError):
        STEPPERS["damped"] = damped  # type: ignore[index]
    with pytest.raises(UserError, match="StepperProtocol"):
        make_stepper("bad", system, extra={"bad": lambda system, **kw: object()})


# ----------------------------------------------------------------------------- atol forms
def test_atol_resolves_per_species_from_float_array_or_mapping() -> None:
    index = li_rinzel_system().index  # ca, h
    np.testing.assert_array_equal(species_atol(1e-8, index), [1e-8, 1e-8])
    np.testing.assert_array_equal(species_atol([1e-8, 1e-3], index), [1e-8, 1e-3])
    np.testing.assert_array_equal(species_atol({"h": 1e-3}, index, default=1e-7), [1e-7, 1e-3])
    with pytest.raises(UserError, match=r"unknown species.*'Ca'.*ca, h"):
        species_atol({"Ca": 1e-9}, index)
    with pytest.raises(UserError, match=r"shape \(3,\).*ca, h"):
        species_atol([1e-9, 1e-9, 1e-9], index)
    with pytest.raises(UserError, match=r"> 0.*\['h'\]"):
        species_atol({"h": -1.0}, index)
    for method in STEPPERS:
        stepper = make_stepper(method, li_rinzel_system(), atol={"h": 1e-4}, atol_default=1e-10)
        np.testing.assert_array_equal(stepper.atol, [1e-10, 1e-4])


def _two_scale_rhs(t, y, p, u):
    # v: a potential in mV relaxing slowly to 60 mV; c: a 1e-7-scale concentration driven
    # fast (period 0.63 s). The step size a scalar atol of 1e-6 allows is set by v alone.
    tt = np.reshape(t, (-1,))
    out = np.empty_like(y)
    out[:, 0] = -0.1 * (y[:, 0] - 60.0)
    out[:, 1] = 20.0 * (1e-7 * (1.0 + np.sin(10.0 * tt)) - y[:, 1])
    return out


def _two_scale_exact(t: float, v0: float = -70.0) -> np.ndarray:
    # Both equations are linear: v = 60 + (v0 - 60) e^{-0.1 t}; with a = 20, ω = 10,
    # b = 1e-7 and c(0) = b, c = b + a b (a sin ωt - ω cos ωt)/(a² + ω²) + a b ω e^{-at}/(a² + ω²).
    a, w, b = 20.0, 10.0, 1e-7
    c = b + a * b * (a * np.sin(w * t) - w * np.cos(w * t)) / (a * a + w * w)
    c += a * b * w * np.exp(-a * t) / (a * a + w * w)
    return np.array([60.0 + (v0 - 60.0) * np.exp(-0.1 * t), c])


@pytest.mark.parametrize("method", ["rodas4", "rodas3"])
def test_per_species_atol_controls_the_small_species(method: str) -> None:
    system = _system("two-scale", ("v", "c"), _two_scale_rhs)
    y0 = [-70.0, 1e-7]
    exact = _two_scale_exact(10.0)
    # The closed form is checked independently against scipy's Radau IIA at t = 2.
    radau = solve_ivp(
        lambda t, y: _two_scale_rhs(t, y[None], {}, None)[0], (0.0, 2.0), y0, method="Radau",
        rtol=1e-10, atol=[1e-8, 1e-18], jac=lambda t, y: np.diag([-0.1, -20.0]),
    ).y[:, -1]  # fmt: skip
    np.testing.assert_allclose(radau, _two_scale_exact(2.0), rtol=1e-8)
    rel = {}
    for label, atol in (("scalar", 1e-6), ("per-species", {"c": 1e-13})):
        stepper = make_stepper(method, system, rtol=1e-6, atol=atol, atol_default=1e-6)
        table = _table(("v", "c"), y0)
        for i in range(10):
            stepper.advance(table, float(i), float(i + 1), {})
        rel[label] = np.abs(table.live()[0] - exact) / np.abs(exact)
    # A scalar atol of 1e-6 is 10x the whole c signal: c is not controlled at all.
    assert rel["scalar"][0] < 1e-5 and rel["scalar"][1] > 1e-2
    # With atol_c = 1e-13 (1e-6 of its scale) both species meet the tolerance.
    assert np.all(rel["per-species"] < 1e-5), rel


def test_per_species_atol_controls_newton_in_implicit_euler() -> None:
    # v' = -0.1 (v - 60) (mV) and c' = -k c² (k = 1e8/(mM s), c ~ 1e-6 mM). One backward-Euler
    # step of h = 1 solves 0.1 h (z - 60) + z - v0 = 0 and k h z² + z - c0 = 0 exactly:
    # z_v = (v0 + 6)/1.1, z_c = (sqrt(1 + 4 k h c0) - 1)/(2 k h).
    k = 1e8

    def rhs(t, y, p, u):
        return np.column_stack([-0.1 * (y[:, 0] - 60.0), -k * y[:, 1] ** 2])

    def jac(t, y, p, u):
        J = np.zeros((y.shape[0], 2, 2))
        J[:, 0, 0] = -0.1
        J[:, 1, 1] = -2.0 * k * y[:, 1]
        return J

    system = _system("two-scale-be", ("v", "c"), rhs, jac)
    v0, c0 = -70.0, 1e-6
    exact = np.array([(v0 + 6.0) / 1.1, (np.sqrt(1.0 + 4.0 * k * c0) - 1.0) / (2.0 * k)])
    rel = {}
    for label, atol in (("scalar", 1e-6), ("per-species", {"c": 1e-15})):
        stepper = make_stepper("implicit-euler", system, rtol=1e-8, atol=atol, atol_default=1e-6)
        table = _table(("v", "c"), [v0, c0])
        stepper.advance(table, 0.0, 1.0, {})
        rel[label] = np.abs(table.live()[0] - exact) / exact
    # Scalar atol: the first Newton update of c (~5e-7) already passes |dz| <= 1e-6, so c
    # stops at the first iterate (~5x the root).
    assert rel["scalar"][0] < 1e-9 and rel["scalar"][1] > 0.5
    assert np.all(rel["per-species"] < 1e-8), rel


# ----------------------------------------------------------------------------- backward Euler
def test_implicit_euler_is_backward_euler_and_l_stable() -> None:
    # y' = -λ (y - 2): n backward-Euler steps give y_n = 2 + (y0 - 2)/(1 + λh)^n exactly
    # (R(z) = 1/(1 - z), Hairer & Wanner IV.3); as λh -> ∞ the offset is gone (L-stable).
    def rhs(t, y, p, u):
        return -p["lam"][:, None] * (y - 2.0)

    def jac(t, y, p, u):
        return -p["lam"][:, None, None] * np.ones((y.shape[0], 1, 1))

    params = {"lam": Param(1.0, "1/s", "rate")}
    system = _system("linear", ("y",), rhs, jac, params)
    lam = np.array([0.1, 1.0, 10.0, 1e10])
    for n_sub in (1, 4):
        stepper = RelaxationStepper(system, rtol=1e-12, atol=1e-14, n_sub=n_sub)
        table = _table(("y",), np.full((4, 1), 5.0))
        stepper.advance(table, 0.0, 1.0, {"lam": lam})
        h = 1.0 / n_sub
        exact = 2.0 + 3.0 / (1.0 + lam * h) ** n_sub
        np.testing.assert_allclose(table.live()[:, 0], exact, rtol=1e-12)
        assert stepper.counters["steps"] == 4 * n_sub and stepper.counters["sweeps"] == n_sub
    assert abs(table.live()[3, 0] - 2.0) < 1e-8
    # First-order convergence to the exact solution 2 + 3 e^{-λt} (λ = 1, t = 1).
    errs = []
    for n_sub in (10, 20, 40):
        stepper = RelaxationStepper(system, rtol=1e-12, atol=1e-14, n_sub=n_sub)
        y = stepper.solve(np.array([[5.0]]), 0.0, 1.0, {"lam": np.array([1.0])}, NO_U)
        errs.append(abs(y[0, 0] - (2.0 + 3.0 * np.exp(-1.0))))
    assert np.allclose(np.log2(np.array(errs[:-1]) / errs[1:]), 1.0, atol=0.05)


def _quadratic_system() -> OdeSystem:
    def rhs(t, y, p, u):
        return -p["k"][:, None] * y * y

    def jac(t, y, p, u):
        return (-2.0 * p["k"][:, None] * y)[:, :, None]

    return _system("quadratic", ("y",), rhs, jac, {"k": Param(1.0, "1/s", "rate")})


def test_newton_converges_per_cell() -> None:
    # y' = -k y², one backward-Euler step of h = 1 from y = 1: z = (sqrt(1 + 4k) - 1)/(2k).
    # Newton from z = 1 needs more iterations the larger k, so the cells converge at
    # different iterations; each must stop at its own.
    system = _quadratic_system()
    k = np.array([1e-3, 1.0, 1e2, 1e4])
    exact = (np.sqrt(1.0 + 4.0 * k) - 1.0) / (2.0 * k)
    batch = RelaxationStepper(system, rtol=1e-8, atol=1e-12, max_newton=20)
    z = batch.solve(np.ones((4, 1)), 0.0, 1.0, {"k": k}, np.zeros((4, 0)))
    np.testing.assert_allclose(z[:, 0], exact, rtol=1e-12)
    solo_iters, solo_z = [], []
    for i in range(k.size):
        one = RelaxationStepper(system, rtol=1e-8, atol=1e-12, max_newton=20)
        solo_z.append(one.solve(np.ones((1, 1)), 0.0, 1.0, {"k": k[i : i + 1]}, NO_U)[0, 0])
        solo_iters.append(one.counters["newton_iterations"])
    assert len(set(solo_iters)) == k.size  # the cells really need different counts
    # Batched = alone, bit for bit, and no cell iterates longer than it needs to.
    np.testing.assert_array_equal(z[:, 0], solo_z)
    assert batch.counters["newton_iterations"] == sum(solo_iters)
    assert batch.counters["linear_solves"] == max(solo_iters)
    assert batch.counters["newton_iterations"] < k.size * batch.counters["linear_solves"]


def test_finite_difference_jacobian_when_the_system_has_none() -> None:
    analytic = _quadratic_system()
    fd = _system("quadratic-fd", ("y",), analytic.rhs, None, {"k": Param(1.0, "1/s", "rate")})
    k = np.array([0.5, 50.0])
    exact = (np.sqrt(1.0 + 4.0 * k) - 1.0) / (2.0 * k)
    stepper = make_stepper("implicit-euler", fd, rtol=1e-10, atol=1e-13)
    table = _table(("y",), np.ones((2, 1)))
    stepper.advance(table, 0.0, 1.0, {"k": k})
    np.testing.assert_allclose(table.live()[:, 0], exact, rtol=1e-10)
    # Each FD Jacobian costs k = 1 extra batched rhs call beside the Newton residual.
    assert stepper.counters["rhs_evals"] == 2 * stepper.counters["jac_evals"]


def test_floor_keeps_newton_on_the_physical_root() -> None:
    # Michaelis-Menten drain s' = -V s/(K + s), V h = 1e3, K = 0.01, s0 = 1: the step
    # equation z² + (K + Vh - s0) z - s0 K = 0 has one positive root (the solution) and
    # one at -999.01. Newton from z = 1 overshoots below zero and, unbounded, converges to
    # the negative root; projected onto s >= 0 it finds the positive one.
    def rhs(t, y, p, u):
        return -p["V"] * y / (p["K"] + y)

    def jac(t, y, p, u):
        return (-p["V"] * p["K"] / (p["K"] + y) ** 2)[:, :, None]

    params = {"V": Param(1e3, "mM/s", "maximal rate"), "K": Param(0.01, "mM", "half rate")}
    p = {"V": 1e3, "K": 0.01}
    b = 0.01 + 1e3 - 1.0
    positive, negative = (-b + np.sqrt(b * b + 0.04)) / 2, (-b - np.sqrt(b * b + 0.04)) / 2
    for floor, root in (({}, negative), ({"s": 0.0}, positive)):
        system = _system("mm", ("s",), rhs, jac, params, floor=floor)
        z = RelaxationStepper(system, rtol=1e-10, atol=1e-15).solve(
            np.ones((1, 1)), 0.0, 1.0, p, NO_U
        )
        assert z[0, 0] == pytest.approx(root, rel=1e-9)
    with pytest.raises(UserError, match="unknown species"):
        _system("mm", ("s",), rhs, jac, params, floor={"S": 0.0})


# ----------------------------------------------------------------------------- protocol
def _li_rinzel_params(ip3):
    p = ParameterSet(LI_RINZEL_PARAMETERS).defaults()
    p["ip3"] = ip3
    return p


@pytest.mark.parametrize("method", sorted(STEPPERS))
def test_state_follows_rows_through_division_and_death(method: str) -> None:
    system = li_rinzel_system()
    options = {"n_sub": 4} if method == "implicit-euler" else {}
    stepper = make_stepper(method, system, rtol=1e-8, atol=1e-11, **options)
    table = _table(system.species, np.tile(system.initial_state(), (3, 1)))
    stepper.advance(table, 0.0, 1.0, _li_rinzel_params(0.5))
    for name in stepper.row_attrs:
        assert np.all(np.isfinite(table.attrs[name][table.live_rows()]))
    daughter = table.copy_row(1)  # division
    table.free(0)  # death
    newcomer = table.add(system.initial_state())  # reuses row 0
    assert newcomer == 0
    for name in stepper.row_attrs:
        assert np.isnan(table.attrs[name][newcomer])  # fresh cell, no inherited estimate
    rows = table.live_rows()
    ip3 = np.where(rows == newcomer, 0.3, 0.5)
    stepper.advance(table, 1.0, 3.0, _li_rinzel_params(ip3), None, rows)
    # The daughter inherited everything from row 1: they stay identical (to rounding: the
    # batched BLAS products may round a lane differently).
    np.testing.assert_allclose(table.get([1]), table.get([daughter]), rtol=1e-13)
    # The newcomer evolves as a lone cell started at t = 1 by a fresh stepper.
    alone = make_stepper(method, system, rtol=1e-8, atol=1e-11, **options)
    lone = _table(system.species, system.initial_state())
    alone.advance(lone, 1.0, 3.0, _li_rinzel_params(0.3))
    np.testing.assert_allclose(table.get([newcomer]), lone.live(), rtol=1e-12)
    assert stepper.counters["macro_steps"] == 2
    stepper.advance(table, 3.0, 3.0, _li_rinzel_params(0.5))  # empty interval: no work
    assert stepper.counters["macro_steps"] == 2


def test_relaxation_errors_name_rows_and_time() -> None:
    def rhs(t, y, p, u):
        return np.where(p["poison"][:, None] > 0, np.nan, -y)

    system = _system("poison", ("y",), rhs, None, {"poison": Param(0.0, "1", "poison")})
    table = _table(("y",), np.ones((4, 1)))
    with pytest.raises(SimulationError, match=r"rows \[2\] at t=0\.5"):
        RelaxationStepper(system, n_sub=2).advance(
            table, 0.0, 1.0, {"poison": np.array([0.0, 0.0, 1.0, 0.0])}
        )
    quad = _quadratic_system()
    table = _table(("y",), np.ones((3, 1)))
    with pytest.raises(SimulationError, match=r"did not converge in 3 iterations in rows \[2\]"):
        RelaxationStepper(quad, rtol=1e-8, atol=1e-12, max_newton=3).advance(
            table, 0.0, 1.0, {"k": np.array([1e-3, 1e-2, 1e4])}
        )
    table.row(1)[:] = np.inf
    with pytest.raises(SimulationError, match=r"non-finite initial state in rows \[1\]"):
        RelaxationStepper(quad).advance(table, 0.0, 1.0, {"k": np.ones(3)})
    with pytest.raises(UserError, match="before t0"):
        RelaxationStepper(quad).solve(np.ones((1, 1)), 1.0, 0.0, {"k": np.ones(1)}, NO_U)


def test_rosenbrock_stepper_rejects_unknown_method_at_construction() -> None:
    with pytest.raises(UserError, match="rodas4, rodas3"):
        Stepper(li_rinzel_system(), method="rodas5")
