r"""Cell motility on the lattice: a biased, excluding random walk of whole cells.

A motile cell sits on one lattice site and hops to a neighbouring site. This module is a pure
vectorised kernel: :func:`propose_moves` takes the current sites of one population's movers and
returns their new sites; the engine then moves the agents, rows and attributes that follow a
cell. Nothing here touches Mesa or the state table.

**The walk.** Each mover carries a Poisson clock of rate :math:`\lambda` (``rate``, attempted
hops per unit time). Over a step ``dt`` it attempts one hop with probability

.. math:: p = 1 - e^{-\lambda\,\Delta t},

the probability that its clock rang at least once (several rings within one step collapse
into one hop, so the kernel is exact for :math:`\lambda\Delta t \ll 1` and under-moves by
:math:`O(\lambda\Delta t/2)` otherwise; the helpers below account for this exactly when given
``dt``). A hopping cell picks one neighbour offset :math:`k` of the neighbourhood (the
:math:`2d` face neighbours, ``"von_neumann"``, or all :math:`3^d-1`, ``"moore"``) with
probability

.. math:: w_k = \frac{\exp(\tfrac12\chi\,\nabla c\cdot\Delta\mathbf x_k)}
                     {\sum_j \exp(\tfrac12\chi\,\nabla c\cdot\Delta\mathbf x_j)},

where :math:`\Delta\mathbf x_k` is the hop in µm (offset × spacing), :math:`\nabla c` is the
gradient of the guiding field at the cell (concentration/µm) and :math:`\chi` (``chemotaxis``)
is the sensitivity in **1/concentration**: the exponent is half the concentration difference
the hop would climb, :math:`\tfrac12\chi\,[c(\mathbf x+\Delta\mathbf x_k)-c(\mathbf x)]` for a
locally linear field. :math:`\chi = 0` or no gradient gives the unbiased walk. :math:`\chi>0`
climbs the gradient (chemoattraction), :math:`\chi<0` descends it (chemorepulsion).

**Exclusion and walls** ("blind-ant" rule). The offset is drawn among *all* offsets, whatever
lies there; the hop is then refused, and the cell stays, if the target is outside the lattice
(a wall), occupied by any blocking cell (``occupied``, or another mover's current site: a site
vacated in this step is not free until the next one), or wanted by another mover (all movers
choosing the same free target are resolved by one uniformly random winner). No two cells ever
share a site. Refusal at walls is a reflecting boundary that keeps detailed balance: an
unbiased walker in a closed box has the uniform stationary distribution, and a single walker
in a fixed field has the Boltzmann profile :math:`\pi(\mathbf x)\propto e^{\chi c(\mathbf x)}`
(the rates :math:`\mathbf x\to\mathbf x'` and back are in the ratio
:math:`e^{\chi(c'-c)}`), which is the steady state of the Keller–Segel equation below.

**Diffusion** (Codling, Plank & Benhamou 2008, §2). With no bias the displacement after
:math:`n` steps of length :math:`\Delta t` is a sum of :math:`n` i.i.d. steps of mean zero, so
its mean squared value along axis :math:`i` is exactly :math:`n\,p\,\langle\Delta x_i^2\rangle`
with :math:`\langle\Delta x_i^2\rangle` the mean over offsets. Writing
:math:`\mathrm{MSD}_i = 2 D_i t` with :math:`t = n\Delta t`,

.. math:: D_i = \frac{p}{\Delta t}\,\frac{\langle\Delta x_i^2\rangle}{2}
          \;\xrightarrow{\Delta t\to 0}\; \frac{\lambda\,\langle\Delta x_i^2\rangle}{2},

with :math:`\langle\Delta x_i^2\rangle = h_i^2/d` for von Neumann (2 of the :math:`2d`
offsets move along :math:`i`), so :math:`D_i = \lambda h_i^2/(2d)` and
:math:`\mathrm{MSD} = \sum_i 2D_i t = 2dDt` on a cubic lattice; and
:math:`\langle\Delta x_i^2\rangle = 2\cdot3^{d-1}h_i^2/(3^d-1)` for Moore. With anisotropic
spacing the walk is anisotropic: :math:`D_i\propto h_i^2` (equal hop probabilities per
neighbour, unequal hop lengths), which :func:`lattice_diffusion` returns per axis.

**Drift.** The mean step is :math:`p\sum_k w_k\Delta\mathbf x_k`, so the drift velocity of a
free cell is :math:`\mathbf v = (p/\Delta t)\sum_k w_k\Delta\mathbf x_k`. For von Neumann, with
:math:`a_i = \tfrac12\chi h_i\,\partial_i c`, the pair :math:`\pm\mathbf e_i` has weights
:math:`e^{\pm a_i}` and

.. math:: v_i = \frac{p}{\Delta t}\,\frac{2 h_i \sinh a_i}{\sum_j 2\cosh a_j};

for Moore the weights factorise over axes, :math:`\sum_{\mathbf o\in\{-1,0,1\}^d}
e^{\mathbf o\cdot\mathbf a} = \prod_j(1+2\cosh a_j)`, giving
:math:`v_i = (p/\Delta t)\,2h_i\sinh a_i\prod_{j\ne i}(1+2\cosh a_j)\,/\,
[\prod_j(1+2\cosh a_j)-1]`. To first order in the bias both reduce to

.. math:: \mathbf v \approx \chi\,D\,\nabla c \quad(\text{per axis } v_i = \chi D_i\,\partial_i c),

so the density :math:`u` obeys the Keller–Segel (1971) / Patlak equation
:math:`\partial_t u = \nabla\cdot(D\nabla u - \chi_{KS}\,u\,\nabla c)` with the usual
chemotactic sensitivity :math:`\chi_{KS} = \chi D` (µm²/(time·concentration)); the diffusion
limit of such biased lattice jumps is derived in Othmer & Stevens (1997). To declare a
Keller–Segel sensitivity, set ``chemotaxis = chi_KS / D``.

References:
    Codling, E. A., Plank, M. J. & Benhamou, S. (2008). Random walk models in biology.
    J. R. Soc. Interface 5:813-834.
    Othmer, H. G. & Stevens, A. (1997). Aggregation, blowup, and collapse: the ABC's of taxis
    in reinforced random walks. SIAM J. Appl. Math. 57(4):1044-1081.
    Keller, E. F. & Segel, L. A. (1971). Model for chemotaxis. J. Theor. Biol. 30:225-234.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from biohybrid.errors import UserError
from biohybrid.geometry import NEIGHBOURHOODS, Lattice

__all__ = [
    "Motility",
    "drift_velocity",
    "field_gradient",
    "hop_probability",
    "lattice_diffusion",
    "propose_moves",
]


@dataclass(frozen=True)
class Motility:
    """A population's declared motility.

    Args:
        rate: Attempted hops per cell per unit time (1/time), finite and >= 0.
        chemotaxis: Sensitivity χ in 1/concentration (see the module docstring): a hop is
            weighted by ``exp(χ·Δc/2)`` with Δc the concentration difference it climbs, so the
            drift is ``χ·D·∇c`` for small gradients (Keller–Segel sensitivity ``χ·D``).
            Negative values repel. Must be 0 when ``field`` is None.
        field: The field whose gradient biases the walk; None for an unbiased walk.
        neighbourhood: ``"von_neumann"`` (2·d face neighbours) or ``"moore"`` (3^d − 1).

    Raises:
        UserError: A negative or non-finite rate, a non-finite chemotaxis, a chemotaxis with
            no field, or an unknown neighbourhood.
    """

    rate: float
    chemotaxis: float = 0.0
    field: str | None = None
    neighbourhood: str = "von_neumann"

    def __post_init__(self) -> None:
        rate = _as_float(self.rate, "motility rate")
        if not (math.isfinite(rate) and rate >= 0):
            raise UserError(
                f"motility rate must be a finite number of hops per unit time >= 0, got {rate}"
            )
        chi = _as_float(self.chemotaxis, "chemotaxis")
        if not math.isfinite(chi):
            raise UserError(f"chemotaxis must be a finite number (1/concentration), got {chi}")
        if self.field is not None and (not isinstance(self.field, str) or not self.field):
            raise UserError(f"motility field must be a field name or None, got {self.field!r}")
        if chi != 0.0 and self.field is None:
            raise UserError(
                f"chemotaxis = {chi} needs a field whose gradient biases the walk;"
                " set field to a field name or chemotaxis to 0"
            )
        _check_neighbourhood(self.neighbourhood)
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "chemotaxis", chi)

    def propose(
        self,
        lattice: Lattice,
        sites: ArrayLike,
        occupied: ArrayLike,
        dt: float,
        rng: np.random.Generator,
        *,
        gradient: ArrayLike | None = None,
    ) -> NDArray[np.int64]:
        """:func:`propose_moves` with this population's rate, chemotaxis and neighbourhood.

        Args:
            lattice: The tissue lattice.
            sites: Current sites of the movers, shape ``(N,)``.
            occupied: Blocked sites, shape ``(lattice.n_sites,)``.
            dt: Time step.
            rng: Random generator.
            gradient: Gradient of :attr:`field` at each mover, ``(N, ndim)``; None = unbiased.

        Returns:
            New sites, shape ``(N,)``.
        """
        return propose_moves(
            lattice,
            sites,
            occupied,
            self.rate,
            dt,
            rng,
            gradient=gradient if self.chemotaxis != 0.0 else None,
            chemotaxis=self.chemotaxis,
            neighbourhood=self.neighbourhood,
        )

    def diffusion(self, lattice: Lattice, dt: float | None = None) -> NDArray[np.float64]:
        """Per-axis diffusion coefficient (µm²/time) of a free cell; :func:`lattice_diffusion`."""
        return lattice_diffusion(
            self.rate, lattice.spacing, lattice.ndim, neighbourhood=self.neighbourhood, dt=dt
        )

    def drift(
        self, lattice: Lattice, gradient: ArrayLike, dt: float | None = None
    ) -> NDArray[np.float64]:
        """Drift velocity (µm/time) of a free cell in ``gradient``, see :func:`drift_velocity`."""
        return drift_velocity(
            self.rate,
            lattice.spacing,
            gradient,
            self.chemotaxis,
            neighbourhood=self.neighbourhood,
            dt=dt,
        )


# ---------------------------------------------------------------------------- analytic helpers
def hop_probability(rate: ArrayLike, dt: float) -> NDArray[np.float64]:
    """Probability ``1 − exp(−rate·dt)`` that a cell attempts a hop within one step.

    Args:
        rate: Hop rate(s), 1/time, >= 0.
        dt: Time step, > 0.

    Returns:
        The probability, shaped like ``rate``.
    """
    dt = _check_dt(dt)
    r = _check_rate(rate)
    return -np.expm1(-r * dt)


def lattice_diffusion(
    rate: ArrayLike,
    spacing: Sequence[float] | float,
    ndim: int,
    *,
    neighbourhood: str = "von_neumann",
    dt: float | None = None,
) -> NDArray[np.float64]:
    """Diffusion coefficient per axis implied by a hop rate on the lattice.

    ``D_i = r·⟨Δx_i²⟩/2`` with ``r = rate`` (``dt`` None, the continuous-time limit) or
    ``r = (1 − exp(−rate·dt))/dt`` (exact for the stepped kernel); ``⟨Δx_i²⟩ = h_i²/d`` for
    von Neumann and ``2·3^(d−1)·h_i²/(3^d − 1)`` for Moore (module docstring). For von Neumann
    on a cubic lattice this is ``rate·h²/(2d)`` and the MSD is ``2·d·D·t``.

    Args:
        rate: Hop rate, 1/time (a scalar; use per-cell values one at a time).
        spacing: µm per axis, or one value for every axis.
        ndim: Number of axes (1-3).
        neighbourhood: ``"von_neumann"`` or ``"moore"``.
        dt: Time step of the stepped kernel, or None for the small-dt limit.

    Returns:
        ``D_i`` in µm²/time, shape ``(ndim,)``.

    Raises:
        UserError: Bad rate, spacing, ndim, neighbourhood or dt.
    """
    h = _check_spacing(spacing, ndim)
    r = _effective_rate(rate, dt)
    d = len(h)
    _check_neighbourhood(neighbourhood)
    if neighbourhood == "von_neumann":
        msd_axis = h**2 / d
    else:
        msd_axis = 2 * 3 ** (d - 1) * h**2 / (3**d - 1)
    return r * msd_axis / 2


def drift_velocity(
    rate: ArrayLike,
    spacing: Sequence[float] | float,
    gradient: ArrayLike,
    chemotaxis: float,
    *,
    neighbourhood: str = "von_neumann",
    dt: float | None = None,
) -> NDArray[np.float64]:
    """Exact mean velocity of a free cell (no walls, no neighbours) in a field gradient.

    ``v = r·Σ_k w_k·Δx_k`` with the hop weights ``w_k ∝ exp(χ·∇c·Δx_k/2)`` and ``r`` as in
    :func:`lattice_diffusion`; to first order ``v_i = χ·D_i·∂_i c`` (module docstring).

    Args:
        rate: Hop rate, 1/time (scalar).
        spacing: µm per axis, or one value for every axis.
        gradient: Field gradient, concentration/µm, shape ``(ndim,)`` or ``(N, ndim)``.
        chemotaxis: Sensitivity χ, 1/concentration.
        neighbourhood: ``"von_neumann"`` or ``"moore"``.
        dt: Time step of the stepped kernel, or None for the small-dt limit.

    Returns:
        Velocity in µm/time, shaped like ``gradient``.

    Raises:
        UserError: Bad rate, spacing, gradient, chemotaxis, neighbourhood or dt.
    """
    g = np.asarray(gradient, dtype=float)
    ndim = g.shape[-1] if g.ndim >= 1 else 0
    if g.ndim not in (1, 2) or not 1 <= ndim <= 3:
        raise UserError(f"gradient must have shape (ndim,) or (N, ndim), got {g.shape}")
    h = _check_spacing(spacing, ndim)
    r = _effective_rate(rate, dt)
    chi = _as_float(chemotaxis, "chemotaxis")
    if not math.isfinite(chi) or not np.all(np.isfinite(g)):
        raise UserError("chemotaxis and gradient must be finite")
    step = _offsets(ndim, neighbourhood) * h  # (K, ndim) µm
    w = _weights(g.reshape(-1, ndim), step, chi)  # (M, K)
    return (r * (w @ step)).reshape(g.shape)


def field_gradient(lattice: Lattice, values: ArrayLike, sites: ArrayLike) -> NDArray[np.float64]:
    """Gradient of a per-site field at some sites, by finite differences.

    Central differences ``(c[i+1] − c[i−1])/(2h)`` inside, one-sided ``(c[i+1] − c[i])/h`` or
    ``(c[i] − c[i−1])/h`` at the edges, 0 along an axis of one site. Exact for a linear field.

    Args:
        lattice: The lattice.
        values: Field values per site, shape ``(n_sites,)`` in site order (e.g. a FiPy
            variable's ``.value``).
        sites: Sites at which to evaluate, shape ``(N,)``.

    Returns:
        Gradient in value/µm, shape ``(N, ndim)``.

    Raises:
        UserError: Values of the wrong length or sites outside the lattice.
    """
    c = np.asarray(values, dtype=float).reshape(-1)
    if c.shape != (lattice.n_sites,):
        raise UserError(
            f"field values must have one value per site ({lattice.n_sites}), got {c.size}"
        )
    s = _check_sites(lattice, sites)
    coords = lattice.coordinates(s)
    grad = np.zeros((s.size, lattice.ndim))
    strides = np.cumprod((1, *lattice.shape[:-1]))
    for axis, (n, h) in enumerate(zip(lattice.shape, lattice.spacing, strict=True)):
        if n == 1:
            continue
        i = coords[:, axis]
        up = np.where(i < n - 1, s + strides[axis], s)
        down = np.where(i > 0, s - strides[axis], s)
        width = (np.where(i < n - 1, 1, 0) + np.where(i > 0, 1, 0)) * h
        grad[:, axis] = (c[up] - c[down]) / width
    return grad


# ---------------------------------------------------------------------------- the kernel
def propose_moves(
    lattice: Lattice,
    sites: ArrayLike,
    occupied: ArrayLike,
    rate: ArrayLike,
    dt: float,
    rng: np.random.Generator,
    *,
    gradient: ArrayLike | None = None,
    chemotaxis: ArrayLike = 0.0,
    neighbourhood: str = "von_neumann",
) -> NDArray[np.int64]:
    """One step of the excluding, possibly biased lattice walk of a population's movers.

    Each mover attempts a hop with probability ``1 − exp(−rate·dt)`` to one neighbour offset
    drawn with weights ``∝ exp(χ·∇c·Δx/2)``; the hop is refused (the cell stays) if the target
    is outside the lattice, blocked in ``occupied``, a mover's current site, or won by another
    mover choosing the same target (one uniformly random winner). See the module docstring for
    the diffusion and drift this implies.

    Deterministic given ``rng``: it always draws three uniforms per mover, whatever happens.

    Args:
        lattice: The tissue lattice.
        sites: Current sites of the movers, shape ``(N,)``, distinct.
        occupied: Boolean per site, shape ``(lattice.n_sites,)``: sites held by any cell that
            blocks (all populations). The movers' own current sites are treated as blocked
            whether or not they are marked.
        rate: Hop rate, 1/time, a scalar or one per mover ``(N,)``; 0 = immobile.
        dt: Time step, > 0.
        rng: Random generator.
        gradient: Gradient of the guiding field at each mover, concentration/µm, shape
            ``(N, ndim)`` (or ``(ndim,)`` for all); None = unbiased.
        chemotaxis: Sensitivity χ, 1/concentration, scalar or ``(N,)``.
        neighbourhood: ``"von_neumann"`` or ``"moore"``.

    Returns:
        New sites, shape ``(N,)``, all distinct and not blocked in ``occupied`` unless the cell
        stayed.

    Raises:
        UserError: Sites outside the lattice or repeated, ``occupied`` of the wrong shape, a
            negative or non-finite rate, a bad dt, gradient or chemotaxis, an unknown
            neighbourhood.
    """
    s = _check_sites(lattice, sites)
    n = s.size
    occ = np.asarray(occupied)
    if occ.shape != (lattice.n_sites,) or occ.dtype != bool:
        raise UserError(
            f"occupied must be a boolean array with one entry per site ({lattice.n_sites}),"
            f" got dtype {occ.dtype} and shape {occ.shape}"
        )
    s_sorted = np.sort(s)
    if np.any(s_sorted[1:] == s_sorted[:-1]):
        raise UserError("movers' sites must be distinct: two cells cannot share a site")
    p = hop_probability(_per_cell(rate, n, "rate"), dt)
    _check_neighbourhood(neighbourhood)
    offsets = lattice.offsets(neighbourhood)
    k_offsets = offsets.shape[0]
    u_hop, u_dir, u_tie = rng.random((3, n))
    if n == 0:
        return s.copy()

    # direction: unbiased, or weights exp(χ ∇c·Δx / 2) over all offsets
    chi = _per_cell(chemotaxis, n, "chemotaxis")
    if gradient is None or not np.any(chi):
        choice = np.minimum((u_dir * k_offsets).astype(np.int64), k_offsets - 1)
    else:
        g = np.asarray(gradient, dtype=float)
        if g.shape == (lattice.ndim,):
            g = np.broadcast_to(g, (n, lattice.ndim))
        if g.shape != (n, lattice.ndim) or not np.all(np.isfinite(g)):
            raise UserError(
                f"gradient must be finite with shape ({n}, {lattice.ndim}) (one row per mover)"
                f" or ({lattice.ndim},), got {np.shape(gradient)}"
            )
        w = _weights(g, offsets * np.asarray(lattice.spacing), chi)
        cum = np.cumsum(w, axis=1)
        choice = np.minimum(
            np.sum(cum < u_dir[:, None] * cum[:, -1:], axis=1), k_offsets - 1
        ).astype(np.int64)

    # target site of the chosen offset; a hop through a wall is refused
    coords = lattice.coordinates(s) + offsets[choice]
    inside = np.all((coords >= 0) & (coords < np.asarray(lattice.shape)), axis=1)
    strides = np.cumprod((1, *lattice.shape[:-1]))
    target = np.where(inside, coords @ strides, -1)
    wants = (u_hop < p) & inside
    safe_target = np.where(inside, target, 0)
    wants &= ~occ[safe_target]  # blocked by any cell
    # a mover's current site stays blocked this step, marked in occupied or not
    pos = np.minimum(np.searchsorted(s_sorted, safe_target), n - 1)
    wants &= s_sorted[pos] != safe_target

    # conflicts: among movers wanting the same site, the one with the smallest random key wins
    movers = np.flatnonzero(wants)
    new = s.copy()
    if movers.size:
        t = target[movers]
        order = np.lexsort((u_tie[movers], t))
        t_sorted = t[order]
        first = np.ones(order.size, dtype=bool)
        first[1:] = t_sorted[1:] != t_sorted[:-1]
        winners = movers[order[first]]
        new[winners] = target[winners]
    return new


# ---------------------------------------------------------------------------- internals
def _weights(g: NDArray, step: NDArray, chi: ArrayLike) -> NDArray[np.float64]:
    """Normalised hop weights ``exp(χ g·Δx/2)``, shape ``(M, K)`` for ``g`` ``(M, ndim)``."""
    chi_col = np.asarray(chi, dtype=float).reshape(-1, 1)
    logw = 0.5 * chi_col * (g @ step.T)
    logw -= logw.max(axis=1, keepdims=True)
    w = np.exp(logw)
    return w / w.sum(axis=1, keepdims=True)


def _offsets(ndim: int, neighbourhood: str) -> NDArray[np.int64]:
    """Neighbour offsets of a neighbourhood, the same as :meth:`Lattice.offsets`."""
    return Lattice((1,) * ndim, 1.0).offsets(neighbourhood)


def _check_neighbourhood(neighbourhood: str) -> None:
    if neighbourhood not in NEIGHBOURHOODS:
        raise UserError(
            f"unknown neighbourhood {neighbourhood!r}; choose one of {', '.join(NEIGHBOURHOODS)}"
        )


def _as_float(value: object, what: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number, got {value!r}") from None


def _check_dt(dt: float) -> float:
    dt = _as_float(dt, "dt")
    if not (math.isfinite(dt) and dt > 0):
        raise UserError(f"dt must be a positive finite time step, got {dt}")
    return dt


def _check_rate(rate: ArrayLike) -> NDArray[np.float64]:
    r = np.asarray(rate, dtype=float)
    if not np.all(np.isfinite(r) & (r >= 0)):
        raise UserError("motility rate must be finite and >= 0 hops per unit time")
    return r


def _effective_rate(rate: ArrayLike, dt: float | None) -> float:
    r = _check_rate(rate)
    if r.ndim != 0:
        raise UserError(f"rate must be a single number here, got shape {r.shape}")
    if dt is None:
        return float(r)
    return float(hop_probability(r, dt)) / _check_dt(dt)


def _check_spacing(spacing: Sequence[float] | float, ndim: int) -> NDArray[np.float64]:
    if isinstance(ndim, bool) or not isinstance(ndim, int | np.integer) or not 1 <= ndim <= 3:
        raise UserError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    h = np.atleast_1d(np.asarray(spacing, dtype=float))
    if h.size == 1:
        h = np.repeat(h, ndim)
    if h.shape != (ndim,) or not np.all(np.isfinite(h) & (h > 0)):
        raise UserError(
            f"spacing must be one positive µm value or one per axis ({ndim}), got {spacing!r}"
        )
    return h


def _check_sites(lattice: Lattice, sites: ArrayLike) -> NDArray[np.int64]:
    a = np.asarray(sites)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise UserError(f"sites must be a 1-D array of integer site indices, got {a.shape}")
    s = a.astype(np.int64)
    if s.size and (s.min() < 0 or s.max() >= lattice.n_sites):
        raise UserError(f"sites must lie in 0..{lattice.n_sites - 1} for {lattice!r}")
    return s


def _per_cell(value: ArrayLike, n: int, what: str) -> NDArray[np.float64]:
    v = np.asarray(value, dtype=float)
    if v.ndim == 0:
        v = np.full(n, float(v))
    if v.shape != (n,) or not np.all(np.isfinite(v)):
        raise UserError(f"{what} must be a finite number or one per mover ({n}), got {v.shape}")
    return v
