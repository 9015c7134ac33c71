"""Cell-to-cell coupling operator (biohybrid.coupling) against analytic results.

References for the numbers used here:

- [SBP] Summation by parts on the lattice: for ``du_x/dt = Σ_o g_o (u_{x+o} − u_x)`` on an
  unbounded lattice, ``d/dt Σ_x x_a² u_x = Σ_o g_o o_a² Σ_x u_x``, so the variance of a
  pulse along axis ``a`` grows as ``t Σ_o g_o o_a²`` (sites²): ``2 g_a t`` for the
  von Neumann neighbourhood. Every scheme here has a one-step Fourier symbol
  ``R(dt·ĝ(k))`` with ``R(z) = 1 − z + O(z²)`` and ``ĝ(k) = Σ_o g_o (1 − cos k·o)``, so
  ``log R = −(dt/2) Σ_o g_o (k·o)² + O(k⁴)``: the discrete-time variance (a cumulant of
  a convolution power) is the same ``t Σ_o g_o o_a²`` exactly, not only as dt → 0.
- [DCT] Strang 1999, "The discrete cosine transform", SIAM Rev. 41:135, §3: the
  free-end (Neumann) path Laplacian on N nodes has eigenvectors
  ``cos(π k (i + ½) / N)`` with eigenvalues ``2 (1 − cos(π k / N))``.
- [HW] Hairer & Wanner, Solving ODEs II (2nd ed.), §IV.3: stability functions
  ``R(z) = 1/(1−z)`` (implicit Euler) and ``(1 + z/2)/(1 − z/2)`` (trapezoidal rule) for
  ``y' = λy``, ``z = hλ``; A-stability and L-stability (``R(∞) = 0``) definitions.
- [HS] Hosea & Shampine 1996, "Analysis and implementation of TR-BDF2", Appl. Numer.
  Math. 20:21, §2: ``γ = 2 − √2``; 2nd order, L-stable; local truncation error
  ``C h³ y'''`` with ``C = (−3γ² + 4γ − 2) / (12 (2 − γ))``.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import scipy.sparse as sp
from mesa.discrete_space import OrthogonalMooreGrid
from scipy.sparse.linalg import expm_multiply, splu

from biohybrid.coupling import SCHEMES, CellCoupling, harmonic_mean
from biohybrid.errors import SimulationError, UserError
from biohybrid.geometry import Lattice

# ---------------------------------------------------------------------------------------
# Regression: the astrocyte model's gap-junction step, copied verbatim (models/astrocyte/
# model.py `_gap_junction_step` and biohybrid/model.py `HybridModel.adjacency` at 90027e6).


def old_mesa_adjacency(nx: int, ny: int) -> sp.csr_matrix:
    """`HybridModel.adjacency` of a Moore grid, built from Mesa's cell connections."""
    grid = OrthogonalMooreGrid((nx, ny), torus=False, capacity=1, random=random.Random(0))
    cells_by_site = [grid[(i, j)] for j in range(ny) for i in range(nx)]
    site_of_cell = {id(c): s for s, c in enumerate(cells_by_site)}
    src, dst = [], []
    for s, cell in enumerate(cells_by_site):
        for other in cell.connections.values():
            src.append(s)
            dst.append(site_of_cell[id(other)])
    n = nx * ny
    data = np.ones(len(src))
    return sp.csr_matrix((data, (src, dst)), shape=(n, n))


class OldGapJunction:
    """The astrocyte model's `_gap_junction_step` on an IP3 column, with its cache."""

    def __init__(self, adjacency: sp.csr_matrix, k_gj: float) -> None:
        self._adjacency, self.k_gj = adjacency, k_gj
        self._gj_key, self._gj_rows = None, None

    def step(self, sites: np.ndarray, ip3: np.ndarray, dt: float) -> np.ndarray:
        rows = sites
        key = (rows.size, dt, self.k_gj)
        if key != self._gj_key or not np.array_equal(rows, self._gj_rows):
            A = self._adjacency[sites][:, sites]
            L = sp.diags(np.asarray(A.sum(axis=1)).ravel()) - A
            M = (sp.identity(rows.size, format="csc") + dt * self.k_gj * L).tocsc()
            self._gj_lu = splu(M, permc_spec="MMD_AT_PLUS_A")  # symmetric: less fill
            self._gj_key, self._gj_rows = key, rows
        return self._gj_lu.solve(ip3)


