"""Validation of the tissue layer against analytic solutions.

Sources:
    [BioFVM] Ghaffarizadeh, A., Friedman, S. H. & Macklin, P. (2016). BioFVM: an efficient,
        parallelized diffusive transport solver for 3-D biological simulations.
        Bioinformatics 32(8):1256-1258; test code examples/convergence_test1.cpp and
        convergence_test1_analytical.cpp in github.com/MathCancer/BioFVM (D = 1e5 µm²/min,
        x in [-500, 500] µm, u = 1 + cos(πx/L0) exp(-D π² t / L0²), L0 = 500 µm).
    [Crank] Crank, J. (1975). The Mathematics of Diffusion, 2nd ed., Oxford, eq. 3.5a:
        instantaneous point release in the plane, c = M/(4πDt) exp(-r²/(4Dt)), whose second
        moment is ∫ r² c dA = 4 D t M.
    [Carslaw] Carslaw, H. S. & Jaeger, J. C. (1959). Conduction of Heat in Solids, 2nd ed.,
        §10.4: steady line source with first-order loss, c = Q/(2πD) K0(r/λ), λ = √(D/k).
    [Varga] Varga, R. S. (1962). Matrix Iterative Analysis, §8 (backward-Euler diffusion
        matrices are M-matrices, so their inverses are non-negative).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import k0

from biohybrid.tissue import FieldSpec, FiPySolver, TissueLayer

D_BIOFVM = 1e5  # µm²/min, [BioFVM] convergence_test1
L0 = 500.0  # µm, [BioFVM] convergence_test1 (domain [-500, 500] µm)


def _biofvm_error(nx: int, dt: float, t_end: float) -> float:
    """Max-norm error of the 1-D cosine test of [BioFVM] at t_end."""
    dx = 2 * L0 / nx
    layer = TissueLayer(nx, 1, dx, [FieldSpec("u", diffusion=D_BIOFVM)])
    x = -L0 + (np.arange(nx) + 0.5) * dx
    layer.set_values("u", 1.0 + np.cos(np.pi * x / L0))
    n_steps = round(t_end / dt)
    for _ in range(n_steps):
        layer.step(dt)
    exact = 1.0 + np.cos(np.pi * x / L0) * np.exp(-D_BIOFVM * np.pi**2 * n_steps * dt / L0**2)
    assert layer.imbalance("u", relative=True) < 1e-12
    return float(np.max(np.abs(layer.values("u") - exact)))


def test_biofvm_convergence_test1_first_order_in_time():
    # Fine space (dx = 2.5 µm) so the backward-Euler time error dominates.
    dts = (0.01, 0.005, 0.0025)
    errors = [_biofvm_error(400, dt, 0.1) for dt in dts]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    # backward Euler damps the cosine mode by (1 + λ dt)^(-n) instead of exp(-λ t),
    # λ = D π²/L0² = 3.948/min; e.g. 5.14e-3 at dt = 0.01 min
    lam = D_BIOFVM * np.pi**2 / L0**2
    for dt, err in zip(dts, errors, strict=True):
        predicted = abs((1 + lam * dt) ** -round(0.1 / dt) - np.exp(-lam * 0.1))
        assert err == pytest.approx(predicted, rel=0.02)
    assert np.all((orders > 0.9) & (orders < 1.1)), (errors, orders)


def test_biofvm_convergence_test1_second_order_in_space():
    # Small dt (2e-5 min) so the spatial error dominates.
    errors = [_biofvm_error(nx, 2e-5, 0.1) for nx in (20, 40, 80)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[0] < 3e-3  # 2.17e-3 measured at dx = 50 µm
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)


def _centre_layer(n: int, dx: float, spec: FieldSpec) -> tuple[TissueLayer, np.ndarray, int]:
    layer = TissueLayer(n, n, dx, [spec])
    c = (np.arange(n) + 0.5) * dx - n * dx / 2  # cell centres, origin at the middle cell
    xx, yy = np.meshgrid(c, c)
    centre = (n // 2) + n * (n // 2)
    return layer, np.hypot(xx, yy).reshape(-1), centre


def test_point_release_matches_2d_greens_function():
    D, M, dt, n_steps, dx, n = 1000.0, 1e6, 0.01, 500, 10.0, 101
    layer, r, centre = _centre_layer(n, dx, FieldSpec("c", diffusion=D))
    # release M in the first step through the cells' secretion (amount/time)
    layer.set_coupling("c", [centre], secretion=[M / dt])
    layer.step(dt)
    layer.set_coupling("c", [centre])
    for _ in range(n_steps - 1):
        layer.step(dt)
    t = n_steps * dt
    exact = M / (4 * np.pi * D * t) * np.exp(-(r**2) / (4 * D * t))  # [Crank] eq. 3.5a
    c = layer.values("c")
    assert np.max(np.abs(c - exact)) < 0.01 * exact.max()
    assert layer.total("c") == pytest.approx(M, rel=1e-12)
    # backward Euler on the 5-point stencil grows the second moment exactly as 4 D t M
    # ([Crank]); the domain (±505 µm = 5σ at t = 5 min) makes the boundary negligible.
    m2 = float(np.sum(r**2 * c) * dx * dx)
    assert m2 == pytest.approx(4 * D * t * M, rel=1e-5)  # 2.5e-6: the 5σ tail


def test_gaussian_evolves_as_greens_function():
    D, M, dx, n = 1000.0, 1.0, 10.0, 101
    t0, t1, dt = 1.25, 5.0, 0.005
    layer, r, _ = _centre_layer(n, dx, FieldSpec("c", diffusion=D))
    layer.set_values("c", M / (4 * np.pi * D * t0) * np.exp(-(r**2) / (4 * D * t0)))
    for _ in range(round((t1 - t0) / dt)):
        layer.step(dt)
    exact = M / (4 * np.pi * D * t1) * np.exp(-(r**2) / (4 * D * t1))  # [Crank] eq. 3.5a
    assert np.max(np.abs(layer.values("c") - exact)) < 5e-3 * exact.max()


@pytest.mark.parametrize("boundary", ["neumann", "dirichlet"])
def test_steady_point_source_with_uptake_matches_k0(boundary):
    D, k, Q, dx, n = 1000.0, 0.1, 1000.0, 10.0, 121  # λ = 100 µm; half-width 6λ
    lam = np.sqrt(D / k)
    layer, r, centre = _centre_layer(n, dx, FieldSpec("c", diffusion=D, boundary=boundary))
    sites = np.arange(n * n)
    uptake = np.full(n * n, k)  # a cell with uptake k on every site
    secretion = np.where(sites == centre, Q, 0.0)
    layer.set_coupling("c", sites, secretion=secretion, uptake=uptake)
    layer.step(1e9)  # backward Euler with dt → ∞ is the steady solve
    c = layer.values("c")
    exact = Q / (2 * np.pi * D) * k0(np.maximum(r, 1e-9) / lam)  # [Carslaw] §10.4
    ring = (r >= 3 * dx) & (r <= 3 * lam)
    rel = np.abs(c[ring] - exact[ring]) / exact[ring]
    assert rel.max() < 0.02, rel.max()
    if boundary == "neumann":
        # no flux: one backward-Euler step from 0 gives (1/dt + k) ∫c = Q exactly
        assert layer.total("c") == pytest.approx(Q / (1 / 1e9 + k), rel=1e-12)
    assert layer.imbalance("c", relative=True) < 1e-12


@pytest.mark.parametrize("solver", [None, "fipy"])
def test_strong_uptake_cannot_drive_field_negative(solver):
    # [Varga]: implicit uptake keeps the matrix an M-matrix, so c ≥ 0 for any uptake; an
    # explicit sink c − dt·u·c would reach c(1 − 1e5) < 0 here.
    n, dx = 40, 10.0
    kw = {"solvers": {"c": FiPySolver()}} if solver == "fipy" else {}
    layer = TissueLayer(n, n, dx, [FieldSpec("c", diffusion=100.0, initial=1.0)], **kw)
    rng = np.random.default_rng(3)
    for step in range(12):
        sites = rng.choice(n * n, size=300, replace=False)
        uptake = rng.uniform(0, 1e5, size=300) * (step % 3 != 0)
        secretion = rng.uniform(0, 50.0, size=300) * (rng.random(300) < 0.1)
        layer.set_coupling("c", sites, secretion=secretion, uptake=uptake)
        layer.step(1.0)
        assert layer.values("c").min() >= 0.0
    assert layer.imbalance("c", relative=True) < 1e-11
