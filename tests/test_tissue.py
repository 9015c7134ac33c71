"""The tissue layer's interface, its agreement with FiPy, operator caching and mass ledger.

Sources:
    [FiPy] Guyer, Wheeler & Warren (2009), Comput. Sci. Eng. 11(3):6-15: the reference
        discretisation (``eq.solve`` with ``TransientTerm == DiffusionTerm −
        ImplicitSourceTerm + source``) that the cached solver must reproduce.
    [FV] Versteeg & Malalasekera (2007), An Introduction to Computational Fluid Dynamics,
        2nd ed., ch. 8: the implicit finite-volume scheme conserves mass exactly, and the
        cell-centred gradient of a linear field is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from biohybrid.errors import UserError
from biohybrid.tissue import CachedLUSolver, FieldSpec, FiPySolver, TissueLayer

BOUNDARIES = ["neumann", "dirichlet", "periodic"]


def _spec(boundary: str, name: str = "a") -> FieldSpec:
    return FieldSpec(
        name, diffusion=800.0, decay=0.05, boundary=boundary, boundary_value=0.3, initial=1.0
    )


def _random_coupling(rng: np.random.Generator, n_sites: int, n_cells: int = 60):
    sites = rng.integers(0, n_sites, n_cells)  # repeats: several cells per site
    return sites, rng.uniform(0, 500.0, n_cells), rng.uniform(0, 2.0, n_cells)


def test_site_order_matches_mesa_grid_and_fipy_cells():
    nx, ny, dx = 7, 4, 5.0
    layer = TissueLayer(nx, ny, dx, [FieldSpec("a", diffusion=1.0)])
    centres = np.asarray(layer.mesh.cellCenters.value)
    i, j = 3, 2
    site = i + nx * j
    assert centres[:, site] == pytest.approx([(i + 0.5) * dx, (j + 0.5) * dx])
    values = np.arange(nx * ny, dtype=float)
    layer.set_values("a", values)
    assert layer.grid("a")[j, i] == values[site]
    assert layer.sample("a", [site, 0]) == pytest.approx([site, 0.0])
    assert layer.total("a") == pytest.approx(values.sum() * dx * dx)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_cached_operator_equals_fipy_matrix(boundary):
    # A0 + diag(V u) must be the matrix FiPy assembles with the uptake in the
    # ImplicitSourceTerm [FiPy].
    from fipy.solvers.scipy import LinearLUSolver

    spec = FieldSpec("a", diffusion=800.0, decay=0.05, boundary=boundary, boundary_value=0.3)
    layer = TissueLayer(9, 6, 4.0, [spec])  # initial 0, so FiPy's RHS is the boundary term
    system = layer.systems["a"]
    uptake = np.random.default_rng(1).uniform(0, 3.0, 54)
    for dt in (0.7, 3.0):  # the second dt reuses FiPy's steady operator
        op = system.operator(dt)
        eq = system.equation(uptake=uptake, source_density=np.zeros(54))
        solver = eq._prepareLinearSystem(
            var=system.var, solver=LinearLUSolver(), boundaryConditions=(), dt=dt
        )
        fipy_matrix = sp.csr_matrix(solver.matrix.matrix)
        ours = op.matrix + sp.diags(system.volumes * uptake)
        assert abs(ours - fipy_matrix).max() < 1e-12 * abs(fipy_matrix).max()
        # with the variable at 0, FiPy's right-hand side is the boundary contribution
        assert np.allclose(op.boundary_rhs, np.asarray(solver.RHSvector), rtol=1e-13, atol=0)
    assert abs(op.matrix - op.matrix.T).max() == 0.0  # symmetric: CG applies


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_cached_solver_reproduces_fipy_eq_solve(boundary):
    rng = np.random.default_rng(7)
    fast = TissueLayer(12, 10, 10.0, [_spec(boundary)])
    naive = TissueLayer(12, 10, 10.0, [_spec(boundary)], solvers={"a": FiPySolver()})
    for k in range(8):
        sites, sec, upt = _random_coupling(rng, 120)
        if k % 2:  # alternate changed and unchanged coupling
            for layer in (fast, naive):
                layer.set_coupling("a", sites, secretion=sec, uptake=upt)
        for layer in (fast, naive):
            layer.step(0.5)
        ref = naive.values("a")
        # CG on changed uptake stops at ‖r‖ <= 1e-10 ‖b‖ (CachedLUSolver.rtol)
        assert np.max(np.abs(fast.values("a") - ref)) < 1e-9 * np.max(np.abs(ref))
    stats = fast.solvers["a"].stats
    assert stats.cg_solves > 0 and stats.direct_solves > 0


def test_factorisation_is_reused_while_coefficients_and_dt_are_unchanged():
    layer = TissueLayer(20, 20, 10.0, [_spec("neumann")])
    sites = np.arange(0, 400, 7)
    layer.set_coupling("a", sites, secretion=np.ones(sites.size), uptake=np.ones(sites.size))
    for _ in range(10):
        layer.step(0.1)
    stats = layer.solvers["a"].stats
    assert (stats.factorisations, stats.direct_solves, stats.cg_solves) == (1, 10, 0)
    assert layer.systems["a"].operators_built == 1
    layer.step(0.2)  # new dt: new factorisation; FiPy's steady operator is reused
    assert stats.factorisations == 2 and layer.systems["a"].operators_built == 1
    # one cell's uptake changes: CG on the old factors, no refactorisation
    upt = np.ones(sites.size)
    upt[3] = 5.0
    layer.set_coupling("a", sites, secretion=np.ones(sites.size), uptake=upt)
    layer.step(0.2)
    assert stats.factorisations == 2 and stats.cg_solves == 1
    assert stats.cg_iterations <= 2  # a rank-one change: ≤ 2 iterations in exact arithmetic


def test_refactorises_only_when_changed_uptake_persists():
    solver = CachedLUSolver(refactor_after=6)
    layer = TissueLayer(16, 16, 10.0, [_spec("neumann")], solvers={"a": solver})
    rng = np.random.default_rng(2)
    sites = rng.choice(256, 40, replace=False)
    sec = rng.uniform(0, 10.0, 40)
    for _ in range(6):  # uptake changes every step: CG on the first factors, no refactor
        layer.set_coupling("a", sites, secretion=sec, uptake=rng.uniform(0, 0.2, 40))
        layer.step(1.0)
    assert solver.stats.factorisations == 1 and solver.stats.cg_solves == 5
    for _ in range(8):  # the last uptake persists: refactorise once the CG work adds up
        layer.step(1.0)
    assert solver.stats.factorisations == 2
    direct = solver.stats.direct_solves
    layer.step(1.0)
    assert solver.stats.direct_solves == direct + 1
    assert layer.imbalance("a", relative=True) < 1e-12


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_mass_ledger_balances_to_round_off(boundary):
    # [FV]: Δmass = secreted − taken up − decayed − boundary loss, each at the new values.
    rng = np.random.default_rng(11)
    layer = TissueLayer(25, 18, 10.0, [_spec(boundary)])
    for _ in range(30):
        sites, sec, upt = _random_coupling(rng, 25 * 18)
        layer.set_coupling("a", sites, secretion=sec, uptake=upt)
        layer.step(0.3)
    ledger = layer.ledger["a"]
    assert ledger.steps == 30
    assert ledger.secreted > 0 and ledger.taken_up > 0 and ledger.decayed > 0
    assert ledger.initial_mass + ledger.delta_mass == pytest.approx(layer.total("a"), rel=1e-12)
    if boundary == "dirichlet":
        assert ledger.boundary_loss > 0  # field above the boundary value 0.3 drains out
    else:
        assert ledger.boundary_loss == 0.0
    assert abs(ledger.imbalance) < 1e-12 * ledger.scale
    assert layer.imbalance(relative=True) < 1e-12
    assert ledger.as_dict()["steps"] == 30.0


def test_no_flux_conservation_with_secretion_only():
    layer = TissueLayer(30, 30, 10.0, [FieldSpec("a", diffusion=2000.0, initial=0.5)])
    m0 = layer.total("a")
    sites = np.array([0, 31, 31, 899])
    secretion = np.array([10.0, 20.0, 5.0, 1.0])  # amount/time per cell
    layer.set_coupling("a", sites, secretion=secretion)
    for _ in range(25):
        layer.step(0.2)
    assert layer.total("a") == pytest.approx(m0 + 25 * 0.2 * secretion.sum(), rel=1e-13)


def test_secretion_is_amount_per_time_per_cell():
    # The released amount is independent of the grid spacing (units in the module docstring).
    totals = []
    for dx in (5.0, 20.0):
        layer = TissueLayer(8, 8, dx, [FieldSpec("a", diffusion=100.0)])
        layer.set_coupling("a", [10, 10], secretion=[3.0, 4.0])
        layer.step(0.5)
        totals.append(layer.total("a"))
    assert totals == pytest.approx([3.5, 3.5], rel=1e-13)


def test_gradient_of_linear_field_is_exact_in_the_interior():
    nx, ny, dx = 9, 7, 2.0
    layer = TissueLayer(nx, ny, dx, [FieldSpec("a", diffusion=1.0)])
    x, y = np.meshgrid((np.arange(nx) + 0.5) * dx, (np.arange(ny) + 0.5) * dx)
    layer.set_values("a", 0.3 * x - 0.7 * y + 2.0)
    interior = [i + nx * j for j in range(1, ny - 1) for i in range(1, nx - 1)]
    grad = layer.gradient("a", interior)
    assert grad.shape == (len(interior), 2)
    assert grad == pytest.approx(np.tile([0.3, -0.7], (len(interior), 1)), abs=1e-12)
    layer.set_values("a", -2.0 * x)  # FiPy's cached gradient must follow new values
    assert layer.gradient("a", interior) == pytest.approx(
        np.tile([-2.0, 0.0], (len(interior), 1)), abs=1e-12
    )


def test_mixed_periodic_and_bounded_fields_share_site_order():
    specs = [
        FieldSpec("p", diffusion=1.0, boundary="periodic"),
        FieldSpec("d", diffusion=1.0, boundary="dirichlet"),
    ]
    layer = TissueLayer(6, 5, 1.0, specs)
    assert layer.names == ("p", "d")
    assert layer.vars["p"].mesh is not layer.vars["d"].mesh
    site = 2 + 6 * 3
    layer.set_coupling("p", [site], secretion=[1.0])
    layer.set_coupling("d", [site], secretion=[1.0])
    layer.step(0.1)
    assert np.argmax(layer.values("p")) == np.argmax(layer.values("d")) == site
    # the periodic field wraps in y (5 rows, source in row 3): rows 2 and 4 are both one
    # step away, rows 0 and 1 both two; the Dirichlet field is lower at the edge row 4
    p, d = layer.grid("p"), layer.grid("d")
    assert p[4, 2] == pytest.approx(p[2, 2], rel=1e-12)
    assert p[0, 2] == pytest.approx(p[1, 2], rel=1e-12)
    assert d[4, 2] < d[2, 2]


def test_empty_coupling_and_sources_override():
    layer = TissueLayer(5, 5, 1.0, [FieldSpec("a", diffusion=1.0)])
    layer.set_coupling("a", np.array([], dtype=np.int64))
    layer.step(0.1, sources={"a": (np.full(25, 2.0), np.zeros(25))})
    assert layer.total("a") == pytest.approx(25 * 2.0 * 0.1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda L: L.set_coupling("atpp", [0]), "unknown tissue field 'atpp'.*Did you mean 'atp'"),
        (lambda L: L.set_coupling("atp", [25]), r"sites must lie in \[0, 25\)"),
        (lambda L: L.set_coupling("atp", [0.5]), "sites must be integers"),
        (lambda L: L.set_coupling("atp", [0, 1], uptake=[1.0, -1.0]), "uptake.*>= 0"),
        (lambda L: L.set_coupling("atp", [0, 1], secretion=[1.0]), "one value per cell"),
        (lambda L: L.set_coupling("atp", [0], secretion=[np.nan]), "NaN or Inf"),
        (lambda L: L.step(0.0), "dt must be a positive"),
        (lambda L: L.set_values("atp", np.ones(3)), "25 finite numbers"),
    ],
)
def test_bad_input_raises_user_error(call, match):
    layer = TissueLayer(5, 5, 1.0, [FieldSpec("atp", diffusion=1.0)])
    with pytest.raises(UserError, match=match):
        call(layer)


def test_bad_declarations_raise_user_error():
    with pytest.raises(UserError, match="boundary must be one of"):
        FieldSpec("a", diffusion=1.0, boundary="robin")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="diffusion must be >= 0"):
        FieldSpec("a", diffusion=-1.0)
    with pytest.raises(UserError, match="declared twice"):
        TissueLayer(3, 3, 1.0, [FieldSpec("a", diffusion=1.0), FieldSpec("a", diffusion=2.0)])
    with pytest.raises(UserError, match="dx must be a positive"):
        TissueLayer(3, 3, 0.0, [FieldSpec("a", diffusion=1.0)])


def test_concurrent_field_solves_give_identical_results():
    specs = [_spec("neumann", "a"), _spec("dirichlet", "b"), _spec("periodic", "c")]
    layers = [TissueLayer(15, 12, 10.0, specs, threads=t) for t in (1, 2)]
    rng = np.random.default_rng(5)
    for _ in range(4):
        coupling = {name: _random_coupling(rng, 180) for name in "abc"}
        for layer in layers:
            for name, (sites, sec, upt) in coupling.items():
                layer.set_coupling(name, sites, secretion=sec, uptake=upt)
            layer.step(0.4)
    for name in "abc":
        assert np.array_equal(layers[0].values(name), layers[1].values(name))
    assert layers[1]._executor is not None  # the pool was used
