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
from biohybrid.geometry import Lattice
from biohybrid.tissue import CachedLUSolver, CGSolver, FieldSpec, FiPySolver, TissueLayer

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


LATTICES = {
    "1d": Lattice((7,), 3.0),
    "2d": Lattice((6, 5), (4.0, 2.5)),
    "3d": Lattice((4, 3, 3), (2.0, 3.0, 5.0)),
}
EDGE_LATTICES = {"2d_thin": Lattice((5, 1), 2.0), "3d_two": Lattice((2, 2, 3), (1.0, 2.0, 3.0))}


def _diffusion(kind: str, lattice: Lattice) -> float | tuple | np.ndarray:
    """A diffusion of each accepted kind for ``lattice`` (random but reproducible)."""
    rng = np.random.default_rng(lattice.n_sites)
    if kind == "isotropic":
        return 800.0
    if kind == "anisotropic":
        return (800.0, 150.0, 40.0)[: lattice.ndim]
    if kind == "per_site":
        d = rng.uniform(50.0, 900.0, lattice.n_sites)
        d[::4] = 0.0  # blocked sites: the harmonic mean must give their faces 0
        return d
    d = rng.uniform(50.0, 900.0, (lattice.n_sites, lattice.ndim))
    d[::5, 0] = 0.0
    return d


def _fipy_assembly(
    system, uptake: np.ndarray, dt: float, coeff=None
) -> tuple[np.ndarray, np.ndarray]:
    """The matrix and right-hand side FiPy's public ``eq.solve`` builds for a zero field.

    Uses ``Term.cacheMatrix``/``cacheRHSvector`` and ``eq.matrix.numpyArray`` (public FiPy
    API) on a fresh variable with the field's constraints, so the layer is untouched.
    """
    import fipy
    from fipy.solvers.scipy import LinearLUSolver

    spec, mesh = system.spec, system.mesh
    var = fipy.CellVariable(mesh=mesh, value=0.0)
    if spec.boundary == "dirichlet":
        var.constrain(spec.boundary_value, mesh.exteriorFaces)
    if coeff is None:
        eq = system.equation(uptake=uptake, source_density=np.zeros(uptake.size))
    else:
        sink = fipy.CellVariable(mesh=mesh, value=spec.decay + uptake)
        eq = fipy.TransientTerm() == fipy.DiffusionTerm(coeff=coeff) - fipy.ImplicitSourceTerm(
            coeff=sink
        )
    eq.cacheMatrix()
    eq.cacheRHSvector()
    eq.solve(var=var, dt=dt, solver=LinearLUSolver())
    return np.asarray(eq.matrix.numpyArray), np.asarray(eq.RHSvector, dtype=float)


ASSEMBLY_CASES = [
    (dim, boundary, kind)
    for dim in sorted(LATTICES)
    for boundary in BOUNDARIES
    for kind in ("isotropic", "anisotropic", "per_site_axis")
] + [
    ("1d", "dirichlet", "per_site"),
    ("3d", "periodic", "per_site"),
    # one site across (a wrap face joins a site to itself) and two (two faces join them)
    ("2d_thin", "periodic", "per_site_axis"),
    ("2d_thin", "dirichlet", "per_site_axis"),
    ("3d_two", "periodic", "per_site_axis"),
]