# k_gj = 1/s and dt = 0.25 s are the astrocyte defaults; 0.1 and 1/3 are values for which
# any other construction of the matrix (e.g. summing per-junction g) differs in the last bit.
@pytest.mark.parametrize("k_gj", [1.0, 0.1, 1 / 3])
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_backward_euler_moore_is_bit_identical_to_the_astrocyte_step(
    missing: float, k_gj: float
) -> None:
    nx, ny = 13, 9
    rng = np.random.default_rng(1)
    sites = np.arange(nx * ny)
    if missing:
        sites = sites[rng.random(sites.size) >= missing]
        sites = rng.permutation(sites)  # table rows need not be in site order
    old = OldGapJunction(old_mesa_adjacency(nx, ny), k_gj=k_gj)
    lat = Lattice((nx, ny), 7.3)
    new = CellCoupling(lat, conductance=k_gj, neighbourhood="moore", sites=sites)
    u_old = u_new = rng.random(sites.size) * 0.4
    for dt in (0.25, 0.25, 0.35, 1.1, 1.1):  # cached factors, then refactorisations
        u_old = old.step(sites, u_old, dt)
        u_new = new.step(u_new, dt)
        assert u_new.tobytes() == u_old.tobytes()
    assert new.counters["factorisations"] == 3
    # the cells change (a death, then the same population again)
    sites2 = sites[1:]
    u_old = old.step(sites2, u_old[1:], 1.1)
    new.set_cells(sites2)
    u_new = new.step(u_new[1:], 1.1)
    assert u_new.tobytes() == u_old.tobytes()


def test_several_species_match_one_at_a_time_bitwise() -> None:
    lat = Lattice((11, 7), 1.0)
    rng = np.random.default_rng(2)
    sites = rng.permutation(lat.n_sites)[:60]
    g = rng.uniform(0.5, 2.0, size=(60, 2))
    for scheme in SCHEMES:
        cc = CellCoupling(lat, conductance=1.0, neighbourhood="moore", scheme=scheme)
        cc.set_cells(sites, conductance=g)
        u = rng.random((60, 3))
        both = cc.step(u, 0.4)
        assert both.shape == (60, 3)
        for m in range(3):
            assert cc.step(u[:, m], 0.4).tobytes() == both[:, m].tobytes()


# ---------------------------------------------------------------------------------------
# Anisotropic spread of a pulse [SBP]


