"""CellML import (biohybrid.importers.cellml): rhs, Jacobian, oxmeta names, gates, one beat.

Models are copies of Chaste's annotated CellML files (tests/data/cellml/README.md). The full
79-model sweep is ``benchmarks/cellml_sweep.py``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from biohybrid.errors import UserError
from biohybrid.importers.cellml import load_cellml
from biohybrid.intracellular.state_table import StateTable
from biohybrid.intracellular.steppers import make_stepper

DATA = Path(__file__).parent / "data" / "cellml"
BR = DATA / "beeler_reuter_model_1977.cellml"
TP06 = DATA / "ten_tusscher_model_2006_epi.cellml"
ORD = DATA / "ohara_rudy_2011_endo.cellml"


@pytest.fixture(scope="module")
def models():
    return {path.stem: load_cellml(path) for path in (BR, TP06, ORD)}


def _myokit_rhs(info, y, t):
    """Myokit's own interpreter of its model (independent of the generated NumPy code)."""
    return np.array(
        info.myokit_model.evaluate_derivatives(
            state=list(y), inputs={"time": float(t)}, ignore_errors=True
        )
    )


@pytest.mark.parametrize("path", sorted(DATA.glob("*.cellml")), ids=lambda p: p.stem)
def test_every_bundled_model_imports_with_voltage_and_finite_rhs(path):
    system, info = load_cellml(path)
    assert info.voltage in system.species
    y = system.initial_state()[None]
    d = system.rhs(0.0, y, system.params.defaults(), np.zeros((1, len(system.inputs))))
    assert d.shape == (1, system.k)
    assert np.all(np.isfinite(d))
    assert len(info.sha256) == 64


@pytest.mark.parametrize("stem", [BR.stem, TP06.stem, ORD.stem])
def test_rhs_matches_myokit_at_initial_state_and_during_the_stimulus(models, stem):
    system, info = models[stem]
    p = system.params.defaults()
    rng = np.random.default_rng(1)
    y0 = system.initial_state()
    # initial state at t = 0, and a perturbed state inside the stimulus pulse
    t_stim = p[info.stimulus["offset"]] + 0.25 * p[info.stimulus["duration"]]
    y1 = y0 * (1 + 0.01 * rng.standard_normal(y0.size))
    for y, t in ((y0, 0.0), (y1, t_stim)):
        ours = system.rhs(np.array([t, t]), np.array([y, y]), p, np.zeros((2, 0)))
        ref = _myokit_rhs(info, y, t)
        np.testing.assert_allclose(ours[0], ref, rtol=1e-12, atol=1e-300)
        np.testing.assert_array_equal(ours[0], ours[1])


@pytest.mark.parametrize("stem", [BR.stem, TP06.stem, ORD.stem, "iribe_model_2006"])
def test_analytic_jacobian_matches_central_differences(models, stem):
    # iribe 2006 has a power with a state-dependent exponent (myokit's Power.diff is wrong)
    system, info = models[stem] if stem in models else load_cellml(DATA / f"{stem}.cellml")
    assert info.jacobian == "analytic"
    p = system.params.defaults()
    y = system.initial_state()[None]
    u = np.zeros((1, 0))
    J = system.jac(0.0, y, p, u)[0]
    fd = np.zeros_like(J)
    for c in range(system.k):
        h = 1e-6 * max(abs(y[0, c]), 1e-3)
        yp, ym = y.copy(), y.copy()
        yp[0, c] += h
        ym[0, c] -= h
        fd[:, c] = (system.rhs(0.0, yp, p, u)[0] - system.rhs(0.0, ym, p, u)[0]) / (2 * h)
    scale = np.abs(fd).max(axis=1, keepdims=True) + 1e-30
    assert np.max(np.abs(J - fd) / scale) < 1e-5


def test_per_cell_parameters_are_arrays(models):
    system, info = models[TP06.stem]
    p = system.params.defaults()
    g = info.conductances["g_Kr"]
    y = np.repeat(system.initial_state()[None], 3, axis=0)
    p_cells = dict(p, **{g: np.array([0.0, p[g], 2 * p[g]])})
    d = system.rhs(0.0, y, p_cells, np.zeros((3, 0)))
    iv = system.index.col(info.voltage)
    one = system.rhs(0.0, y[:1], dict(p, **{g: 2 * p[g]}), np.zeros((1, 0)))
    assert d[2, iv] == pytest.approx(one[0, iv], rel=1e-14)
    assert d[0, iv] != d[1, iv]