@pytest.mark.parametrize(("dim", "boundary", "kind"), ASSEMBLY_CASES)
def test_own_assembly_equals_fipy_matrix(dim, boundary, kind):
    # A0 + diag(V u) must be the matrix FiPy assembles for TransientTerm == DiffusionTerm(D_f)
    # − ImplicitSourceTerm(decay + u) [FiPy], with FiPy computing the face coefficient D_f
    # itself (harmonicFaceValue × squared face normal), on Grid1D/2D/3D and periodic grids.
    lattice = {**LATTICES, **EDGE_LATTICES}[dim]
    n = lattice.n_sites
    spec = FieldSpec(
        "a", diffusion=_diffusion(kind, lattice), decay=0.05, boundary=boundary, boundary_value=0.3
    )
    layer = TissueLayer(lattice, [spec])
    system = layer.systems["a"]
    uptake = np.random.default_rng(1).uniform(0, 3.0, n)
    for dt in (0.7, 3.0):  # the second dt reuses the assembled stiffness
        op = system.operator(dt)
        fipy_matrix, fipy_rhs = _fipy_assembly(system, uptake, dt)
        ours = (op.matrix + sp.diags(system.volumes * uptake)).toarray()
        assert np.abs(ours - fipy_matrix).max() < 1e-12 * np.abs(fipy_matrix).max()
        # with the variable at 0, FiPy's right-hand side is the boundary contribution
        assert np.allclose(op.boundary_rhs, fipy_rhs, rtol=1e-13, atol=0)
    assert abs(op.matrix - op.matrix.T).max() == 0.0  # symmetric: CG applies
    assert system.operators_built == 1


@pytest.mark.parametrize("boundary", ["neumann", "dirichlet"])
@pytest.mark.parametrize("dim", ["2d", "3d"])
def test_fipy_rank2_tensor_coefficient_gives_the_same_matrix(dim, boundary):
    # The per-face-orientation scalar coefficient the layer uses for a per-axis D equals
    # FiPy's own anisotropic route, a diagonal rank-2 tensor coefficient [FiPy].
    import warnings

    lattice = LATTICES[dim]
    diffusion = (800.0, 150.0, 40.0)[: lattice.ndim]
    spec = FieldSpec("a", diffusion=diffusion, boundary=boundary, boundary_value=0.3)
    system = TissueLayer(lattice, [spec]).systems["a"]
    uptake = np.zeros(lattice.n_sites)
    with warnings.catch_warnings():  # FiPy's tensor path divides 0/0 off the diagonal
        warnings.simplefilter("ignore", RuntimeWarning)
        tensor, tensor_rhs = _fipy_assembly(system, uptake, 0.5, coeff=[np.diag(diffusion)])
    ours = system.operator(0.5).matrix.toarray()
    assert np.abs(ours - tensor).max() < 1e-12 * np.abs(tensor).max()
    assert np.allclose(system.boundary_rhs, tensor_rhs, rtol=1e-13, atol=0)


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


# ---------------------------------------------------------------------------- N-D lattice


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("dim", sorted(LATTICES))
def test_site_order_is_fipy_cell_order_in_every_dimension(dim, periodic):
    lattice = LATTICES[dim]
    spec = FieldSpec("a", diffusion=1.0, boundary="periodic" if periodic else "neumann")
    layer = TissueLayer(lattice, [spec])
    centres = np.asarray(layer.vars["a"].mesh.cellCenters.value).T
    sites = np.arange(lattice.n_sites)
    assert centres == pytest.approx(lattice.positions(sites), rel=1e-12, abs=1e-12)
    volumes = np.asarray(layer.vars["a"].mesh.cellVolumes)
    assert volumes == pytest.approx(np.full(lattice.n_sites, lattice.site_volume), rel=1e-12)
    values = np.arange(lattice.n_sites, dtype=float)
    layer.set_values("a", values)
    corner = (lattice.shape[0] - 1,) + (0,) * (lattice.ndim - 1)
    assert layer.image("a").shape == lattice.shape
    assert layer.image("a")[corner] == values[lattice.site_of(corner)]
    assert layer.grid("a").shape == lattice.shape[::-1]
    assert np.array_equal(layer.grid("a"), layer.image("a").T)
    assert layer.total("a") == pytest.approx(values.sum() * lattice.site_volume, rel=1e-13)


