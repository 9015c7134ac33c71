"""Sample entropy and multiscale entropy against analytic values.

Sources:
    Costa M, Goldberger AL, Peng C-K (2002) Phys Rev Lett 89:068102 (MSE; white noise).
    Richman JS, Moorman JR (2000) Am J Physiol 278:H2039 (sample entropy definition).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import biohybrid
from biohybrid.analysis import (
    coarse_grain,
    multiscale_entropy,
    sample_entropy,
    white_noise_sample_entropy,
)
from biohybrid.errors import UserError


def _naive_sampen(x: np.ndarray, m: int, tol: float) -> float:
    n_t = x.size - m
    emb = np.array([x[i : i + m + 1] for i in range(n_t)])
    d_m = np.max(np.abs(emb[:, None, :m] - emb[None, :, :m]), axis=2)
    d_m1 = np.max(np.abs(emb[:, None, :] - emb[None, :, :]), axis=2)
    iu = np.triu_indices(n_t, 1)
    return -math.log((d_m1[iu] <= tol).sum() / (d_m[iu] <= tol).sum())


def test_matches_naive_definition():
    x = np.random.default_rng(3).standard_normal(400)
    for m in (1, 2, 3):
        tol = 0.2 * x.std()
        assert sample_entropy(x, m, tol=tol) == pytest.approx(_naive_sampen(x, m, tol), rel=1e-12)


def test_white_noise_analytic_value():
    # i.i.d. N(0,1): SampEn = -ln erf(r/2) for any m (difference of two unit normals has
    # SD √2). r = 0.15: -ln erf(0.075) = 2.471 (Costa et al. 2002, white-noise curve).
    assert white_noise_sample_entropy(0.15) == pytest.approx(2.4714, abs=1e-4)
    x = np.random.default_rng(7).standard_normal(30_000)
    for m in (1, 2):
        assert sample_entropy(x, m, 0.15) == pytest.approx(
            white_noise_sample_entropy(0.15), abs=0.04
        )


def test_multiscale_entropy_of_white_noise_falls_as_predicted():
    # Costa et al. 2002 Fig. 1: white-noise MSE decreases with scale; analytically
    # SampEn(τ) = -ln erf(r √τ / 2) since coarse-graining shrinks the SD by √τ.
    x = np.random.default_rng(11).standard_normal(40_000)
    scales = [1, 2, 4, 8, 16]
    mse = multiscale_entropy(x, scales, m=2, r=0.15)
    expected = np.array([white_noise_sample_entropy(0.15, s) for s in scales])
    np.testing.assert_allclose(mse, expected, atol=0.06)
    assert np.all(np.diff(mse) < 0)
    assert biohybrid.multiscale_entropy is multiscale_entropy


def test_regular_signal_has_low_entropy():
    # A periodic signal is predictable: SampEn far below white noise (Richman & Moorman 2000).
    t = np.arange(5000) * 0.1
    assert sample_entropy(np.sin(2 * np.pi * t / 11.5), 2, 0.15) < 0.3


def test_coarse_grain_and_errors():
    np.testing.assert_allclose(coarse_grain(np.arange(7.0), 3), [1.0, 4.0])
    with pytest.raises(UserError, match="1-D"):
        sample_entropy(np.zeros((3, 3)))
    with pytest.raises(UserError, match="tolerance"):
        sample_entropy(np.ones(100))
    with pytest.raises(UserError, match="scale"):
        multiscale_entropy(np.arange(10.0), [0])
    with pytest.raises(UserError, match="finite"):
        sample_entropy([1.0, np.nan, 2.0])
    assert math.isnan(sample_entropy([1.0, 2.0], m=2, tol=1.0))