# Published maximal conductances: ten Tusscher & Panfilov 2006, Am J Physiol Heart Circ
# Physiol 291:H1088, Table 1 (nS/pF); O'Hara et al. 2011, PLoS Comput Biol 7:e1002061,
# Supplement (mS/µF); Beeler & Reuter 1977, J Physiol 268:177 (mS/cm²: gNa 4, gNaC 0.003,
# gs 0.09 -- the CellML file is in mS/mm², so 0.04 and 0.0009).
PUBLISHED = {
    "ten_tusscher_model_2006_epi": {"g_Na": 14.838, "g_Kr": 0.153, "g_Ks": 0.392, "g_K1": 5.405,
                                    "g_to": 0.294, "g_CaL": 3.98e-5},
    "ten_tusscher_model_2006_endo": {"g_Na": 14.838, "g_Kr": 0.153, "g_Ks": 0.392,
                                     "g_to": 0.073},
    "ohara_rudy_2011_endo": {"g_Na": 75.0, "g_Kr": 0.046, "g_Ks": 0.0034, "g_K1": 0.1908,
                             "g_to": 0.02, "g_NaL": 0.0075, "g_CaL": 1e-4},
    "beeler_reuter_model_1977": {"g_Na": 0.04, "g_CaL": 0.0009},
    "courtemanche_ramirez_nattel_1998": {"g_Na": 7.8, "g_to": 0.1652, "g_K1": 0.09},
}  # fmt: skip


@pytest.mark.parametrize("stem", sorted(PUBLISHED))
def test_oxmeta_names_reach_the_published_conductances(stem):
    system, info = load_cellml(DATA / f"{stem}.cellml")
    p = system.params.defaults()
    for std, value in PUBLISHED[stem].items():
        name = info.conductances[std]
        assert p[name] == pytest.approx(value, rel=1e-9), (std, name)
        assert "conductance" in system.params[name].description or std == "g_CaL"


@pytest.mark.parametrize(
    ("stem", "expected"),
    [(BR.stem, {"m", "h", "j", "d", "f", "x1"}), (TP06.stem, {"m", "h", "j", "d", "f", "Xr1"})],
)
def test_gates_found_and_their_inf_tau_reproduce_the_rhs(models, stem, expected):
    system, info = models[stem]
    assert expected <= set(info.gates)
    assert info.voltage not in info.gates
    assert not {"Ca_i", "Na_i", "K_i", "Cai"} & set(info.gates)  # concentrations are not gates
    p = system.params.defaults()
    rng = np.random.default_rng(2)
    y = system.initial_state() * (1 + 0.05 * rng.standard_normal((5, system.k)))
    u = np.zeros((5, 0))
    inf, tau = info.gate_values(0.0, y, p, u)
    d = system.rhs(0.0, y, p, u)
    cols = [system.index.col(g) for g in info.gates]
    np.testing.assert_allclose(d[:, cols], (inf - y[:, cols]) / tau, rtol=1e-9, atol=1e-14)
    for g in ("m", "h", "j"):
        j = list(info.gates).index(g)
        assert np.all(tau[:, j] > 0)
        assert np.all((inf[:, j] >= 0) & (inf[:, j] <= 1))


def test_stimulus_as_input_and_off(models):
    system, info = models[TP06.stem]
    path = Path(info.path)
    driven, dinfo = load_cellml(path, stimulus="input")
    off, _ = load_cellml(path, stimulus="off")
    assert driven.inputs == ("i_stim",) and dinfo.stimulus_mode == "input"
    assert off.autonomous and driven.autonomous and not system.autonomous
    p = system.params.defaults()
    y = system.initial_state()[None]
    t = p[info.stimulus["offset"]] + 0.5
    amp = p[info.stimulus["amplitude"]]
    np.testing.assert_allclose(
        driven.rhs(t, y, p, np.array([[amp]])), system.rhs(t, y, p, np.zeros((1, 0))), rtol=1e-14
    )
    np.testing.assert_allclose(
        off.rhs(t, y, p, np.zeros((1, 0))), driven.rhs(t, y, p, np.zeros((1, 1))), rtol=1e-14
    )