def test_old_and_lattice_call_forms_agree():
    specs = [_spec("dirichlet")]
    old = TissueLayer(9, 6, 4.0, specs)
    new = TissueLayer(Lattice((9, 6), 4.0), specs)
    kw = TissueLayer(Lattice((9, 6), 4.0), fields=specs, solvers=None, threads=1)
    assert old.lattice == new.lattice and (old.nx, old.ny, old.dx) == (9, 6, 4.0)
    for layer in (old, new, kw):
        layer.set_coupling("a", [3, 20], secretion=[5.0, 1.0], uptake=[0.1, 0.2])
        layer.step(0.5)
    assert np.array_equal(old.values("a"), new.values("a"))
    assert np.array_equal(kw.values("a"), new.values("a"))
    assert old.site_area == old.site_volume == 16.0


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: TissueLayer(5, [FieldSpec("a", diffusion=1.0)]), "takes \\(lattice, fields\\)"),
        (lambda: TissueLayer(Lattice((3,), 1.0)), "takes \\(lattice, fields"),
        (lambda: TissueLayer(Lattice((3,), 1.0), [], None, 1, 5), "takes \\(lattice, fields"),
        (lambda: TissueLayer(Lattice((3,), 1.0), [], threads=0), "threads must be a positive"),
    ],
)
def test_bad_call_forms_raise_user_error(build, match):
    with pytest.raises(UserError, match=match):
        build()


def test_site_volume_and_site_area_by_dimension():
    spec = [FieldSpec("a", diffusion=1.0)]
    assert TissueLayer(Lattice((4,), 2.5), spec).site_volume == 2.5
    assert TissueLayer(Lattice((4, 3), (2.0, 3.0)), spec).site_area == 6.0
    three = TissueLayer(Lattice((4, 3, 2), (2.0, 3.0, 5.0)), spec)
    assert three.site_volume == 30.0
    with pytest.raises(UserError, match="site_area is defined on a 2-D lattice only"):
        _ = three.site_area
    with pytest.raises(UserError, match="site_area is defined on a 2-D lattice only"):
        _ = TissueLayer(Lattice((4,), 2.5), spec).site_area
    with pytest.raises(UserError, match="spacing differs per axis"):
        _ = three.dx


def test_set_values_accepts_site_order_or_grid_layout_only():
    lattice = Lattice((4, 3), 1.0)
    layer = TissueLayer(lattice, [FieldSpec("a", diffusion=1.0)])
    values = np.arange(12.0)
    layer.set_values("a", values.reshape(3, 4))  # the grid layout (ny, nx)
    assert np.array_equal(layer.values("a"), values)
    with pytest.raises(UserError, match=r"shape \(12,\) or \(3, 4\)"):
        layer.set_values("a", values.reshape(4, 3))  # the lattice shape is not accepted
    layer.set_values("a", lattice.flatten(layer.image("a")))
    assert np.array_equal(layer.values("a"), values)


@pytest.mark.parametrize("dim", sorted(LATTICES))
def test_gradient_of_linear_field_is_exact_in_the_interior_in_every_dimension(dim):
    # [FV]: the cell-centred gradient of a linear field is exact away from the boundary.
    lattice = Lattice({"1d": (6,), "2d": (6, 5), "3d": (5, 4, 4)}[dim], (2.0, 3.0, 1.5)[:1])
    if dim != "1d":
        lattice = Lattice(lattice.shape, (2.0, 3.0, 1.5)[: lattice.ndim])
    layer = TissueLayer(lattice, [FieldSpec("a", diffusion=1.0)])
    slope = np.array([0.3, -0.7, 1.1])[: lattice.ndim]
    sites = np.arange(lattice.n_sites)
    layer.set_values("a", lattice.positions(sites) @ slope + 2.0)
    coords = lattice.coordinates(sites)
    interior = sites[np.all((coords > 0) & (coords < np.array(lattice.shape) - 1), axis=1)]
    grad = layer.gradient("a", interior)
    assert grad.shape == (interior.size, lattice.ndim)
    assert grad == pytest.approx(np.tile(slope, (interior.size, 1)), abs=1e-12)


