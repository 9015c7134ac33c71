"""Sweep designs and sensitivity indices, without running any model (fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biohybrid.errors import UserError
from biohybrid.models.demo import MODEL as DEMO
from biohybrid.sweep import indices, make_design, parse_param_text
from biohybrid.sweep.design import MORRIS_LEVELS, design_from_dict


def test_grid_is_full_factorial_in_design_order_with_replicates():
    d = make_design({"s_max": [0.1, 0.5, 1.0], "nx": [8, 12]}, model_cls=DEMO, replicates=2, seed=5)
    assert d.n_points == 6 and d.n_runs == 12
    runs = d.runs()
    # first parameter varies slowest (itertools.product order), replicate fastest
    assert runs["s_max"].tolist() == [0.1] * 4 + [0.5] * 4 + [1.0] * 4
    assert runs["nx"].tolist() == [8, 8, 12, 12] * 3
    assert runs["replicate"].tolist() == [0, 1] * 6
    assert runs["point"].tolist() == [i // 2 for i in range(12)]
    assert runs["run"].tolist() == list(range(12))
    assert runs["nx"].dtype == np.int64 and runs["s_max"].dtype == np.float64


def test_run_seeds_come_from_seedsequence_spawn_in_design_order():
    d = make_design({"s_max": [0.1, 0.2]}, model_cls=DEMO, replicates=3, seed=1234)
    expected = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(1234).spawn(d.n_runs)]
    assert d.runs()["seed"].tolist() == expected
    assert len(set(expected)) == d.n_runs
    # a different root seed gives different run seeds; the same root the same ones
    other = make_design({"s_max": [0.1, 0.2]}, model_cls=DEMO, replicates=3, seed=1235)
    assert other.runs()["seed"].tolist() != expected
    again = make_design({"s_max": [0.1, 0.2]}, model_cls=DEMO, replicates=3, seed=1234)
    assert again.runs()["param_hash"].tolist() == d.runs()["param_hash"].tolist()


def test_grid_range_with_n_gives_evenly_spaced_values():
    d = make_design({"s_max": (0.0, 1.0)}, model_cls=DEMO, n=5)
    assert d.points["s_max"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_latin_hypercube_has_one_point_per_stratum():
    # McKay, Beckman & Conover (1979): each of the n equal strata of every input holds
    # exactly one of the n points.
    n = 20
    d = make_design(
        {"s_max": (0.0, 2.0), "diffusion": (100.0, 5000.0)},
        model_cls=DEMO,
        design="lhs",
        n=n,
        seed=3,
    )
    assert d.n_points == n
    for name, (lo, hi) in (("s_max", (0.0, 2.0)), ("diffusion", (100.0, 5000.0))):
        strata = np.floor((d.points[name].to_numpy() - lo) / (hi - lo) * n).astype(int)
        assert sorted(strata.tolist()) == list(range(n))
    again = make_design(
        {"s_max": (0.0, 2.0), "diffusion": (100.0, 5000.0)},
        model_cls=DEMO,
        design="lhs",
        n=n,
        seed=3,
    )
    assert np.array_equal(again.points.to_numpy(), d.points.to_numpy())


def test_sobol_and_morris_sizes_and_morris_steps():
    params = {"s_max": (0.0, 2.0), "k_up": (0.01, 0.1), "decay": (0.01, 0.2)}
    sob = make_design(params, model_cls=DEMO, design="sobol", n=16)
    assert sob.n_points == 16 * (3 + 2)  # Saltelli (2010), without second order
    mor = make_design(params, model_cls=DEMO, design="morris", n=5)
    assert mor.n_points == 5 * (3 + 1)  # Morris (1991): d + 1 points per trajectory
    # Within a trajectory consecutive points differ in exactly one input, by
    # delta = p / (2 (p - 1)) of its range (p = number of levels; Morris 1991).
    delta = MORRIS_LEVELS / (2 * (MORRIS_LEVELS - 1))
    span = np.array([2.0, 0.09, 0.19])
    x = (mor.points.to_numpy() - np.array([0.0, 0.01, 0.01])) / span
    for t in range(5):
        traj = x[t * 4 : (t + 1) * 4]
        steps = np.diff(traj, axis=0)
        moved = np.abs(steps) > 1e-12
        assert moved.sum(axis=1).tolist() == [1, 1, 1]
        assert sorted(np.argmax(moved, axis=1).tolist()) == [0, 1, 2]
        np.testing.assert_allclose(np.abs(steps[moved]), delta, rtol=1e-12)


def test_design_round_trips_through_json_dict():
    d = make_design({"s_max": (0.0, 2.0)}, model_cls=DEMO, design="lhs", n=4, replicates=2)
    back = design_from_dict(d.to_dict())
    assert back.runs().equals(d.runs())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"params": {"s_mx": [1.0]}}, "Did you mean 's_max'"),
        ({"params": {"s_max": [1.0]}, "design": "lhs2"}, "Valid designs: grid, lhs"),
        ({"params": {"s_max": (0.0, 1.0)}, "design": "sobol", "n": 12}, "power of two"),
        ({"params": {"s_max": (0.0, 1.0)}, "design": "lhs"}, "needs n"),
        ({"params": {"s_max": (1.0, 0.0)}, "design": "lhs", "n": 4}, "lo < hi"),
        ({"params": {"s_max": [1.0, 2.0, 3.0]}, "design": "lhs", "n": 4}, "range (lo, hi)"),
        ({"params": {"s_max": (0.0, 1.0)}}, "also give n >= 2"),
        ({"params": {"s_max": [1.0, 1.0]}}, "Repeated values"),
        ({"params": {"s_max": [1.0]}, "replicates": 0}, "replicates"),
        ({"params": {}}, "at least one parameter"),
    ],
)
def test_bad_designs_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_design(model_cls=DEMO, **kwargs)


def test_parse_param_text():
    got = parse_param_text(["s_max=0.1,0.5,1", "diffusion=1000:5000", "nx=8"])
    assert got == {"s_max": [0.1, 0.5, 1], "diffusion": (1000, 5000), "nx": [8]}
    with pytest.raises(UserError, match="NAME=v1,v2"):
        parse_param_text(["s_max"])
    with pytest.raises(UserError, match="twice"):
        parse_param_text(["s_max=1", "s_max=2"])


def _ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def test_sobol_indices_of_the_ishigami_function():
    # Analytic indices of the Ishigami function (a = 7, b = 0.1, inputs uniform on
    # [-pi, pi]): Ishigami & Homma (1990); values as tabulated in Saltelli et al. (2008),
    # "Global Sensitivity Analysis: The Primer", and Sobol' & Levitan (1999).
    # S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437).
    pi = math.pi
    d = make_design(
        {"s_max": (-pi, pi), "k_up": (-pi, pi), "decay": (-pi, pi)},
        model_cls=DEMO,
        design="sobol",
        n=4096,
        seed=11,
    )
    table = indices(d, _ishigami(d.points.to_numpy()))
    np.testing.assert_allclose(table["S1"], [0.3139, 0.4424, 0.0], atol=0.03)
    np.testing.assert_allclose(table["ST"], [0.5576, 0.4424, 0.2437], atol=0.03)
    assert table["parameter"].tolist() == ["s_max", "k_up", "decay"]


def test_morris_effects_of_a_linear_function_are_exact():
    # For y = sum a_i x_i every elementary effect (in unit-scaled inputs) equals
    # a_i (hi_i - lo_i), so mu = a_i (hi_i - lo_i), mu* = |mu| and sigma = 0 (Morris 1991).
    d = make_design(
        {"s_max": (0.0, 2.0), "k_up": (10.0, 20.0)}, model_cls=DEMO, design="morris", n=6
    )
    x = d.points.to_numpy()
    table = indices(d, 3.0 * x[:, 0] - 0.5 * x[:, 1])
    np.testing.assert_allclose(table["mu"], [6.0, -5.0], rtol=1e-12)
    np.testing.assert_allclose(table["mu_star"], [6.0, 5.0], rtol=1e-12)
    np.testing.assert_allclose(table["sigma"], [0.0, 0.0], atol=1e-12)


def test_indices_reject_grid_designs_and_missing_outputs():
    grid = make_design({"s_max": [0.1, 0.2]}, model_cls=DEMO)
    with pytest.raises(UserError, match="sobol or morris"):
        indices(grid, np.zeros(2))
    d = make_design({"s_max": (0.0, 1.0)}, model_cls=DEMO, design="sobol", n=4)
    y = np.arange(d.n_points, dtype=float)
    y[2] = np.nan
    with pytest.raises(UserError, match="no finite output"):
        indices(d, y)