def variance_rate(lat: Lattice, cc: CellCoupling) -> np.ndarray:
    """d/dt of a centred pulse's variance per axis, from the operator: Σ x² (−L δ) [SBP]."""
    centre = lat.site_of(tuple(n // 2 for n in lat.shape))
    x = lat.positions(np.arange(lat.n_sites)) - lat.positions([centre])
    delta = np.zeros(lat.n_sites)
    delta[centre] = 1.0
    return x.T**2 @ -(cc.laplacian() @ delta)


def pulse_variance(lat: Lattice, cc: CellCoupling, t: float, dt: float) -> np.ndarray:
    """A centred unit pulse's variance per axis (µm²) after stepping to t."""
    centre = tuple(n // 2 for n in lat.shape)
    u = np.zeros(lat.n_sites)
    u[lat.site_of(centre)] = 1.0
    for _ in range(round(t / dt)):
        u = cc.step(u, dt)
    x = lat.positions(np.arange(lat.n_sites)) - lat.positions([lat.site_of(centre)])
    return (u[:, None] * x**2).sum(axis=0) / u.sum()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_pulse_variance_grows_2_g_h2_t_along_each_axis_2d(scheme: str) -> None:
    h, g, t = (2.0, 5.0), (1.0, 0.25), 6.0
    lat = Lattice((61, 41), h)
    cc = CellCoupling(lat, conductance=g, scheme=scheme)
    var = pulse_variance(lat, cc, t, dt=0.5)
    expected = [2 * g[a] * h[a] ** 2 * t for a in range(2)]  # [SBP], µm²
    np.testing.assert_allclose(variance_rate(lat, cc), np.array(expected) / t, rtol=1e-13)
    np.testing.assert_allclose(var, expected, rtol=1e-9)


def test_pulse_variance_3d_von_neumann_anisotropic() -> None:
    # t = 1: the pulse's tail at the walls (≥ 8 sites away) is ~e^{−2g t} I_8(2g t) < 1e-9
    h, g, t = (1.0, 2.0, 3.0), (1.0, 0.5, 0.25), 1.0
    lat = Lattice((29, 21, 21), h)
    cc = CellCoupling(lat, conductance=g, scheme="tr-bdf2")
    var = pulse_variance(lat, cc, t, dt=0.25)
    expected = [2 * g[a] * h[a] ** 2 * t for a in range(3)]  # [SBP]
    np.testing.assert_allclose(variance_rate(lat, cc), np.array(expected) / t, rtol=1e-13)
    np.testing.assert_allclose(var, expected, rtol=1e-9)


def test_pulse_variance_moore_isotropic_2d_and_3d() -> None:
    # [SBP] with g on all 3^d − 1 neighbours: 3^(d−1) neighbours per side move ±1 along a,
    # so the variance grows 2·3^(d−1)·g·t sites² per axis. The stepped pulse's tail reaches
    # the 3-D walls at ~1e-8 (reflected: rtol 1e-7); the operator's rate is exact.
    for shape, g, t, rtol in (((41, 41), 0.5, 1.0, 1e-9), ((21, 21, 21), 0.1, 0.5, 1e-7)):
        d = len(shape)
        lat = Lattice(shape, 1.5)
        cc = CellCoupling(lat, conductance=g, neighbourhood="moore", scheme="crank-nicolson")
        expected = 2 * 3 ** (d - 1) * g * 1.5**2
        np.testing.assert_allclose(variance_rate(lat, cc), expected, rtol=1e-13)
        var = pulse_variance(lat, cc, t, dt=0.25)
        np.testing.assert_allclose(var, expected * t, rtol=rtol)


def test_moore_diagonal_rules_set_the_spread() -> None:
    # [SBP] with the documented diagonal rules, 2-D: along x the ±x faces carry g_x and the
    # four (±1, ±1) diagonals carry (g_x+g_y)/2 (mean rule) or g_diag, so
    # Var_x / t = 2 g_x + 4 g_xy.
    g, t = (1.0, 0.2), 1.0
    lat = Lattice((41, 41), 1.0)
    mean_rule = CellCoupling(lat, conductance=g, neighbourhood="moore", scheme="tr-bdf2")
    gxy = (g[0] + g[1]) / 2
    expected = np.array([2 * g[0] + 4 * gxy, 2 * g[1] + 4 * gxy])
    np.testing.assert_allclose(variance_rate(lat, mean_rule), expected, rtol=1e-13)
    np.testing.assert_allclose(pulse_variance(lat, mean_rule, t, dt=0.25), expected * t, rtol=1e-9)
    fixed = CellCoupling(lat, conductance=g, neighbourhood="moore", g_diag=0.05, scheme="tr-bdf2")
    expected = np.array([2 * g[0] + 4 * 0.05, 2 * g[1] + 4 * 0.05])
    np.testing.assert_allclose(variance_rate(lat, fixed), expected, rtol=1e-13)
    np.testing.assert_allclose(pulse_variance(lat, fixed, t, dt=0.25), expected * t, rtol=1e-9)


# ---------------------------------------------------------------------------------------
# Operator structure, heterogeneity, conservation


def heterogeneous(neighbourhood: str, seed: int = 3) -> tuple[CellCoupling, np.ndarray]:
    """A 2-D tissue with missing cells, per-cell per-axis g with zeros, and capacities."""
    rng = np.random.default_rng(seed)
    lat = Lattice((15, 12), (1.0, 2.0))
    sites = rng.permutation(np.flatnonzero(rng.random(lat.n_sites) < 0.75))
    n = sites.size
    g = rng.lognormal(0.0, 0.7, size=(n, 2))
    g[rng.random(n) < 0.15] = 0.0  # non-conducting cells
    g[rng.random(n) < 0.1, 1] = 0.0  # cells conducting along x only
    cc = CellCoupling(lat, conductance=1.0, neighbourhood=neighbourhood)
    cc.set_cells(sites, conductance=g, capacity=rng.uniform(0.5, 2.0, n))
    return cc, g


def test_two_cells_harmonic_mean_and_capacity_decay() -> None:
    # Two cells, g = 1 and 3: series junction 2·1·3/(1+3) = 1.5; with capacities c1, c2 the
    # difference decays as exp(−g12 (1/c1 + 1/c2) t) and c1 u1 + c2 u2 is constant.
    lat = Lattice((2,), 1.0)
    cc = CellCoupling(lat, conductance=1.0, scheme="tr-bdf2")
    cc.set_cells([0, 1], conductance=[1.0, 3.0], capacity=[2.0, 0.5])
    np.testing.assert_allclose(cc.laplacian().toarray(), [[1.5, -1.5], [-1.5, 1.5]], rtol=1e-15)
    # du/dt = (1/c_i) g12 (u_j − u_i) at u = (1, 0): (−1.5/2, +1.5/0.5)
    np.testing.assert_allclose(cc.derivative([1.0, 0.0]), [-0.75, 3.0], rtol=1e-15)
    u = np.array([1.0, 0.0])
    dt, n = 0.001, 1000  # global error ≈ n·|C|·(rate·dt)³ ≈ 2e-6 [HS]
    for _ in range(n):
        u = cc.step(u, dt)
    rate = 1.5 * (1 / 2.0 + 1 / 0.5)
    assert u[0] - u[1] == pytest.approx(math.exp(-rate * dt * n), rel=1e-4)
    assert 2.0 * u[0] + 0.5 * u[1] == pytest.approx(2.0, rel=1e-14)
    hm = harmonic_mean(np.array([0.0, 0.0, 2.0, 1.0]), np.array([0.0, 5.0, 2.0, 3.0]))
    np.testing.assert_allclose(hm, [0.0, 0.0, 2.0, 1.5], rtol=1e-15)


@pytest.mark.parametrize("neighbourhood", ["von_neumann", "moore"])
def test_laplacian_symmetric_zero_row_sums_blocked_cells(neighbourhood: str) -> None:
    cc, g = heterogeneous(neighbourhood)
    L = cc.laplacian()
    assert (L != L.T).nnz == 0  # exactly symmetric
    np.testing.assert_allclose(np.asarray(L.sum(axis=1)).ravel(), 0.0, atol=1e-12)
    dense = L.toarray()
    blocked = np.flatnonzero(~np.any(g > 0, axis=1))
    assert blocked.size > 0
    assert not np.any(dense[blocked]) and not np.any(dense[:, blocked])
    # off-diagonals are −g_ij ≤ 0 only between neighbouring cells
    off = dense - np.diag(np.diag(dense))
    assert np.all(off <= 0)
    nb = cc.lattice.neighbours(cc.sites, neighbourhood)
    i, j = np.nonzero(off)
    assert np.all((nb[i] == cc.sites[j][:, None]).any(axis=1))


@pytest.mark.parametrize("neighbourhood", ["von_neumann", "moore"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_conservation_and_isolated_cells(scheme: str, neighbourhood: str) -> None:
    cc, g = heterogeneous(neighbourhood)
    cc.scheme = scheme
    c = cc.capacity
    rng = np.random.default_rng(4)
    u0 = rng.random(cc.n_cells)
    u = u0
    for _ in range(20):
        u = cc.step(u, 0.7)
    assert abs(c @ u - c @ u0) <= 1e-13 * (c @ u0)
    blocked = ~np.any(g > 0, axis=1)
    np.testing.assert_allclose(u[blocked], u0[blocked], rtol=1e-15)
    assert np.max(np.abs(u[~blocked] - u0[~blocked])) > 0.1  # the others did exchange


# ---------------------------------------------------------------------------------------
# Time accuracy and stability


def exact(cc: CellCoupling, u0: np.ndarray, t: float) -> np.ndarray:
    """u(t) = expm(−t C⁻¹L) u0 (scipy's expm_multiply)."""
    A = sp.diags(1.0 / cc.capacity) @ cc.laplacian()
    return expm_multiply(-t * A, u0)


@pytest.mark.parametrize(
    ("scheme", "order"), [("backward-euler", 1), ("crank-nicolson", 2), ("tr-bdf2", 2)]
)
def test_order_of_accuracy_in_dt(scheme: str, order: int) -> None:
    cc, _ = heterogeneous("moore", seed=5)
    cc.scheme = scheme
    rng = np.random.default_rng(6)
    u0 = rng.random(cc.n_cells)
    T = 1.0
    ref = exact(cc, u0, T)
    errors = []
    for n in (16, 32, 64, 128):
        u = u0
        for _ in range(n):
            u = cc.step(u, T / n)
        errors.append(np.max(np.abs(u - ref)))
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(observed - order) < 0.1), (errors, observed)


def test_trbdf2_local_error_constant_matches_hosea_shampine() -> None:
    # One step on the 1-D cable's slowest mode (y' = −λy, z = hλ): the [HS] local error
    # y(t+h) − y_{n+1} = C h³ y''' = −C z³ y, so R(z) − e^{−z} → C z³ as z → 0.
    gam = 2 - math.sqrt(2)
    C = (-3 * gam**2 + 4 * gam - 2) / (12 * (2 - gam))  # [HS] ≈ −0.0404
    N, g = 32, 1.0
    lat = Lattice((N,), 1.0)
    cc = CellCoupling(lat, conductance=g, scheme="tr-bdf2")
    i = np.arange(N)
    k = 1
    v = np.cos(np.pi * k * (i + 0.5) / N)
    lam = 2 * g * (1 - np.cos(np.pi * k / N))  # [DCT]
    for z in (0.01, 0.005):
        R = (cc.step(v, z / lam) @ v) / (v @ v)
        assert (R - math.exp(-z)) / z**3 == pytest.approx(C, rel=0.02)


def test_l_stability_checkerboard_huge_dt() -> None:
    lat = Lattice((16, 12), 1.0)
    ij = lat.coordinates(np.arange(lat.n_sites))
    chequer = (-1.0) ** ij.sum(axis=1)  # zero mean on an even grid: no conserved part
    for scheme, limit in (("backward-euler", 0.0), ("tr-bdf2", 0.0), ("crank-nicolson", 1.0)):
        cc = CellCoupling(lat, conductance=1.0, scheme=scheme)
        ratio = np.linalg.norm(cc.step(chequer, 1e8)) / np.linalg.norm(chequer)
        # [HW]: L-stable R(∞) = 0; the trapezoidal rule has |R(∞)| = 1
        assert ratio == pytest.approx(limit, abs=1e-5), scheme


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cable_cosine_modes_decay_at_the_analytic_rate(scheme: str) -> None:
    N, g = 40, 0.8
    lat = Lattice((N,), 10.0)
    cc = CellCoupling(lat, conductance=g, scheme=scheme)
    L = cc.laplacian()
    i = np.arange(N)
    ks = np.array([1, 5, 20, 39])
    V = np.cos(np.pi * ks[None, :] * (i[:, None] + 0.5) / N)
    lam = 2 * g * (1 - np.cos(np.pi * ks / N))  # [DCT]
    np.testing.assert_allclose(L @ V, V * lam, atol=1e-12)
    # one step of each mode is amplified by the scheme's stability function [HW], [HS]
    dt = 0.3
    z = dt * lam
    R = {
        "backward-euler": 1 / (1 + z),
        "crank-nicolson": (1 - z / 2) / (1 + z / 2),
        "tr-bdf2": np.exp(-z),  # only up to its O(z³) local error, checked below
    }[scheme]
    amp = np.einsum("ik,ik->k", cc.step(V, dt), V) / np.einsum("ik,ik->k", V, V)
    tol = 0.05 * z**3 if scheme == "tr-bdf2" else 1e-12
    assert np.all(np.abs(amp - R) <= tol + 1e-13)
    # and over time the slow modes follow exp(−λ t)
    u = V[:, :2]
    for _ in range(100):
        u = cc.step(u, 0.05)
    amp_t = np.einsum("ik,ik->k", u, V[:, :2]) / np.einsum("ik,ik->k", V[:, :2], V[:, :2])
    rtol = 2e-2 if scheme == "backward-euler" else 1e-4
    np.testing.assert_allclose(amp_t, np.exp(-lam[:2] * 5.0), rtol=rtol)


# ---------------------------------------------------------------------------------------
# Caching and input validation


def test_factorisation_cache_follows_sites_dt_conductance() -> None:
    lat = Lattice((8, 8), 1.0)
    cc = CellCoupling(lat, conductance=1.0, scheme="tr-bdf2")
    u = np.linspace(0, 1, 64)
    cc.step(u, 0.1)
    cc.step(u, 0.1)
    assert cc.counters["factorisations"] == 1
    assert cc.counters["solves"] == 4  # two stages per TR-BDF2 step
    cc.set_cells(np.arange(64))  # same cells: factors kept
    cc.set_conductance(1.0)
    cc.step(u, 0.1)
    assert cc.counters["factorisations"] == 1
    cc.step(u, 0.2)
    assert cc.counters["factorisations"] == 2
    cc.set_conductance((1.0, 2.0))
    cc.step(u, 0.2)
    assert cc.counters["factorisations"] == 3
    cc.set_cells(np.arange(63))
    cc.step(u[:63], 0.2)
    assert cc.counters["factorisations"] == 4
    cc.set_capacity(2.0)
    cc.step(u[:63], 0.2)
    assert cc.counters["factorisations"] == 5


def test_zero_conductance_everywhere_is_the_identity() -> None:
    lat = Lattice((5, 5), 1.0)
    cc = CellCoupling(lat, conductance=0.0, neighbourhood="moore")
    u = np.arange(25.0)
    assert np.array_equal(cc.step(u, 1.0), u)


def test_bad_input_is_a_user_error() -> None:
    lat = Lattice((4, 3), 1.0)
    with pytest.raises(UserError, match="backward-euler, crank-nicolson, tr-bdf2"):
        CellCoupling(lat, conductance=1.0, scheme="rk4")
    with pytest.raises(UserError, match="von_neumann, moore"):
        CellCoupling(lat, conductance=1.0, neighbourhood="hex")
    for bad in (-1.0, float("nan"), float("inf"), (1.0, -2.0)):
        with pytest.raises(UserError, match="finite and >= 0"):
            CellCoupling(lat, conductance=bad)
    with pytest.raises(UserError, match="one per axis"):
        CellCoupling(lat, conductance=(1.0, 2.0, 3.0))
    with pytest.raises(UserError, match="g_diag"):
        CellCoupling(lat, conductance=1.0, g_diag=0.5)
    cc = CellCoupling(lat, conductance=1.0)
    with pytest.raises(UserError, match="unique"):
        cc.set_cells([0, 1, 1])
    with pytest.raises(UserError, match=r"0\.\.11"):
        cc.set_cells([0, 12])
    with pytest.raises(UserError, match="whole site numbers"):
        cc.set_cells([0.0, 1.0])
    with pytest.raises(UserError, match=r"shape \(12,\) or \(12, 2\)"):
        cc.set_conductance(np.ones(5), per_cell=True)
    with pytest.raises(UserError, match="capacity must be > 0"):
        cc.set_capacity(0.0)
    with pytest.raises(UserError, match=r"shape \(12,\)"):
        cc.set_capacity(np.ones(3))
    for dt in (0.0, -1.0, float("nan")):
        with pytest.raises(UserError, match="dt must be"):
            cc.step(np.ones(12), dt)
    with pytest.raises(UserError, match=r"values must have shape \(12,\)"):
        cc.step(np.ones(11), 0.1)
    cc.set_conductance(np.ones(12), per_cell=True)
    with pytest.raises(UserError, match="pass conductance="):
        cc.set_cells(np.arange(11))
    with pytest.raises(UserError, match=r"shape \(11,\)"):  # a bad array leaves cells as they were
        cc.set_cells(np.arange(11), conductance=np.ones(12))
    assert cc.n_cells == 12
    u = np.ones(12)
    u[3] = np.nan
    with pytest.raises(SimulationError, match="NaN"):
        cc.step(u, 0.1)