def test_fipy_variable_follows_the_layer_through_public_set_value():
    # The layer keeps its own copy of the values and writes them to FiPy's variable with
    # the public CellVariable.setValue when the variable is read; FiPy must then agree.
    layer = TissueLayer(Lattice((5, 4, 3), 2.0), [FieldSpec("a", diffusion=10.0)])
    layer.set_coupling("a", [7], secretion=[100.0])
    for _ in range(3):
        layer.step(0.1)
        assert np.array_equal(np.asarray(layer.vars["a"].value), layer.values("a"))
    layer.set_values("a", np.zeros(60))
    assert not np.any(np.asarray(layer.vars["a"].value))


# ---------------------------------------------------------------------------- diffusion input


@pytest.mark.parametrize(
    ("diffusion", "match"),
    [
        (-1.0, "diffusion must be >= 0"),
        (float("nan"), "diffusion must be a finite number"),
        (True, "diffusion must be a number"),
        ("fast", "diffusion must be a number"),
        ((1.0, 2.0, 3.0, 4.0), "per-axis diffusion must be 1 to 3 numbers"),
        ((1.0, "x"), "per-axis diffusion must be 1 to 3 numbers"),
        ((1.0, -2.0), "diffusion must be >= 0 on every axis"),
        ((1.0, float("inf")), "diffusion must be finite"),
        (np.array([1.0, np.nan]), "per-site diffusion contains NaN or Inf"),
        (np.array([1.0, -0.5]), "diffusion must be >= 0 at every site"),
        (np.ones((2, 2, 2)), r"shape \(n_sites,\) or \(n_sites, ndim\)"),
    ],
)
def test_bad_diffusion_raises_user_error(diffusion, match):
    with pytest.raises(UserError, match=match):
        FieldSpec("a", diffusion=diffusion)


@pytest.mark.parametrize(
    ("diffusion", "match"),
    [
        ((1.0, 2.0, 3.0), r"needs 2 value\(s\) for the 2-D lattice of shape \[4, 3\], got 3"),
        (np.ones(11), r"must have shape \(12,\) or \(12, 2\).*got \(11,\)"),
        (np.ones((12, 3)), r"must have shape \(12,\) or \(12, 2\).*got \(12, 3\)"),
    ],
)
def test_diffusion_that_does_not_fit_the_lattice_raises_user_error(diffusion, match):
    with pytest.raises(UserError, match=match):
        TissueLayer(Lattice((4, 3), 1.0), [FieldSpec("a", diffusion=diffusion)])


def test_diffusion_kinds_and_spec_equality():
    per_site = np.linspace(0.0, 1.0, 12)
    assert FieldSpec("a", diffusion=2).diffusion_kind == "isotropic"
    assert FieldSpec("a", diffusion=[2.0, 2.0]).diffusion_kind == "isotropic"
    assert FieldSpec("a", diffusion=[2.0, 1.0]).diffusion == (2.0, 1.0)  # a list is per axis
    assert FieldSpec("a", diffusion=(2.0, 1.0)).diffusion_kind == "anisotropic"
    spec = FieldSpec("a", diffusion=per_site)
    assert spec.diffusion_kind == "heterogeneous"
    per_site[0] = 5.0  # the spec keeps its own read-only copy
    assert spec.diffusion[0] == 0.0 and not spec.diffusion.flags.writeable
    assert spec == FieldSpec("a", diffusion=np.linspace(0.0, 1.0, 12))
    assert spec != FieldSpec("a", diffusion=np.linspace(0.0, 2.0, 12))
    assert len({spec, FieldSpec("a", diffusion=np.linspace(0.0, 1.0, 12))}) == 1


# ---------------------------------------------------------------------------- solve residual


