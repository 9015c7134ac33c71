"""Validation of the lattice motility kernel against random-walk theory.

Sources:
    [CPB] Codling, E. A., Plank, M. J. & Benhamou, S. (2008). Random walk models in biology.
        J. R. Soc. Interface 5:813-834, §2: a walk of n i.i.d. steps of mean 0 has
        E|X_n|² = n·E|step|², i.e. MSD = 2·d·D·t; with mean step m, E[X_n] = n·m.
    [OS] Othmer, H. G. & Stevens, A. (1997). SIAM J. Appl. Math. 57:1044-1081: biased lattice
        jumps → Keller–Segel drift; a chain whose forward/backward rates between neighbours
        are in the ratio exp(χ Δc) satisfies detailed balance with π ∝ exp(χ c).

The analytic values below are computed from the walk's definition (one hop with probability
p = 1 − exp(−rate·dt) per step, to an offset drawn ∝ exp(χ ∇c·Δx/2)), in closed form
written out here, not from the helpers under test. Tolerances are 4 standard errors of the
estimate (two-sided p ≈ 6e-5 per check); each validation also asserts that a plausible
wrong model (e.g. the uncorrected D = rate·h²/(2d)) lies outside the same band, so the test
has the power to fail. Movers start far apart so exclusion between them is negligible
(density ≤ 1/400) wherever a non-interacting result is compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from biohybrid.cells.motility import (
    Motility,
    drift_velocity,
    field_gradient,
    hop_probability,
    lattice_diffusion,
    propose_moves,
)
from biohybrid.errors import UserError
from biohybrid.geometry import Lattice

RATE = 2.0  # hops per unit time
DT = 0.25  # rate·dt = 0.5: p = 1 − e^−0.5 = 0.3935, 21% below rate·dt, so the correction shows
P_HOP = 1.0 - np.exp(-RATE * DT)
Z4 = 4.0  # tolerance in standard errors


def _grid_sites(lattice: Lattice, start: int, step: int, count: int) -> np.ndarray:
    """Sites on a regular sub-grid: coordinates start + step·k, k < count, on every axis."""
    axes = [start + step * np.arange(count)] * lattice.ndim
    mesh = np.meshgrid(*axes, indexing="ij")
    return lattice.sites_of(np.stack([m.ravel() for m in mesh], axis=1))


def _walk(lattice, sites, n_steps, rng, *, rate=RATE, dt=DT, record=(), **kw):
    """Run the kernel n_steps with the movers as the only blockers; return positions."""
    occupied = np.zeros(lattice.n_sites, dtype=bool)
    occupied[sites] = True
    out = {}
    for step in range(1, n_steps + 1):
        new = propose_moves(lattice, sites, occupied, rate, dt, rng, **kw)
        occupied[sites] = False
        occupied[new] = True
        sites = new
        if step in record:
            out[step] = lattice.positions(sites)
    return sites, out


# ------------------------------------------------------------------ one-step hop law
@pytest.mark.parametrize("neighbourhood", ["von_neumann", "moore"])
def test_one_step_hop_frequencies_match_the_biased_law(neighbourhood):
    # Movers 3 sites apart never share or block a target, so one step is N independent
    # trials of the hop law: hop with p, then offset k with w_k ∝ exp(χ g·Δx_k/2).
    lat = Lattice((120, 120), (2.0, 3.0))
    sites = _grid_sites(lat, 1, 3, 40)
    chi, g = 1.5, np.array([0.2, -0.1])  # 1/conc, conc/µm
    rng = np.random.default_rng(11)
    occupied = np.zeros(lat.n_sites, dtype=bool)
    occupied[sites] = True
    counts = None
    trials = 6
    for _ in range(trials):
        new = propose_moves(
            lat,
            sites,
            occupied,
            RATE,
            DT,
            rng,
            gradient=g,
            chemotaxis=chi,
            neighbourhood=neighbourhood,
        )
        d = lat.coordinates(new) - lat.coordinates(sites)
        keys = [tuple(r) for r in d]
        if counts is None:
            counts = {}
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
    n = sites.size * trials
    if neighbourhood == "von_neumann":
        offs = [(1, 0), (0, 1), (-1, 0), (0, -1)]
    else:
        offs = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]
    h = np.array(lat.spacing)
    w = np.array([np.exp(0.5 * chi * g @ (np.array(o) * h)) for o in offs])
    w /= w.sum()
    expected = np.array([1 - P_HOP, *(P_HOP * w)]) * n
    observed = np.array([counts.get((0, 0), 0), *(counts.get(o, 0) for o in offs)])
    assert observed.sum() == n  # nothing but stays and unit offsets
    assert stats.chisquare(observed, expected).pvalue > 1e-4, (observed, expected)
    # power: the unbiased law (or the full exponent χΔc) is rejected by the same data
    for wrong in (np.full(len(offs), 1 / len(offs)), w**2 / (w**2).sum()):
        wrong_exp = np.array([1 - P_HOP, *(P_HOP * wrong)]) * n
        assert stats.chisquare(observed, wrong_exp).pvalue < 1e-6


# ------------------------------------------------------------------ diffusion
@pytest.mark.parametrize(
    ("shape", "spacing", "start", "step", "count", "n_steps"),
    [
        ((202_000,), 3.0, 1_000, 100, 2000, 1000),  # 1-D: 100 sites apart vs rms 20
        ((1100, 1100), 3.0, 60, 20, 50, 600),  # 2-D: 2500 walkers, density 1/400
        ((150, 150, 150), 1.5, 20, 10, 12, 400),  # 3-D: 1728 walkers, density 1/1000
    ],
)
def test_unbiased_msd_grows_as_2_d_diffusion_t(shape, spacing, start, step, count, n_steps):
    lat = Lattice(shape, spacing)
    d = lat.ndim
    sites = _grid_sites(lat, start, step, count)
    x0 = lat.positions(sites)
    checkpoints = (n_steps // 4, n_steps // 2, n_steps)
    _, pos = _walk(lat, sites, n_steps, np.random.default_rng(d), record=checkpoints)
    # [CPB]: MSD = n·p·h² (each hop moves one spacing), = 2·d·D·t with D = (p/dt)·h²/(2d)
    d_exact = P_HOP / DT * spacing**2 / (2 * d)
    d_naive = RATE * spacing**2 / (2 * d)  # small-dt limit, 27% too large at rate·dt = 0.5
    for n in checkpoints:
        r2 = np.sum((pos[n] - x0) ** 2, axis=1)
        msd, se = r2.mean(), r2.std(ddof=1) / np.sqrt(r2.size)
        t = n * DT
        assert abs(msd - 2 * d * d_exact * t) < Z4 * se, (n, msd, 2 * d * d_exact * t, se)
        assert abs(msd - 2 * d * d_naive * t) > Z4 * se
    # the same D from the helper
    assert lattice_diffusion(RATE, spacing, d, dt=DT) == pytest.approx([d_exact] * d, rel=1e-12)
    assert lattice_diffusion(RATE, spacing, d) == pytest.approx([d_naive] * d, rel=1e-12)


@pytest.mark.parametrize("neighbourhood", ["von_neumann", "moore"])
def test_anisotropic_spacing_gives_per_axis_diffusion_in_um(neighbourhood):
    h = np.array([2.0, 5.0])  # µm
    lat = Lattice((1100, 1100), tuple(h))
    sites = _grid_sites(lat, 60, 20, 50)
    x0 = lat.positions(sites)
    n_steps = 400
    _, pos = _walk(
        lat,
        sites,
        n_steps,
        np.random.default_rng(5),
        record=(n_steps,),
        neighbourhood=neighbourhood,
    )
    dx2 = (pos[n_steps] - x0) ** 2
    t = n_steps * DT
    # fraction of offsets moving along a given axis: 2 of 4 (von Neumann), 6 of 8 (Moore)
    frac = 0.5 if neighbourhood == "von_neumann" else 6 / 8
    d_axis = P_HOP / DT * frac * h**2 / 2
    msd = dx2.mean(axis=0)
    se = dx2.std(axis=0, ddof=1) / np.sqrt(dx2.shape[0])
    assert np.all(np.abs(msd - 2 * d_axis * t) < Z4 * se), (msd, 2 * d_axis * t, se)
    # power: an isotropic walk with the mean spacing is rejected
    h_iso = np.full(2, np.sqrt(np.mean(h**2)))
    assert np.any(np.abs(msd - 2 * (P_HOP / DT * frac * h_iso**2 / 2) * t) > Z4 * se)
    assert lattice_diffusion(RATE, h, 2, neighbourhood=neighbourhood, dt=DT) == pytest.approx(
        d_axis, rel=1e-12
    )


# ------------------------------------------------------------------ drift
def _drift_closed_form(h, g, chi, neighbourhood):
    """Mean step per hop from the weights exp(±a_i), a_i = χ h_i g_i / 2 (module docstring)."""
    a = 0.5 * chi * h * g
    if neighbourhood == "von_neumann":
        return h * 2 * np.sinh(a) / np.sum(2 * np.cosh(a))
    c = 1 + 2 * np.cosh(a)
    z = np.prod(c) - 1
    return np.array([h[i] * 2 * np.sinh(a[i]) * np.prod(np.delete(c, i)) / z for i in range(2)])


@pytest.mark.parametrize("neighbourhood", ["von_neumann", "moore"])
def test_biased_walker_drift_matches_analytic_velocity(neighbourhood):
    h = np.array([2.0, 5.0])
    chi, g = 2.0, np.array([0.1, -0.05])  # a = (0.2, −0.25): beyond the linear regime
    lat = Lattice((1300, 1300), tuple(h))
    sites = _grid_sites(lat, 100, 30, 40)  # 1600 walkers, density 1/900
    x0 = lat.positions(sites)
    n_steps = 400
    _, pos = _walk(
        lat,
        sites,
        n_steps,
        np.random.default_rng(7),
        record=(n_steps,),
        gradient=g,
        chemotaxis=chi,
        neighbourhood=neighbourhood,
    )
    t = n_steps * DT
    disp = pos[n_steps] - x0
    v = disp.mean(axis=0) / t
    se = disp.std(axis=0, ddof=1) / np.sqrt(disp.shape[0]) / t
    v_exact = P_HOP / DT * _drift_closed_form(h, g, chi, neighbourhood)
    assert np.all(np.abs(v - v_exact) < Z4 * se), (v, v_exact, se)
    # power: the uncorrected rate (rate instead of p/dt) is rejected
    assert np.all(np.abs(v - RATE * _drift_closed_form(h, g, chi, neighbourhood)) > Z4 * se)
    assert drift_velocity(RATE, h, g, chi, neighbourhood=neighbourhood, dt=DT) == pytest.approx(
        v_exact, rel=1e-12
    )


@pytest.mark.parametrize("neighbourhood", ["von_neumann", "moore"])
def test_drift_helper_small_gradient_limit_is_chi_diffusion_grad(neighbourhood):
    # [OS] / Keller–Segel: v = χ D ∇c to first order, per axis v_i = χ D_i ∂_i c
    h = np.array([1.0, 2.0, 4.0])
    g = np.array([1e-6, -2e-6, 3e-6])
    chi = 0.7
    frac = 2 / 6 if neighbourhood == "von_neumann" else 18 / 26
    d_axis = RATE * frac * h**2 / 2
    v = drift_velocity(RATE, h, g, chi, neighbourhood=neighbourhood)
    assert v == pytest.approx(chi * d_axis * g, rel=1e-5)
    # batched gradients give the same rows
    vb = drift_velocity(RATE, h, np.stack([g, -g]), chi, neighbourhood=neighbourhood)
    assert vb[0] == pytest.approx(v, rel=1e-12) and vb[1] == pytest.approx(-v, rel=1e-12)


def test_stationary_profile_between_walls_is_boltzmann():
    # Walls refuse hops (reflect). A walker in c = g·x between two walls relaxes to
    # π(i) ∝ exp(χ g h i) [OS detailed balance]: hops i → i+1 and back are weighted e^{±a}
    # with a = χ g h / 2. The x-motion is its own Markov chain (y hops only delay it), so
    # each walker in a tall strip is an independent sample.
    nx, ny, h = 10, 100_000, 2.0
    lat = Lattice((nx, ny), h)
    chi, g = 1.5, 0.1  # χ g h = 0.3 per site: profile rises e^2.7 ≈ 15× across
    rng = np.random.default_rng(3)
    n_walkers = 2000
    coords = np.column_stack([rng.integers(0, nx, n_walkers), 25 + 50 * np.arange(n_walkers)])
    sites = lat.sites_of(coords)
    c = g * lat.positions(np.arange(lat.n_sites))[:, 0]
    occupied = np.zeros(lat.n_sites, dtype=bool)
    occupied[sites] = True
    for _ in range(600):  # ~120 x-hops each vs a relaxation time of ~10
        grad = field_gradient(lat, c, sites)
        new = propose_moves(lat, sites, occupied, RATE, DT, rng, gradient=grad, chemotaxis=chi)
        occupied[sites] = False
        occupied[new] = True
        sites = new
    x = lat.coordinates(sites)[:, 0]
    assert x.min() >= 0 and x.max() < nx
    observed = np.bincount(x, minlength=nx)
    boltz = np.exp(chi * g * h * np.arange(nx))
    expected = n_walkers * boltz / boltz.sum()
    assert stats.chisquare(observed, expected).pvalue > 1e-4, (observed, expected.round())
    # power: the full exponent e^{χΔc} (π ∝ e^{2χc}) and the uniform profile are rejected
    for wrong in (boltz**2, np.ones(nx)):
        assert stats.chisquare(observed, n_walkers * wrong / wrong.sum()).pvalue < 1e-6


# ------------------------------------------------------------------ exclusion
@pytest.mark.parametrize("neighbourhood", ["von_neumann", "moore"])
def test_exclusion_invariants_in_a_crowd(neighbourhood):
    lat = Lattice((30, 20), (1.0, 2.0))
    rng = np.random.default_rng(19)
    perm = rng.permutation(lat.n_sites)
    sites = perm[:300]  # 50% movers
    blockers = perm[300:360]  # 10% another population that does not move
    occupied = np.zeros(lat.n_sites, dtype=bool)
    occupied[sites] = occupied[blockers] = True
    offsets = {tuple(o) for o in lat.offsets(neighbourhood)}
    moved_total = 0
    for _ in range(200):
        grad = rng.normal(size=(sites.size, 2))
        new = propose_moves(
            lat,
            sites,
            occupied,
            100.0,
            1.0,
            rng,
            gradient=grad,
            chemotaxis=1.0,
            neighbourhood=neighbourhood,
        )
        assert np.unique(new).size == new.size  # no two cells share a site
        assert np.all((new >= 0) & (new < lat.n_sites))
        moved = new != sites
        assert not np.any(occupied[new[moved]])  # only into sites free at the step start
        d = lat.coordinates(new[moved]) - lat.coordinates(sites[moved])
        assert all(tuple(r) in offsets for r in d)  # one hop, to a neighbour
        nb = lat.neighbours(sites, neighbourhood)
        boxed = np.all((nb < 0) | occupied[np.where(nb < 0, 0, nb)], axis=1)
        assert not np.any(moved & boxed)  # blocked cells stay
        moved_total += int(moved.sum())
        occupied[sites] = False
        occupied[new] = True
        sites = new
    assert moved_total > 1000  # the crowd did move


def test_blocked_and_walled_cells_stay():
    lat = Lattice((5, 5), 1.0)
    rng = np.random.default_rng(0)
    # a cell at the centre boxed in by four blockers; corner cells pushed into their walls
    centre = lat.site_of((2, 2))
    blockers = lat.sites_of([(1, 2), (3, 2), (2, 1), (2, 3)])
    corners = lat.sites_of([(0, 0), (4, 4)])
    sites = np.concatenate([[centre], corners])
    occupied = np.zeros(lat.n_sites, dtype=bool)
    occupied[blockers] = occupied[sites] = True
    grad = np.array([[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0]])  # corners: straight outwards
    for _ in range(100):
        new = propose_moves(lat, sites, occupied, 50.0, 1.0, rng, gradient=grad, chemotaxis=200.0)
        assert np.array_equal(new, sites)
    # an immobile cell (rate 0) never moves even with free neighbours
    free = np.array([lat.site_of((0, 4))])
    occ = np.zeros(lat.n_sites, dtype=bool)
    occ[free] = True
    for _ in range(50):
        assert propose_moves(lat, free, occ, 0.0, 1.0, rng)[0] == free[0]
    # per-cell rates: only the mobile one moves
    two = lat.sites_of([(0, 0), (4, 4)])
    occ = np.zeros(lat.n_sites, dtype=bool)
    occ[two] = True
    new = propose_moves(
        lat,
        two,
        occ,
        np.array([0.0, 1e3]),
        1.0,
        np.random.default_rng(2),
        gradient=np.array([0.0, -1.0]),
        chemotaxis=100.0,
    )
    assert new[0] == two[0] and new[1] == lat.site_of((4, 3))


def test_two_cells_wanting_one_site_get_one_fair_winner():
    # Pattern A _ B X repeated: A is pushed right, B left (huge bias, p = 1), so both want
    # the gap; X is a blocker. Exactly one wins, and A wins half the time (binomial SE).
    n_triples = 5000
    lat = Lattice((4 * n_triples,), 1.0)
    a_sites = 4 * np.arange(n_triples)
    b_sites = a_sites + 2
    sites = np.concatenate([a_sites, b_sites])
    occupied = np.zeros(lat.n_sites, dtype=bool)
    occupied[sites] = occupied[a_sites + 3] = True
    grad = np.concatenate([np.ones(n_triples), -np.ones(n_triples)])[:, None]
    new = propose_moves(
        lat,
        sites,
        occupied,
        1e3,
        1.0,
        np.random.default_rng(23),
        gradient=grad,
        chemotaxis=40.0,
    )
    a_new, b_new = new[:n_triples], new[n_triples:]
    a_won = a_new == a_sites + 1
    b_won = b_new == a_sites + 1
    assert np.all(a_won ^ b_won)  # exactly one winner per gap
    assert np.all(np.where(a_won, b_new == b_sites, a_new == a_sites))  # the loser stays
    frac = a_won.mean()
    assert abs(frac - 0.5) < Z4 * 0.5 / np.sqrt(n_triples), frac  # not index order


def test_vacated_site_is_not_free_within_the_step():
    # a train of cells all pushed right: only the front cell can move in one step
    lat = Lattice((10,), 1.0)
    sites = np.arange(5)
    occupied = np.zeros(10, dtype=bool)
    occupied[sites] = True
    new = propose_moves(
        lat,
        sites,
        occupied,
        1e3,
        1.0,
        np.random.default_rng(1),
        gradient=np.array([1.0]),
        chemotaxis=100.0,
    )
    assert np.array_equal(new, [0, 1, 2, 3, 5])


# ------------------------------------------------------------------ helpers and API
def test_field_gradient_is_exact_for_linear_fields():
    lat = Lattice((6, 4, 3), (1.0, 2.5, 4.0))
    s = np.arange(lat.n_sites)
    x = lat.positions(s)
    grad_true = np.array([0.3, -1.2, 2.0])
    c = 5.0 + x @ grad_true
    assert field_gradient(lat, c, s) == pytest.approx(np.tile(grad_true, (s.size, 1)))
    # quadratic: central differences exact inside (d/dx x² = 2x), one-sided at the edges
    q = x[:, 0] ** 2
    gq = field_gradient(lat, q, s)[:, 0]
    i = lat.coordinates(s)[:, 0]
    inner = (i > 0) & (i < 5)
    assert gq[inner] == pytest.approx(2 * x[inner, 0])
    assert gq[i == 0] == pytest.approx(np.full((i == 0).sum(), (1.5**2 - 0.5**2) / 1.0))
    # an axis of one site has zero gradient
    flat = Lattice((5, 1), 1.0)
    assert np.all(field_gradient(flat, np.arange(5.0), np.arange(5))[:, 1] == 0)


def test_deterministic_given_rng():
    lat = Lattice((40, 40), 1.0)
    sites = _grid_sites(lat, 0, 2, 20)
    occ = np.zeros(lat.n_sites, dtype=bool)
    occ[sites] = True
    run = [propose_moves(lat, sites, occ, 3.0, 0.5, np.random.default_rng(s)) for s in (4, 4, 5)]
    assert np.array_equal(run[0], run[1])
    assert not np.array_equal(run[0], run[2])
    assert propose_moves(lat, sites[:0], occ, 1.0, 1.0, np.random.default_rng(0)).size == 0


def test_motility_declaration_and_delegation():
    lat = Lattice((50, 50), (2.0, 3.0))
    mot = Motility(rate=RATE, chemotaxis=1.0, field="vegf", neighbourhood="moore")
    assert mot.diffusion(lat, DT) == pytest.approx(
        lattice_diffusion(RATE, (2.0, 3.0), 2, neighbourhood="moore", dt=DT)
    )
    g = np.array([0.1, 0.2])
    assert mot.drift(lat, g) == pytest.approx(
        drift_velocity(RATE, (2.0, 3.0), g, 1.0, neighbourhood="moore")
    )
    sites = _grid_sites(lat, 1, 5, 10)
    occ = np.zeros(lat.n_sites, dtype=bool)
    occ[sites] = True
    a = mot.propose(lat, sites, occ, DT, np.random.default_rng(9), gradient=np.tile(g, (100, 1)))
    b = propose_moves(
        lat,
        sites,
        occ,
        RATE,
        DT,
        np.random.default_rng(9),
        gradient=np.tile(g, (100, 1)),
        chemotaxis=1.0,
        neighbourhood="moore",
    )
    assert np.array_equal(a, b)
    assert hop_probability(RATE, DT) == pytest.approx(1 - np.exp(-0.5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": -1.0}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"rate": 1.0, "chemotaxis": 2.0}, "needs a field"),
        ({"rate": 1.0, "neighbourhood": "hex"}, "von_neumann, moore"),
        ({"rate": 1.0, "chemotaxis": float("inf"), "field": "c"}, "chemotaxis"),
    ],
)
def test_motility_rejects_bad_declarations(kwargs, match):
    with pytest.raises(UserError, match=match):
        Motility(**kwargs)


def test_propose_moves_rejects_bad_input():
    lat = Lattice((5, 5), 1.0)
    occ = np.zeros(lat.n_sites, dtype=bool)
    rng = np.random.default_rng(0)
    ok = np.array([0, 6])
    with pytest.raises(UserError, match="distinct"):
        propose_moves(lat, np.array([3, 3]), occ, 1.0, 1.0, rng)
    with pytest.raises(UserError, match=r"0\.\.24"):
        propose_moves(lat, np.array([25]), occ, 1.0, 1.0, rng)
    with pytest.raises(UserError, match="integer"):
        propose_moves(lat, np.array([1.5]), occ, 1.0, 1.0, rng)
    with pytest.raises(UserError, match="boolean"):
        propose_moves(lat, ok, np.zeros(24, dtype=bool), 1.0, 1.0, rng)
    with pytest.raises(UserError, match="dt"):
        propose_moves(lat, ok, occ, 1.0, 0.0, rng)
    with pytest.raises(UserError, match="rate"):
        propose_moves(lat, ok, occ, np.array([1.0, -1.0]), 1.0, rng)
    with pytest.raises(UserError, match="rate"):
        propose_moves(lat, ok, occ, np.array([1.0, 1.0, 1.0]), 1.0, rng)
    with pytest.raises(UserError, match="gradient"):
        propose_moves(lat, ok, occ, 1.0, 1.0, rng, gradient=np.zeros((2, 3)), chemotaxis=1.0)
    with pytest.raises(UserError, match="von_neumann, moore"):
        propose_moves(lat, ok, occ, 1.0, 1.0, rng, neighbourhood="hex")
    with pytest.raises(UserError, match="spacing"):
        lattice_diffusion(1.0, (1.0, 2.0), 3)
    with pytest.raises(UserError, match="one value per site"):
        field_gradient(lat, np.zeros(3), ok)
