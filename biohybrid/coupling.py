r"""Cell-to-cell coupling: diffusive exchange of cell species between neighbouring cells.

A :class:`CellCoupling` couples one or more per-cell quantities ``u`` (gap-junction IP3
between astrocytes, the membrane voltage of a monodomain cardiac model) between cells that
sit on neighbouring sites of a :class:`~biohybrid.geometry.Lattice`:

.. math::

    c_i \frac{du_i}{dt} = \sum_{j \in nb(i)} g_{ij} (u_j - u_i),
    \qquad\text{i.e.}\qquad C \dot u = -L u,\quad L = D - W,

with ``W`` the symmetric junction conductances ``g_ij`` between coupled neighbours,
``D = diag(W 1)`` and ``C = diag(c)``. ``L`` is symmetric positive semi-definite, so the
flow is dissipative and ``Σ c_i u_i`` is conserved (exactly, up to round-off, by every
scheme here).

**Neighbourhood.** ``"von_neumann"`` couples face neighbours (2·ndim per cell),
``"moore"`` also edge and corner neighbours (3^ndim − 1 per cell). There is no
wrap-around, and only cells named in :meth:`CellCoupling.set_cells` take part: an empty
site or a lattice edge is a no-flux boundary.

**Conductance** ``g`` is in 1/time per junction (for a monodomain model use
``σ_a / (χ C_m h_a²)`` along axis ``a``). It may be

- one number: isotropic and uniform;
- ``ndim`` numbers: one per axis (anisotropy, e.g. fibres along x), uniform;
- per cell (``per_cell=True`` or the ``conductance=`` of :meth:`CellCoupling.set_cells`),
  shape ``(N,)`` (isotropic) or ``(N, ndim)`` (per axis), aligned with the cells' order.

The junction between face neighbours ``i`` and ``j`` along axis ``a`` has the harmonic
mean ``g_ij = 2 g_i,a g_j,a / (g_i,a + g_j,a)`` (the series conductance of two half
junctions; 0 if either is 0, so a non-conducting cell blocks). **Diagonal rule** (Moore
edge/corner neighbours, whose offset moves along a set ``S`` of two or three axes): by
default each cell contributes the mean of its conductances over the axes in ``S`` and the
junction is the harmonic mean of the two contributions; an isotropic uniform ``g`` thus
gives ``g`` on all Moore neighbours (the astrocyte model). With ``g_diag`` given, every
edge/corner junction between two conducting cells (a cell with any axis conductance > 0)
has the one value ``g_diag``.

When every junction has the same conductance ``g`` (one number, equal per-axis or per-cell
values, ``g_diag`` unset or equal), the operator is built as ``g`` times the 0/1 graph
Laplacian of the neighbourhood, exactly as the astrocyte model's gap-junction step did, so
``"backward-euler"`` reproduces that step bit for bit.

**Capacity** ``c_i`` (default 1, e.g. a cell volume or a membrane capacitance) weights the
exchange: a bigger cell changes more slowly for the same flux.

**Schemes** for one call of :meth:`CellCoupling.step` (``z = dt·λ`` for an eigenvalue
``λ`` of ``C⁻¹L``; ``R(z)`` the amplification of that mode):

- ``"backward-euler"``: ``(C + dt L) u' = C u``; 1st order, L-stable, ``R = 1/(1+z)``.
- ``"crank-nicolson"``: ``(C + dt/2 L) u' = (C − dt/2 L) u``; 2nd order, A-stable but not
  L-stable (``R(∞) = −1``: stiff modes flip sign and persist).
- ``"tr-bdf2"``: a trapezoidal stage to ``t + γ dt`` then BDF2 over ``(t, t+γ dt, t+dt)``
  with ``γ = 2 − √2`` (Bank et al. 1985, IEEE Trans. Electron Devices 32:1992;
  Hosea & Shampine 1996, Appl. Numer. Math. 20:21); 2nd order and L-stable
  (``R(∞) = 0``). With this ``γ`` both stages share the matrix ``C + (γ/2) dt L``, so it
  costs one factorisation and two solves.

The implicit matrix is factorised with SuperLU (``scipy.sparse.linalg.splu``,
``permc_spec="MMD_AT_PLUS_A"``, a symmetric ordering with little fill) and the factors are
reused while the cells' sites, the conductances, the capacities, ``dt`` and the scheme are
unchanged; any change refactorises on the next step (see :attr:`CellCoupling.counters`).

Example:
    >>> import numpy as np
    >>> from biohybrid.geometry import Lattice
    >>> lat = Lattice((3,), 1.0)
    >>> cc = CellCoupling(lat, conductance=1.0)
    >>> u = cc.step(np.array([3.0, 0.0, 0.0]), 0.1)
    >>> round(float(u.sum()), 12)
    3.0
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.linalg import SuperLU, splu

from biohybrid.errors import SimulationError, UserError
from biohybrid.geometry import NEIGHBOURHOODS, Lattice

#: Time-stepping schemes of :meth:`CellCoupling.step`.
SCHEMES: tuple[str, ...] = ("backward-euler", "crank-nicolson", "tr-bdf2")

#: TR-BDF2 stage fraction γ = 2 − √2 (Hosea & Shampine 1996): the trapezoidal stage and
#: the BDF2 stage then have the same implicit matrix.
TRBDF2_GAMMA: float = 2.0 - math.sqrt(2.0)

#: SuperLU column ordering: minimum degree on AᵀA+A suits the symmetric matrices here.
PERMC_SPEC: str = "MMD_AT_PLUS_A"


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UserError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def _nonnegative(name: str, values: ArrayLike) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be numbers, got {values!r}") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise UserError(f"{name} must be finite and >= 0, got {arr.tolist()}")
    return arr


def harmonic_mean(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Elementwise ``2ab/(a+b)``, 0 where either is 0 (series conductance of two halves)."""
    s = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        h = 2.0 * a * b / s
    return np.where((a > 0) & (b > 0), h, 0.0)