def _loose_and_exact(solver) -> tuple[TissueLayer, TissueLayer]:
    """The same 20 × 20 run with ``solver`` and with FiPy's direct solve [FiPy]."""
    lattice = Lattice((20, 20), 10.0)
    rng = np.random.default_rng(4)
    sites = np.arange(lattice.n_sites)
    sec = rng.uniform(0, 100.0, lattice.n_sites)
    spec = FieldSpec("a", diffusion=1000.0, initial=1.0)
    layers = (
        TissueLayer(lattice, [spec], solvers={"a": solver}),
        TissueLayer(lattice, [spec], solvers={"a": FiPySolver()}),
    )
    for step in range(6):  # uptake changes every step: CachedLUSolver runs CG after step 0
        upt = np.full(lattice.n_sites, 0.01) if step == 0 else rng.uniform(0, 5.0, sites.size)
        for layer in layers:
            layer.set_coupling("a", sites, secretion=sec, uptake=upt)
            layer.step(1.0)
    return layers


@pytest.mark.parametrize("make", [CachedLUSolver, CGSolver])
def test_ledger_catches_an_inaccurate_solve_that_mass_balance_hides(make):
    loose, exact = _loose_and_exact(make(rtol=0.3))
    error = np.max(np.abs(loose.values("a") - exact.values("a"))) / np.max(exact.values("a"))
    assert error > 0.05  # the field is badly wrong (18-22 % measured) ...
    assert loose.imbalance("a", relative=True) < 1e-12  # ... the conservative rescale hides it
    assert loose.solve_residual("a") > 0.05  # ... but the solve's own residual does not
    assert loose.ledger["a"].max_residual == loose.solve_residual()
    assert loose.ledger["a"].residual_amount > 0.01 * loose.ledger["a"].scale
    # a direct solve's residual is round-off (backward-stable LU)
    assert exact.solve_residual("a") < 1e-12
    assert exact.ledger["a"].residual_amount < 1e-12 * exact.ledger["a"].scale


@pytest.mark.parametrize("make", [CachedLUSolver, CGSolver])
def test_tight_iterative_solve_has_a_residual_at_its_tolerance(make):
    tight, exact = _loose_and_exact(make(rtol=1e-10))
    assert tight.solve_residual("a") < 1e-9
    assert np.max(np.abs(tight.values("a") - exact.values("a"))) < 1e-8 * exact.values("a").max()
    last = tight.ledger["a"].last
    assert last is not None and last.residual <= tight.solve_residual("a")
    diag = tight.diagnostics()["a"]
    assert diag["max_residual"] == tight.solve_residual("a")
    assert diag["steps"] == 6.0 and abs(diag["imbalance"]) < 1e-12 * tight.ledger["a"].scale


def test_cg_solver_is_the_3d_default_and_reproduces_fipy():
    lattice = Lattice((6, 5, 4), (10.0, 8.0, 12.0))
    spec = FieldSpec("a", diffusion=(800.0, 300.0, 100.0), decay=0.05, initial=1.0)
    fast = TissueLayer(lattice, [spec])
    naive = TissueLayer(lattice, [spec], solvers={"a": FiPySolver()})
    assert isinstance(fast.solvers["a"], CGSolver)
    flat = [FieldSpec("a", diffusion=1.0)]
    assert isinstance(TissueLayer(Lattice((6, 5), 1.0), flat).solvers["a"], CachedLUSolver)
    rng = np.random.default_rng(9)
    for _ in range(4):
        sites, sec, upt = _random_coupling(rng, lattice.n_sites, 30)
        for layer in (fast, naive):
            layer.set_coupling("a", sites, secretion=sec, uptake=upt)
            layer.step(0.5)
        ref = naive.values("a")
        assert np.max(np.abs(fast.values("a") - ref)) < 1e-9 * np.max(np.abs(ref))
    assert fast.imbalance("a", relative=True) < 1e-12


def test_cg_solver_fails_loudly_when_it_does_not_converge():
    from biohybrid.errors import SimulationError

    layer = TissueLayer(
        Lattice((20, 20, 5), 1.0),
        [FieldSpec("a", diffusion=1000.0)],
        solvers={"a": CGSolver(max_iter=2)},
    )
    layer.set_coupling("a", [0], secretion=[1.0])
    with pytest.raises(SimulationError, match="CG did not reach rtol"):
        layer.step(1.0)
    with pytest.raises(UserError, match="rtol must be in"):
        CGSolver(rtol=0.0)
