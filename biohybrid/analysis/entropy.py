"""Sample entropy and multiscale entropy of a time series (e.g. any biomarker column).

Sample entropy (Richman & Moorman 2000) is ``SampEn(m, r) = -ln(A / B)``, where ``B`` is the
number of pairs of length-``m`` templates within Chebyshev distance ``r`` of each other and
``A`` the number of those pairs that still match at length ``m + 1`` (self-matches excluded,
the same ``N - m`` template starts for both counts). Multiscale entropy (Costa, Goldberger &
Peng 2002) is the sample entropy of the coarse-grained series ``y_j^(τ)`` (means of
consecutive, non-overlapping windows of length ``τ``) for each scale ``τ``, with the
tolerance fixed at ``r`` times the standard deviation of the *original* series.

Pairs are counted with a k-d tree in the Chebyshev metric (``scipy.spatial.cKDTree``), so a
series of 10⁵ points takes well under a second instead of the ``O(N²)`` memory of a naive
pairwise comparison.

For i.i.d. Gaussian noise the expected value is analytic: the difference of two standard
normals has variance 2, so ``P(|x_i - x_j| <= r σ) = erf(r/2)`` and ``SampEn = -ln erf(r/2)``
for every ``m``; after coarse-graining at scale ``τ`` the standard deviation shrinks by
``√τ``, giving ``SampEn(τ) = -ln erf(r √τ / 2)``.

References:
    Richman JS, Moorman JR (2000) Physiological time-series analysis using approximate
    entropy and sample entropy. Am J Physiol Heart Circ Physiol 278:H2039-H2049.
    Costa M, Goldberger AL, Peng C-K (2002) Multiscale entropy analysis of complex
    physiologic time series. Phys Rev Lett 89:068102.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from biohybrid.errors import UserError


def _series(series: ArrayLike) -> NDArray[np.float64]:
    x = np.asarray(series, dtype=float)
    if x.ndim != 1:
        raise UserError(f"entropy needs a 1-D series, got an array of shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise UserError("entropy needs a finite series; it contains NaN or Inf.")
    return x


def _pairs_within(templates: NDArray[np.float64], tol: float) -> int:
    """Number of unordered pairs of distinct rows within Chebyshev distance ``tol``."""
    if templates.shape[0] < 2:
        return 0
    tree = cKDTree(templates)
    ordered = int(tree.count_neighbors(tree, tol, p=np.inf))  # includes the N self-pairs
    return (ordered - templates.shape[0]) // 2


def sample_entropy(
    series: ArrayLike, m: int = 2, r: float = 0.15, *, tol: float | None = None
) -> float:
    """Sample entropy ``SampEn(m, r)`` of a series.

    Args:
        series: The series, shape ``(N,)``.
        m: Template length (embedding dimension), >= 1.
        r: Tolerance in units of the series' standard deviation (ignored when ``tol``
            is given).
        tol: Absolute tolerance, in the series' units; overrides ``r``.

    Returns:
        The sample entropy (nats); ``inf`` when no template of length ``m + 1`` matches
        (undefined: too short or too irregular), ``nan`` when none of length ``m`` match.

    Raises:
        UserError: If the series is not 1-D and finite, ``m < 1`` or the tolerance is not
            positive.
    """
    x = _series(series)
    if int(m) != m or m < 1:
        raise UserError(f"sample entropy: m must be a whole number >= 1, got {m!r}.")
    m = int(m)
    if tol is None:
        if not r > 0:
            raise UserError(f"sample entropy: r must be > 0 (in SD units), got {r!r}.")
        tol = r * float(np.std(x))
    if not tol > 0:
        raise UserError(
            "sample entropy: the tolerance is 0 (constant series or tol <= 0); it must be > 0."
        )
    n_t = x.size - m  # same template starts for lengths m and m + 1
    if n_t < 2:
        return float("nan")
    idx = np.arange(n_t)[:, None] + np.arange(m + 1)[None, :]
    emb = x[idx]
    B = _pairs_within(emb[:, :m], tol)
    A = _pairs_within(emb, tol)
    if B == 0:
        return float("nan")
    if A == 0:
        return float("inf")
    return float(-math.log(A / B))


def coarse_grain(series: ArrayLike, scale: int) -> NDArray[np.float64]:
    """Means of consecutive non-overlapping windows of length ``scale`` (Costa 2002, eq. 1).

    Args:
        series: The series, shape ``(N,)``.
        scale: Window length τ >= 1.

    Returns:
        The coarse-grained series, shape ``(N // scale,)``.
    """
    x = _series(series)
    if int(scale) != scale or scale < 1:
        raise UserError(f"coarse-graining scale must be a whole number >= 1, got {scale!r}.")
    scale = int(scale)
    n = x.size // scale
    return x[: n * scale].reshape(n, scale).mean(axis=1)


def multiscale_entropy(
    series: ArrayLike, scales: Iterable[int] | int = range(1, 21), m: int = 2, r: float = 0.15
) -> NDArray[np.float64]:
    """Multiscale entropy (Costa, Goldberger & Peng 2002).

    Args:
        series: The series, shape ``(N,)`` (e.g. ``biomarkers["ca_mean"]``).
        scales: Coarse-graining scales τ (an iterable of whole numbers >= 1, or the largest
            scale ``S`` meaning ``1..S``).
        m: Template length.
        r: Tolerance in units of the standard deviation of the original series; the same
            absolute tolerance is used at every scale.

    Returns:
        Sample entropy at each scale, shape ``(len(scales),)``.

    Raises:
        UserError: On a bad series, scale, ``m`` or ``r``.
    """
    x = _series(series)
    if not r > 0:
        raise UserError(f"multiscale entropy: r must be > 0 (in SD units), got {r!r}.")
    tol = r * float(np.std(x))
    scale_list = list(range(1, int(scales) + 1)) if isinstance(scales, int) else list(scales)
    if not scale_list:
        raise UserError("multiscale entropy: give at least one scale.")
    return np.array([sample_entropy(coarse_grain(x, s), m, tol=tol) for s in scale_list])


def white_noise_sample_entropy(r: float, scale: int = 1) -> float:
    """Expected sample entropy of i.i.d. Gaussian noise: ``-ln erf(r √scale / 2)``.

    Args:
        r: Tolerance in units of the original series' standard deviation.
        scale: Coarse-graining scale τ (the tolerance stays fixed while the coarse-grained
            standard deviation falls as ``1/√τ``).

    Returns:
        The expected SampEn (nats), independent of ``m``.
    """
    return float(-math.log(math.erf(r * math.sqrt(scale) / 2.0)))