class CellCoupling:
    """Diffusive coupling of per-cell values between neighbouring cells of a lattice.

    Args:
        lattice: The tissue lattice; each coupled cell occupies one site.
        conductance: Junction conductance in 1/time: one number, or one per axis
            (``ndim`` numbers), uniform over cells. Per-cell values: see
            :meth:`set_conductance` and :meth:`set_cells`.
        neighbourhood: ``"von_neumann"`` (faces) or ``"moore"`` (faces, edges, corners).
        scheme: ``"backward-euler"``, ``"crank-nicolson"`` or ``"tr-bdf2"`` (see the module
            docstring).
        capacity: Per-cell capacity ``c_i`` (> 0): ``None`` for 1, one number, or ``(N,)``
            aligned with ``sites``.
        g_diag: Moore only: one conductance for every edge/corner junction between
            conducting cells; ``None`` (default) uses the mean of the axes involved.
        sites: The coupled cells' sites; ``None`` (default) couples every site of the
            lattice (a full tissue).

    Raises:
        UserError: Unknown neighbourhood or scheme; negative, NaN or wrongly shaped
            conductance or capacity; ``g_diag`` without the Moore neighbourhood; bad sites.
    """

    def __init__(
        self,
        lattice: Lattice,
        *,
        conductance: ArrayLike,
        neighbourhood: str = "von_neumann",
        scheme: str = "backward-euler",
        capacity: ArrayLike | None = None,
        g_diag: float | None = None,
        sites: ArrayLike | None = None,
    ) -> None:
        if not isinstance(lattice, Lattice):
            raise UserError(f"lattice must be a biohybrid.geometry.Lattice, got {lattice!r}")
        self.lattice = lattice
        self.neighbourhood = _choice("neighbourhood", neighbourhood, NEIGHBOURHOODS)
        self._scheme = _choice("scheme", scheme, SCHEMES)
        if g_diag is not None:
            if self.neighbourhood != "moore" or lattice.ndim == 1:
                raise UserError(
                    "g_diag sets the edge/corner junctions of the 'moore' neighbourhood in 2-D"
                    f" or 3-D; this coupling is {self.neighbourhood!r} on a"
                    f" {lattice.ndim}-D lattice"
                )
            g_diag = float(_nonnegative("g_diag", g_diag))
        self.g_diag: float | None = g_diag
        #: Work done: ``factorisations`` (SuperLU), ``solves`` (triangular solves, one per
        #: right-hand side column and stage), ``laplacians`` (operator builds), ``steps``.
        self.counters: dict[str, int] = {
            "factorisations": 0,
            "solves": 0,
            "laplacians": 0,
            "steps": 0,
        }
        self._adjacency: sp.csr_matrix | None = None
        self._L: sp.csr_matrix | None = None
        self._L0: sp.csr_matrix | None = None
        self._uniform_g: float | None = None
        self._lu = None
        self._lu_key: tuple | None = None
        self._sites = np.zeros(0, dtype=np.int64)
        self._g_axis = np.zeros(lattice.ndim)
        self._g_cell: NDArray[np.float64] | None = None
        self._capacity: NDArray[np.float64] | None = None
        self.set_conductance(conductance)
        all_sites = np.arange(lattice.n_sites, dtype=np.int64) if sites is None else sites
        self.set_cells(all_sites, capacity=capacity)

    # ------------------------------------------------------------------ inputs
    @property
    def scheme(self) -> str:
        """The time-stepping scheme (one of :data:`SCHEMES`); may be changed between steps."""
        return self._scheme

    @scheme.setter
    def scheme(self, value: str) -> None:
        self._scheme = _choice("scheme", value, SCHEMES)

    @property
    def sites(self) -> NDArray[np.int64]:
        """The coupled cells' sites ``(N,)``, in the order values are given (read-only)."""
        view = self._sites.view()
        view.flags.writeable = False
        return view

    @property
    def n_cells(self) -> int:
        """Number of coupled cells ``N``."""
        return int(self._sites.size)

    @property
    def capacity(self) -> NDArray[np.float64]:
        """Per-cell capacities ``(N,)`` (ones by default)."""
        if self._capacity is None:
            return np.ones(self.n_cells)
        return self._capacity.copy()

    def conductance(self) -> NDArray[np.float64]:
        """Per-cell, per-axis conductances ``(N, ndim)`` in force (uniform ones broadcast)."""
        if self._g_cell is not None:
            return self._g_cell.copy()
        return np.broadcast_to(self._g_axis, (self.n_cells, self.lattice.ndim)).copy()

    def set_cells(
        self,
        sites: ArrayLike,
        *,
        conductance: ArrayLike | None = None,
        capacity: ArrayLike | None = None,
    ) -> None:
        """Set which cells are coupled: their sites, in the order values will be given.

        Call again whenever cells divide, die or move. Per-cell conductances or capacities
        are aligned with the cells' order, so when they are in force and the sites change
        they must be given again here (they cannot be carried over silently).

        Args:
            sites: Flat lattice sites ``(N,)``, unique, ``0 <= s < n_sites``.
            conductance: Optional per-cell conductance ``(N,)`` or ``(N, ndim)`` for these
                cells (as :meth:`set_conductance` with ``per_cell=True``).
            capacity: Optional per-cell capacity: one number or ``(N,)``, > 0.

        Raises:
            UserError: Non-integer, out-of-range, duplicate or non-1-D sites; bad per-cell
                arrays; sites changed while per-cell values are in force and not re-given.
        """
        raw = np.asarray(sites)
        if raw.ndim != 1 or not (raw.size == 0 or np.issubdtype(raw.dtype, np.integer)):
            raise UserError(f"sites must be a 1-D array of whole site numbers, got {raw!r}")
        s = raw.astype(np.int64)
        n_sites = self.lattice.n_sites
        if s.size and (s.min() < 0 or s.max() >= n_sites):
            bad = s[(s < 0) | (s >= n_sites)]
            raise UserError(
                f"sites must be in 0..{n_sites - 1} for {self.lattice!r}; got {bad[:10].tolist()}"
            )
        uniq, counts = np.unique(s, return_counts=True)
        if uniq.size != s.size:
            repeated = uniq[counts > 1][:10].tolist()
            raise UserError(f"sites must be unique (one cell per site); repeated: {repeated}")
        n = int(s.size)
        g_cell = None if conductance is None else self._per_cell_conductance(conductance, n)
        cap = None if capacity is None else self._capacity_array(capacity, n)
        if not np.array_equal(s, self._sites):
            stale = [
                name
                for name, value, given in (
                    ("conductance", self._g_cell, conductance),
                    ("capacity", self._capacity, capacity),
                )
                if value is not None and given is None
            ]
            if stale:
                raise UserError(
                    f"per-cell {' and '.join(stale)} is aligned with the previous cells; pass"
                    f" {', '.join(f'{name}=' for name in stale)} for the new sites too"
                )
            self._sites = s.copy()
            self._invalidate_operator()
        if g_cell is not None:
            self._set_g_cell(g_cell)
        if capacity is not None:
            self._set_capacity_array(cap)

    def set_conductance(self, conductance: ArrayLike, *, per_cell: bool = False) -> None:
        """Set the junction conductances (1/time); see the module docstring for the rule.

        Args:
            conductance: With ``per_cell=False``: one number or ``ndim`` numbers (one per
                axis), for every cell. With ``per_cell=True``: ``(N,)`` (isotropic) or
                ``(N, ndim)`` values aligned with the cells' order, or one number.
            per_cell: Whether ``conductance`` is per cell (needed because ``N`` may equal
                ``ndim``).

        Raises:
            UserError: Negative, NaN/Inf or wrongly shaped conductance.
        """
        ndim, n = self.lattice.ndim, self.n_cells
        g = _nonnegative("conductance", conductance)
        if not per_cell:
            if g.shape not in ((), (1,), (ndim,)):
                raise UserError(
                    f"conductance must be one number or {ndim} (one per axis) on a {ndim}-D"
                    f" lattice, got shape {g.shape}; for per-cell values pass per_cell=True"
                )
            g_axis = np.broadcast_to(g.reshape(-1), (ndim,)).astype(np.float64)
            if self._g_cell is not None or not np.array_equal(g_axis, self._g_axis):
                self._g_axis, self._g_cell = g_axis, None
                self._invalidate_operator()
            return
        self._set_g_cell(self._per_cell_conductance(g, n))

    def _per_cell_conductance(self, conductance: ArrayLike, n: int) -> NDArray[np.float64]:
        """Validate per-cell conductance for ``n`` cells → ``(n, ndim)``."""
        ndim = self.lattice.ndim
        g = _nonnegative("conductance", conductance)
        if g.shape == ():
            return np.full((n, ndim), float(g))
        if g.shape == (n,):
            return np.repeat(g[:, None], ndim, axis=1)
        if g.shape == (n, ndim):
            return g.copy()
        raise UserError(
            f"per-cell conductance must have shape ({n},) or ({n}, {ndim}) for {n} cells"
            f" on a {ndim}-D lattice, got {g.shape}"
        )

    def _set_g_cell(self, g_cell: NDArray[np.float64]) -> None:
        if self._g_cell is None or not np.array_equal(g_cell, self._g_cell):
            self._g_cell = g_cell
            self._invalidate_operator()

    def set_capacity(self, capacity: ArrayLike | None) -> None:
        """Set per-cell capacities: ``None`` (all 1), one number, or ``(N,)``; each > 0.

        Raises:
            UserError: Zero, negative, NaN/Inf or wrongly shaped capacity.
        """
        self._set_capacity_array(None if capacity is None else self._capacity_array(capacity))

    def _capacity_array(self, capacity: ArrayLike, n: int | None = None) -> NDArray[np.float64]:
        """Validate capacities for ``n`` cells (default: the current cells) → ``(n,)``."""
        n = self.n_cells if n is None else n
        c = _nonnegative("capacity", capacity)
        if np.any(c <= 0):
            raise UserError(f"capacity must be > 0 per cell, got {c.tolist()}")
        if c.shape == ():
            return np.full(n, float(c))
        if c.shape == (n,):
            return c.copy()
        raise UserError(f"capacity must be one number or shape ({n},) for {n} cells, got {c.shape}")

    def _set_capacity_array(self, new: NDArray[np.float64] | None) -> None:
        same = (new is None and self._capacity is None) or (
            new is not None and self._capacity is not None and np.array_equal(new, self._capacity)
        )
        if not same:
            self._capacity = new
            self._lu, self._lu_key = None, None

    def _invalidate_operator(self) -> None:
        self._L, self._uniform_g = None, None
        self._lu, self._lu_key = None, None

    # ------------------------------------------------------------------ operator
    def _unit_adjacency(self) -> sp.csr_matrix:
        """The lattice's 0/1 site adjacency of this neighbourhood, built once."""
        if self._adjacency is None:
            self._adjacency = self.lattice.adjacency(self.neighbourhood)
        return self._adjacency

    def _uniform_value(self) -> float | None:
        """The single junction conductance if every junction has the same one, else None."""
        g = self._g_axis if self._g_cell is None else self._g_cell
        if g.size == 0:
            return float(self._g_axis[0]) if self._g_axis.size else 0.0
        first = float(g.flat[0])
        if not np.all(g == first):
            return None
        if self.g_diag is not None and self.g_diag != first:
            return None
        return first

    def _build(self) -> None:
        """Build ``L`` (and note whether it is ``g`` times the unit graph Laplacian)."""
        self.counters["laplacians"] += 1
        n = self.n_cells
        g_uniform = self._uniform_value()
        if g_uniform is not None:
            # Same construction as the astrocyte model's gap-junction step, so that the
            # backward-Euler matrix below is bit-identical to it.
            A = self._unit_adjacency()[self._sites][:, self._sites]
            L0 = sp.diags(np.asarray(A.sum(axis=1)).ravel()) - A
            self._uniform_g = g_uniform
            self._L0 = L0
            self._L = (g_uniform * L0).tocsr()
            return
        lat = self.lattice
        g = self.conductance()  # (N, ndim)
        conducting = np.any(g > 0, axis=1)
        local = np.full(lat.n_sites, -1, dtype=np.int64)
        local[self._sites] = np.arange(n, dtype=np.int64)
        nb = lat.neighbours(self._sites, self.neighbourhood)  # (N, K)
        nb_local = np.where(nb >= 0, local[np.maximum(nb, 0)], -1)
        rows, cols, vals = [], [], []
        for k, off in enumerate(lat.offsets(self.neighbourhood)):
            axes = np.flatnonzero(off)
            j = nb_local[:, k]
            i = np.flatnonzero(j >= 0)
            j = j[i]
            if axes.size == 1:
                w = harmonic_mean(g[i, axes[0]], g[j, axes[0]])
            elif self.g_diag is not None:
                w = np.where(conducting[i] & conducting[j], self.g_diag, 0.0)
            else:
                gm = g[:, axes].mean(axis=1)
                w = harmonic_mean(gm[i], gm[j])
            keep = w > 0
            rows.append(i[keep])
            cols.append(j[keep])
            vals.append(w[keep])
        W = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        self._uniform_g = None
        self._L0 = None
        self._L = (sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W).tocsr()

    def laplacian(self) -> sp.csr_matrix:
        """The ``(N, N)`` conductance Laplacian ``L = D − W`` (so ``C du/dt = −L u``).

        Symmetric positive semi-definite with zero row sums; rows and columns in the cells'
        order. A copy: changing it does not change the coupling.
        """
        if self._L is None:
            self._build()
        return self._L.copy()

    def derivative(self, values: ArrayLike) -> NDArray[np.float64]:
        """The coupling rate ``du/dt = −C⁻¹ L u`` for explicit use, same shape as values."""
        u = self._check_values(values)
        if self._L is None:
            self._build()
        du = -(self._L @ u)
        if self._capacity is not None:
            du = du / (self._capacity[:, None] if du.ndim == 2 else self._capacity)
        return du

    # ------------------------------------------------------------------ stepping
    def _check_values(self, values: ArrayLike) -> NDArray[np.float64]:
        u = np.asarray(values, dtype=np.float64)
        if u.ndim not in (1, 2) or u.shape[0] != self.n_cells:
            raise UserError(
                f"values must have shape ({self.n_cells},) or ({self.n_cells}, m) for"
                f" {self.n_cells} coupled cells, got {u.shape}"
            )
        return u

    def _factor(self, dt: float) -> SuperLU:
        """The factorised implicit matrix ``C + θ dt L`` for this scheme and dt (cached)."""
        key = (self.scheme, dt)
        if self._lu is not None and self._lu_key == key:
            return self._lu
        n = self.n_cells
        theta = {"backward-euler": 1.0, "crank-nicolson": 0.5, "tr-bdf2": 0.5 * TRBDF2_GAMMA}
        C = (
            sp.identity(n, format="csc")
            if self._capacity is None
            else sp.diags(self._capacity, format="csc")
        )
        if self._uniform_g is not None:
            # The astrocyte model's form, (Id + dt * k_gj * L0): for backward Euler θ = 1 and
            # (1.0 * dt) * g == dt * g exactly, so the matrix is bit-identical to it.
            M = (C + theta[self.scheme] * dt * self._uniform_g * self._L0).tocsc()
        else:
            M = (C + (theta[self.scheme] * dt) * self._L).tocsc()
        self._lu = splu(M, permc_spec=PERMC_SPEC)
        self._lu_key = key
        self.counters["factorisations"] += 1
        return self._lu

    def _solve(self, lu: SuperLU, rhs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Solve column by column, so each species' result does not depend on the others."""
        if rhs.ndim == 1:
            self.counters["solves"] += 1
            return lu.solve(rhs)
        self.counters["solves"] += rhs.shape[1]
        return np.column_stack([lu.solve(np.ascontiguousarray(col)) for col in rhs.T])

    def _c(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """``C u`` (``u`` itself when every capacity is 1)."""
        if self._capacity is None:
            return u
        return u * (self._capacity[:, None] if u.ndim == 2 else self._capacity)

    def step(self, values: ArrayLike, dt: float) -> NDArray[np.float64]:
        """Advance the coupled cells' values by ``dt`` with the chosen scheme.

        Args:
            values: ``(N,)`` or ``(N, m)`` (``m`` species coupled by the same operator), in
                the cells' order (:attr:`sites`).
            dt: Time step (> 0), in the conductance's time unit.

        Returns:
            The new values, same shape (a new array; the input is not modified).

        Raises:
            UserError: Wrong shape or a non-positive/non-finite ``dt``.
            SimulationError: NaN or Inf in the result (e.g. NaN in the input).
        """
        u = self._check_values(values)
        try:
            dt = float(dt)
        except (TypeError, ValueError):
            raise UserError(f"dt must be a number > 0, got {dt!r}") from None
        if not (math.isfinite(dt) and dt > 0):
            raise UserError(f"dt must be finite and > 0, got {dt}")
        self.counters["steps"] += 1
        if self._L is None:
            self._build()
        if self.n_cells == 0 or self._L.nnz == 0 or not np.any(self._L.data):
            out = u.copy()
        else:
            lu = self._factor(dt)
            if self.scheme == "backward-euler":
                out = self._solve(lu, self._c(u))
            elif self.scheme == "crank-nicolson":
                out = self._solve(lu, self._c(u) - (0.5 * dt) * (self._L @ u))
            else:
                g = TRBDF2_GAMMA
                u_g = self._solve(lu, self._c(u) - (0.5 * g * dt) * (self._L @ u))
                # BDF2 over (t, t+γdt, t+dt): C u' + (γ/2) dt L u' = C (a u_γ − b u) with
                # a = 1/(γ(2−γ)), b = (1−γ)²/(γ(2−γ)), a − b = 1; written u + a (u_γ − u) so
                # the weights sum to 1 exactly.
                a = 1.0 / (g * (2.0 - g))
                out = self._solve(lu, self._c(u + a * (u_g - u)))
        if not np.all(np.isfinite(out)):
            raise SimulationError(
                f"cell coupling produced NaN/Inf ({self.scheme}, dt={dt}, {self.n_cells} cells);"
                " check the coupled values and conductances"
            )
        return out.reshape(u.shape)

    def __repr__(self) -> str:
        return (
            f"CellCoupling({self.lattice!r}, {self.neighbourhood}, {self.scheme},"
            f" {self.n_cells} cells)"
        )