def _apd90(t, v):
    """APD90 from the upward to the downward crossing of 90 % repolarisation, interpolated."""
    level = v.max() - 0.9 * (v.max() - v[0])
    up = np.flatnonzero((v[:-1] < level) & (v[1:] >= level))[0]
    down = np.flatnonzero((v[:-1] >= level) & (v[1:] < level))
    down = down[down > up][0]

    def cross(i):
        return t[i] + (level - v[i]) / (v[i + 1] - v[i]) * (t[i + 1] - t[i])

    return cross(down) - cross(up)


def _beat(system, info, t_end):
    """One paced beat from the batched RODAS4 stepper and from scipy's LSODA (rtol 1e-9)."""
    p = system.params.defaults()
    start = p[info.stimulus["offset"]]
    stop = start + p[info.stimulus["duration"]]
    times = np.unique(np.r_[np.arange(0.0, t_end + 1e-9, 2.0), np.arange(start, start + 10, 0.1)])
    iv = system.index.col(info.voltage)
    stepper = make_stepper("rodas4", system, rtol=1e-6, atol=1e-8)
    table = StateTable(system.species, 1)
    table.add(system.initial_state())
    v = [table.get([0])[0, iv]]
    for a, b in itertools.pairwise(times):
        stepper.advance(table, a, b, p)
        v.append(table.get([0])[0, iv])

    def f(t, y):
        return system.rhs(t, y[None], p, np.zeros((1, 0)))[0]

    y, ts, vs = system.initial_state(), [], []
    for a, b in ((0.0, start), (start, stop), (stop, t_end)):  # split at the pulse edges
        sel = times[(times >= a) & (times <= b)]
        r = solve_ivp(f, (a, b), y, method="LSODA", rtol=1e-9, atol=1e-10, t_eval=sel)
        assert r.success
        y = r.y[:, -1]
        ts.extend(r.t)
        vs.extend(r.y[iv])
    ts, idx = np.unique(ts, return_index=True)
    return _apd90(times, np.array(v)), _apd90(ts, np.array(vs)[idx])


def test_beeler_reuter_beat_rodas4_against_lsoda(models):
    system, info = models[BR.stem]
    ours, ref = _beat(system, info, 500.0)
    assert ours == pytest.approx(ref, rel=0.01)
    # Beeler & Reuter 1977 (J Physiol 268:177, Fig. 4): the computed action potential
    # lasts about 250-300 ms at 1 Hz; a sanity band, not a tight published number.
    assert 200.0 < ours < 350.0


@pytest.mark.slow
def test_ten_tusscher_epi_beat_apd90(models):
    system, info = models[TP06.stem]
    ours, ref = _beat(system, info, 460.0)
    assert ours == pytest.approx(ref, rel=0.01)
    # ten Tusscher & Panfilov 2006 (Am J Physiol Heart Circ Physiol 291:H1088, APD
    # restitution of the epicardial cell): APD90 close to 300 ms at a 1000 ms cycle length.
    # One beat from the file's (near steady-state) initial values; band +-10 %.
    assert ours == pytest.approx(300.0, rel=0.10)


def test_unresolvable_units_are_a_user_error():
    # a.x in mV is connected to b.x in ms: no conversion factor exists
    with pytest.raises(UserError, match=r"unresolvable units: .*b\.x"):
        load_cellml(DATA / "invalid" / "bad_units.cellml")


def test_bad_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_cellml(tmp_path / "missing.cellml")
    text = tmp_path / "notes.cellml"
    text.write_text("just some text\n")
    with pytest.raises(UserError, match="not a CellML file"):
        load_cellml(text)
    broken = tmp_path / "broken.cellml"
    broken.write_text('<model xmlns="http://www.cellml.org/cellml/1_0#" name="x"><component')
    with pytest.raises(UserError, match="could not be imported"):
        load_cellml(broken)
    with pytest.raises(UserError, match="choices: file, input, off"):
        load_cellml(BR, stimulus="pulse")
