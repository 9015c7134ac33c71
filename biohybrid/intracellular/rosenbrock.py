"""Batched, per-cell adaptive, L-stable Rosenbrock kernel for many small stiff ODE systems.

All ``N`` cells are advanced together, but each cell has its own time ``t`` and step size
``h`` (arrays of shape ``(N_active,)``). One *sweep* takes one step of every still-active
cell with its own ``h``, accepts or rejects each cell separately, and drops the cells that
have reached the end time from the working set. A spiking cell therefore takes small steps
without forcing its quiet neighbours to do the same.

Each step solves ``s`` linear systems with the same matrix ``(I/(h γ) - J)`` per cell; for
small ``k`` the ``(N, k, k)`` matrices are inverted in batch once per step (closed form for
``k <= 3``, :func:`numpy.linalg.inv` otherwise), so a stage costs one batched
matrix-vector product.

The methods are written in the transformed form of Hairer & Wanner (1996), Sect. IV.7:

``(I/(h γ) - J) K_i = f(t + α_i h, y + Σ_j a_ij K_j) + (1/h) Σ_j c_ij K_j + γ_i h ∂f/∂t``,
``y_1 = y + Σ_i m_i K_i`` and ``err = Σ_i e_i K_i`` (sums over ``j < i``).

References:
    E. Hairer and G. Wanner, *Solving Ordinary Differential Equations II: Stiff and
    Differential-Algebraic Problems*, 2nd ed., Springer (1996), Sect. IV.7 (RODAS, RODAS3
    coefficient sets; step-size control IV.8).
    A. Sandu, J. G. Verwer, J. G. Blom, E. J. Spee, G. R. Carmichael and F. A. Potra,
    "Benchmarking stiff ODE solvers for atmospheric chemistry problems II: Rosenbrock
    solvers", *Atmos. Environ.* 31 (1997) 3459-3472 (the transformed coefficient tables).
    K. Gustafsson, "Control-theoretic techniques for stepsize selection in implicit
    Runge-Kutta methods", *ACM TOMS* 20 (1994) 496-517 (predictive controller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import SimulationError, UserError

Array = NDArray[np.float64]

_EPS = float(np.finfo(float).eps)
_SQRT_EPS = float(np.sqrt(_EPS))


@dataclass(frozen=True)
class RosenbrockTableau:
    """Coefficients of a Rosenbrock method in transformed (``K``-stage) form.

    Attributes:
        name: Method name.
        order: Order of the propagated solution.
        elo: Order used by the step-size controller (embedded order + 1).
        gamma: The diagonal coefficient ``γ``.
        a: Stage-argument coefficients, shape ``(s, s)``, strictly lower triangular.
        c: Stage-coupling coefficients, shape ``(s, s)``, strictly lower triangular.
        alpha: Stage times as fractions of ``h``, shape ``(s,)``.
        gammas: Time-derivative coefficients ``γ_i``, shape ``(s,)``.
        m: Solution weights, shape ``(s,)``.
        e: Error-estimate weights, shape ``(s,)``.
        new_f: Whether stage ``i`` needs a new RHS evaluation, shape ``(s,)``.
    """

    name: str
    order: int
    elo: float
    gamma: float
    a: tuple[tuple[float, ...], ...]
    c: tuple[tuple[float, ...], ...]
    alpha: tuple[float, ...]
    gammas: tuple[float, ...]
    m: tuple[float, ...]
    e: tuple[float, ...]
    new_f: tuple[bool, ...]

    @property
    def stages(self) -> int:
        """Number of stages ``s``."""
        return len(self.alpha)


def _lower(rows: list[list[float]], s: int) -> tuple[tuple[float, ...], ...]:
    out = [[0.0] * s for _ in range(s)]
    for i, row in enumerate(rows, start=1):
        for j, v in enumerate(row):
            out[i][j] = v
    return tuple(tuple(r) for r in out)


# RODAS4 (Hairer & Wanner 1996, Sect. VI.4, METH=1 of rodas.f): order 4, stiffly accurate,
# L-stable, 6 stages, 6 RHS evaluations; embedded order 3.
_R4A = [
    [1.544000000000000],
    [0.9466785280815826, 0.2557011698983284],
    [3.314825187068521, 2.896124015972201, 0.9986419139977817],
    [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950],
    [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0],
]
_R4C = [
    [-5.668800000000000],
    [-2.430093356833875, -0.2063599157091915],
    [-0.1073529058151375, -9.594562251023355, -20.47028614809616],
    [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160],
    [8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136,
     -6.058818238834054],
]  # fmt: skip
RODAS4 = RosenbrockTableau(
    name="rodas4",
    order=4,
    elo=4.0,
    gamma=0.25,
    a=_lower(_R4A, 6),
    c=_lower(_R4C, 6),
    alpha=(0.0, 0.386, 0.21, 0.63, 1.0, 1.0),
    gammas=(0.25, -0.1043, 0.1035, -0.03620000000000023, 0.0, 0.0),
    m=(1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0, 1.0),
    e=(0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    new_f=(True, True, True, True, True, True),
)

# RODAS3 (Sandu et al. 1997, Table 3): order 3, stiffly accurate, L-stable, 4 stages,
# 3 RHS evaluations (stage 2 reuses stage 1's); embedded order 2.
RODAS3 = RosenbrockTableau(
    name="rodas3",
    order=3,
    elo=3.0,
    gamma=0.5,
    a=_lower([[0.0], [2.0, 0.0], [2.0, 0.0, 1.0]], 4),
    c=_lower([[4.0], [1.0, -1.0], [1.0, -1.0, -8.0 / 3.0]], 4),
    alpha=(0.0, 0.0, 1.0, 1.0),
    gammas=(0.5, 1.5, 0.0, 0.0),
    m=(2.0, 0.0, 1.0, 1.0),
    e=(0.0, 0.0, 0.0, 1.0),
    new_f=(True, False, True, True),
)

METHODS: dict[str, RosenbrockTableau] = {"rodas4": RODAS4, "rodas3": RODAS3}


# ---------------------------------------------------------------------------- linear algebra
# Inside the kernel every per-cell quantity is stored species-major: states are (k, N) and
# matrices (k, k, N), so each component is a contiguous row and elementwise NumPy work runs
# at full speed. The user's functions still see (N, k) arrays (as transposed views).


def batched_inverse(M: Array) -> Array:
    """Invert a stack of small matrices stored species-major.

    Closed forms (adjugate over determinant) are used for ``k <= 3``; larger ``k`` use
    :func:`numpy.linalg.inv`. Singular matrices give non-finite entries instead of raising,
    so the caller can reject just those cells.

    Args:
        M: Matrices, shape ``(k, k, N)`` (``M[i, j, n]`` is entry ``(i, j)`` of cell ``n``).

    Returns:
        The inverses, shape ``(k, k, N)``.
    """
    k = M.shape[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if k == 1:
            return 1.0 / M
        if k == 2:
            a, b, c, d = M[0, 0], M[0, 1], M[1, 0], M[1, 1]
            rdet = 1.0 / (a * d - b * c)
            out = np.empty_like(M)
            np.multiply(d, rdet, out=out[0, 0])
            np.multiply(a, rdet, out=out[1, 1])
            rdet = -rdet
            np.multiply(b, rdet, out=out[0, 1])
            np.multiply(c, rdet, out=out[1, 0])
            return out
        if k == 3:
            a, b, c = M[0]
            d, e, f = M[1]
            g, h, i = M[2]
            A, B, C = e * i - f * h, f * g - d * i, d * h - e * g
            rdet = 1.0 / (a * A + b * B + c * C)
            out = np.empty_like(M)
            out[0, 0], out[1, 0], out[2, 0] = A * rdet, B * rdet, C * rdet
            out[0, 1] = (c * h - b * i) * rdet
            out[1, 1] = (a * i - c * g) * rdet
            out[2, 1] = (b * g - a * h) * rdet
            out[0, 2] = (b * f - c * e) * rdet
            out[1, 2] = (c * d - a * f) * rdet
            out[2, 2] = (a * e - b * d) * rdet
            return out
    Mc = np.moveaxis(M, 2, 0)  # (N, k, k)
    finite = np.all(np.isfinite(Mc), axis=(1, 2))
    Ms = np.where(finite[:, None, None], Mc, np.eye(k))
    try:
        inv = np.linalg.inv(Ms)
    except np.linalg.LinAlgError:
        sign, _ = np.linalg.slogdet(Ms)
        finite &= sign != 0
        inv = np.linalg.inv(np.where(finite[:, None, None], Ms, np.eye(k)))
    inv[~finite] = np.nan
    return np.ascontiguousarray(np.moveaxis(inv, 0, 2))


def _matvec(Minv: Array, r: Array) -> Array:
    """Batched ``Minv @ r`` for species-major ``Minv (k, k, N)`` and ``r (k, N)``."""
    k = r.shape[0]
    if k == 1:
        return Minv[0] * r
    if k <= 4:
        out = np.empty_like(r)
        tmp = np.empty_like(r[0])
        for i in range(k):  # loops over species, not cells
            oi = out[i]
            np.multiply(Minv[i, 0], r[0], out=oi)
            for j in range(1, k):
                np.multiply(Minv[i, j], r[j], out=tmp)
                oi += tmp
        return out
    return np.einsum("ijn,jn->in", Minv, r)


# ---------------------------------------------------------------------------- helpers
def take_cells(obj: Any, idx: NDArray[np.intp], n: int) -> Any:
    """Select cells ``idx`` from per-cell arguments.

    Every NumPy array whose leading dimension is ``n`` is treated as per-cell and indexed;
    dicts, lists and tuples are walked recursively; anything else (floats, strings,
    arrays of another length) is passed through unchanged.

    Args:
        obj: An argument (or container of arguments) for the RHS.
        idx: Local indices of the cells to keep, shape ``(N_keep,)``.
        n: The current number of cells.

    Returns:
        The same structure with per-cell arrays restricted to ``idx``.
    """
    if isinstance(obj, np.ndarray):
        return obj[idx] if obj.ndim >= 1 and obj.shape[0] == n else obj
    if isinstance(obj, dict):
        return {key: take_cells(v, idx, n) for key, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(take_cells(v, idx, n) for v in obj)
    if isinstance(obj, list):
        return [take_cells(v, idx, n) for v in obj]
    return obj


def _wrms(x: Array, scale: Array) -> Array:
    """Per-cell weighted RMS norm of species-major ``x (k, N)``, shape ``(N,)``."""
    z = x / scale
    z *= z
    return np.sqrt(z.sum(axis=0) / x.shape[0])


class _Problem:
    """Adapts the user's ``(N, k)`` functions to the kernel's species-major layout."""

    def __init__(
        self,
        rhs: Callable[..., Array],
        jac: Callable[..., Array] | None,
        k: int,
        atol: Array,
        counters: dict[str, int],
    ) -> None:
        self.rhs, self.jac, self.k, self.atol, self.counters = rhs, jac, k, atol, counters

    def f(self, t: Array, y: Array, args: tuple) -> Array:
        """RHS at per-cell times ``t (N,)`` and states ``y (k, N)``; returns ``(k, N)``."""
        out = self.rhs(t, y.T, *args)
        self.counters["rhs_evals"] += 1
        n = y.shape[1]
        if not isinstance(out, np.ndarray) or out.shape != (n, self.k):
            shape = getattr(out, "shape", type(out).__name__)
            raise UserError(
                f"rhs returned shape {shape}; expected ({n}, {self.k}) for y of shape"
                f" ({n}, {self.k})."
            )
        return np.ascontiguousarray(out.T, dtype=float)

    def jacobian(self, t: Array, y: Array, f0: Array, args: tuple) -> Array:
        """Jacobian ``(k, k, N)``: analytic if given, else forward differences."""
        self.counters["jac_evals"] += 1
        k, n = y.shape
        if self.jac is not None:
            J = np.asarray(self.jac(t, y.T, *args), dtype=float)
            if J.shape != (n, k, k):
                raise UserError(f"jac returned shape {J.shape}; expected ({n}, {k}, {k}).")
            return np.ascontiguousarray(np.moveaxis(J, 0, 2))
        return fd_jacobian(self.f, t, y, f0, args, self.atol)


def fd_jacobian(
    f: Callable[[Array, Array, tuple], Array],
    t: Array,
    y: Array,
    f0: Array,
    args: tuple,
    atol: Array,
) -> Array:
    """Forward-difference Jacobian, vectorised over cells (``k`` extra RHS calls).

    Args:
        f: Species-major right-hand side ``f(t, y, args) -> (k, N)``.
        t: Per-cell times, shape ``(N,)``.
        y: States, shape ``(k, N)``.
        f0: ``f(t, y, args)``, shape ``(k, N)``.
        args: Extra RHS arguments (already restricted to these cells).
        atol: Absolute tolerance per species, shape ``(k,)``; floors the increment.

    Returns:
        ``J[i, j, n] ≈ ∂f_i/∂y_j`` of cell ``n``, shape ``(k, k, N)``.
    """
    k, n = y.shape
    J = np.empty((k, k, n))
    for j in range(k):  # loop over species (k), not over cells
        yj = y[j]
        step = _SQRT_EPS * np.maximum(np.abs(yj), atol[j])
        yp = y.copy()
        yp[j] = yj + step
        step = yp[j] - yj  # exactly representable increment
        J[:, j, :] = (f(t, yp, args) - f0) / step
    return J


@dataclass
class SolveResult:
    """Output of :func:`solve_cells`.

    Attributes:
        y: Final states, shape ``(N, k)``.
        h: Each cell's next proposed step size, shape ``(N,)``; reuse it for a warm restart.
        counters: Work counters (see :func:`solve_cells`).
    """

    y: Array
    h: Array
    counters: dict[str, int]


def _initial_step(
    prob: _Problem,
    t: Array,
    y: Array,
    f0: Array,
    args: tuple,
    rtol: float,
    order: int,
    span: float,
) -> Array:
    """Starting step size per cell (Hairer, Nørsett & Wanner 1993, Sect. II.4).

    Args:
        prob: The adapted problem.
        t: Per-cell times, shape ``(N,)``.
        y: States, shape ``(k, N)``.
        f0: RHS at ``(t, y)``, shape ``(k, N)``.
        args: RHS arguments for these cells.
        rtol: Relative tolerance.
        order: Order of the method.
        span: Length of the integration interval.

    Returns:
        Step sizes, shape ``(N,)``.
    """
    scale = prob.atol[:, None] + rtol * np.abs(y)
    d0 = _wrms(y, scale)
    d1 = _wrms(f0, scale)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
        h0 = np.minimum(h0, span)
        f1 = prob.f(t + h0, y + h0 * f0, args)
        d2 = _wrms(f1 - f0, scale) / h0
        dm = np.maximum(d1, d2)
        h1 = np.where(dm <= 1e-15, np.maximum(1e-6, h0 * 1e-3), (0.01 / dm) ** (1.0 / (order + 1)))
        h = np.minimum(100.0 * h0, h1)
    h = np.where(np.isfinite(h) & (h > 0), h, 1e-6 * span)
    return np.minimum(h, span)


def solve_cells(
    rhs: Callable[..., Array],
    y0: Array,
    t0: float,
    t1: float,
    *,
    jac: Callable[..., Array] | None = None,
    args: tuple = (),
    rtol: float = 1e-6,
    atol: float | Array = 1e-9,
    h0: Array | None = None,
    method: str = "rodas4",
    autonomous: bool = False,
    max_sweeps: int = 1_000_000,
    h_min_rel: float = 1e-14,
    row_ids: NDArray[np.integer] | None = None,
    fixed_step: bool = False,
) -> SolveResult:
    """Advance ``N`` independent stiff systems from ``t0`` to ``t1`` with per-cell steps.

    Args:
        rhs: Vectorised right-hand side ``rhs(t, y, *args) -> (N, k)``. ``t`` is an array of
            shape ``(N,)`` (each cell's own time, like a per-cell parameter).
        y0: Initial states, shape ``(N, k)``.
        t0: Start time.
        t1: End time (``t1 >= t0``).
        jac: Optional analytic Jacobian ``jac(t, y, *args) -> (N, k, k)``; forward
            differences (``k`` extra RHS calls per step) otherwise.
        args: Extra arguments for ``rhs``/``jac``. Arrays whose leading dimension is ``N``
            (also inside dicts, lists, tuples) are per-cell and follow the cells.
        rtol: Relative tolerance.
        atol: Absolute tolerance, scalar or per species shape ``(k,)``.
        h0: Per-cell starting step sizes, shape ``(N,)``; NaN or non-positive entries are
            estimated. Pass the previous result's ``h`` for a warm restart.
        method: ``"rodas4"`` (order 4, default) or ``"rodas3"`` (order 3).
        autonomous: If True, ``rhs`` does not depend on ``t`` and the ``∂f/∂t`` term is
            skipped (saves one RHS call per step).
        max_sweeps: Maximum number of vectorised steps before giving up.
        h_min_rel: Step-size floor relative to ``max(|t0|, |t1|, t1 - t0)``.
        row_ids: Labels of the cells used in error messages (e.g. state-table rows),
            shape ``(N,)``; default ``0..N-1``.
        fixed_step: If True, take constant steps ``h0`` (the last one shortened to hit
            ``t1``) and accept every finite step; for convergence-order studies.

    Returns:
        Final states, next step sizes and counters: ``steps`` and ``rejected`` (summed over
        cells), ``sweeps`` (vectorised steps), ``rhs_evals``, ``jac_evals`` and
        ``linear_solves`` (batched calls, each over all active cells), ``max_cell_steps``.

    Raises:
        SimulationError: On NaN/Inf in the state or RHS, a step-size underflow, or
            ``max_sweeps`` exceeded; the message names the failing rows and time.
        UserError: On bad arguments (unknown method, shape mismatch).
    """
    try:
        tab = METHODS[method]
    except KeyError:
        raise UserError(
            f"Unknown integration method {method!r}; valid methods: {', '.join(METHODS)}."
        ) from None
    y_in = np.asarray(y0, dtype=float)
    if y_in.ndim != 2:
        raise UserError(f"y0 must have shape (N, k); got {y_in.shape}.")
    n, k = y_in.shape
    labels = np.arange(n) if row_ids is None else np.asarray(row_ids)
    counters = dict.fromkeys(
        ("steps", "rejected", "sweeps", "rhs_evals", "jac_evals", "linear_solves"), 0
    )
    counters["max_cell_steps"] = 0
    t0, t1 = float(t0), float(t1)
    span = t1 - t0
    h_all = np.full(n, np.nan) if h0 is None else np.array(h0, dtype=float, copy=True)
    if n == 0 or span == 0.0:
        return SolveResult(y_in.copy(), h_all, counters)
    if span < 0:
        raise UserError(f"t_span must be increasing; got ({t0}, {t1}).")
    atol_k = np.broadcast_to(np.asarray(atol, dtype=float), (k,)).copy()
    bad0 = ~np.all(np.isfinite(y_in), axis=1)
    if bad0.any():
        raise SimulationError(
            f"non-finite initial state in rows {labels[bad0][:10].tolist()} at t={t0:g}"
        )
    prob = _Problem(rhs, jac, k, atol_k, counters)

    s = tab.stages
    A = np.array(tab.a)
    C = np.array(tab.c)
    Mw = np.array(tab.m)
    E = np.array(tab.e)
    alpha, gammas, new_f = tab.alpha, tab.gammas, tab.new_f
    ginv = 1.0 / tab.gamma
    expo = 1.0 / tab.elo
    safety, fac_min, fac_max = 0.9, 0.2, 6.0
    h_floor = h_min_rel * max(abs(t0), abs(t1), span)
    atol_col = atol_k[:, None]
    # Stiffly accurate methods whose error estimate is the last stage (RODAS3, RODAS4).
    err_is_last = bool(np.all(E[:-1] == 0.0) and E[-1] == 1.0)

    # Working set: species-major arrays of the still-active cells; idx maps them to rows.
    idx = np.arange(n)
    y = np.ascontiguousarray(y_in.T)  # (k, m)
    t = np.full(n, t0)
    args_w = args
    f0 = prob.f(t, y, args_w)
    h = h_all
    if fixed_step and not np.all(h > 0):
        raise UserError("fixed_step=True needs positive step sizes h0 for every cell.")
    need = ~(h > 0)  # NaN or non-positive: estimate
    if need.any():
        sel = np.flatnonzero(need)
        h[sel] = _initial_step(
            prob, t[sel], y[:, sel], f0[:, sel], take_cells(args_w, sel, n), rtol, tab.order,
            span,
        )  # fmt: skip
    h_prev = h.copy()
    n_steps = np.zeros(n, dtype=np.int64)
    y_out = np.empty((n, k))
    h_out = np.empty(n)
    have_f0 = True

    # Controller exponent as a cheap root where possible (pow is slow on arrays).
    if tab.elo == 4.0:
        root = lambda x: np.sqrt(np.sqrt(x))  # noqa: E731
    elif tab.elo == 3.0:
        root = np.cbrt
    else:
        root = lambda x: x**expo  # noqa: E731
    ep = np.ones(n)  # err_prev ** (1/elo) of each cell's last accepted step
    ep_floor = 1e-4**expo
    c_rows = [bool(np.any(C[i, :i])) for i in range(s)]
    y_from_last = err_is_last and new_f[-1] and np.array_equal(Mw[:-1], A[-1, :-1])
    for _ in range(max_sweeps):
        m = idx.size
        if not have_f0:
            f0 = prob.f(t, y, args_w)
        have_f0 = False
        remaining = t1 - t
        last = remaining <= 1.01 * h
        hs = np.where(last, remaining, h)
        hinv = 1.0 / hs
        # Iteration matrix (I/(h γ) - J)^-1 per cell, shape (k, k, m).
        Mmat = prob.jacobian(t, y, f0, args_w)
        np.negative(Mmat, out=Mmat)
        gh = ginv * hinv
        for i in range(k):
            Mmat[i, i] += gh
        Minv = batched_inverse(Mmat)
        if not autonomous:
            dt = _SQRT_EPS * np.maximum(np.abs(t), 1.0)
            ft = (prob.f(t + dt, y, args_w) - f0) / dt
        Kst = np.empty((s, k, m))
        Kflat = Kst.reshape(s, k * m)
        F = f0
        with np.errstate(all="ignore"):
            for i in range(s):
                if i > 0 and new_f[i]:
                    Ys = (A[i, :i] @ Kflat[:i]).reshape(k, m)
                    Ys += y
                    F = prob.f(t if autonomous else t + alpha[i] * hs, Ys, args_w)
                if c_rows[i]:
                    r = (C[i, :i] @ Kflat[:i]).reshape(k, m)
                    r *= hinv
                    r += F
                else:
                    r = F
                if not autonomous and gammas[i] != 0.0:
                    r = r + (gammas[i] * hs) * ft
                Kst[i] = _matvec(Minv, r)
            counters["linear_solves"] += s
            if y_from_last:
                y_new = Ys + Kst[-1]  # stiffly accurate: y1 = last stage argument + K_s
            else:
                y_new = y + (Mw @ Kflat).reshape(k, m)
            err_vec = Kst[-1] if err_is_last else (E @ Kflat).reshape(k, m)
            scale = np.maximum(np.abs(y), np.abs(y_new))
            scale *= rtol
            scale += atol_col
            err = _wrms(err_vec, scale)
            counters["sweeps"] += 1
            # NaN error (non-finite stages) counts as a failed step.
            ok = np.isfinite(err)
            accept = ok if fixed_step else err <= 1.0
            # Standard controller fac = safety err^(-1/elo), limited by Gustafsson's
            # predictive controller after accepted steps (damps oscillating sequences).
            ec = root(np.maximum(err, 1e-10))
            fac = safety / ec
            pred = fac * (hs / h_prev) * (ep / ec)
            fac = np.where(accept & (n_steps > 0), np.minimum(fac, pred), fac)
            np.clip(fac, fac_min, fac_max, out=fac)
        n_acc = int(np.count_nonzero(accept))
        counters["steps"] += n_acc
        counters["rejected"] += m - n_acc
        if n_acc == m:
            h_new = h if fixed_step else hs * fac
            y = y_new
            t = np.where(last, t1, t + hs)
            h_prev = hs
            ep = np.maximum(ec, ep_floor)
            n_steps += 1
        else:
            if not ok.all():
                fac[~ok] = fac_min
                badf = ~ok & ~np.isfinite(f0).all(axis=0)
                if badf.any():
                    raise SimulationError(
                        f"rhs returned NaN/Inf in rows {labels[idx[badf]][:10].tolist()} at"
                        f" t={t[badf][0]:g}"
                    )
            np.minimum(fac, 1.0, out=fac, where=~accept)
            h_new = np.where(ok, h, hs * fac) if fixed_step else hs * fac
            y = np.where(accept, y_new, y)
            t = np.where(accept, np.where(last, t1, t + hs), t)
            h_prev = np.where(accept, hs, h_prev)
            ep = np.where(accept, np.maximum(ec, ep_floor), ep)
            n_steps += accept
        done = accept & last
        # A clipped final step says nothing bad about the step the cell wanted: keep it.
        h = np.where(done, np.maximum(h_new, h), h_new)
        if n_acc < m:
            tiny = ~accept & (h < h_floor)
            if tiny.any():
                why = (
                    "non-finite stage values (NaN/Inf)"
                    if (~ok[tiny]).any()
                    else f"tolerance (rtol={rtol:g}, atol={atol})"
                )
                raise SimulationError(
                    f"step size underflow (h < {h_floor:.3g}) in rows"
                    f" {labels[idx[tiny]][:10].tolist()} at t={t[tiny][0]:g}: unable to meet"
                    f" the {why}"
                )
        if done.any():
            gi = idx[done]
            y_out[gi] = y[:, done].T
            h_out[gi] = h[done]
            counters["max_cell_steps"] = max(counters["max_cell_steps"], int(n_steps[done].max()))
            keep = np.flatnonzero(~done)
            if keep.size == 0:
                return SolveResult(y_out, h_out, counters)
            args_w = take_cells(args_w, keep, m)
            idx, y, t, h = idx[keep], y[:, keep], t[keep], h[keep]
            h_prev, ep, n_steps = h_prev[keep], ep[keep], n_steps[keep]
    raise SimulationError(
        f"more than {max_sweeps} steps needed in rows {labels[idx[:10]].tolist()}; reached"
        f" t={t.min():g} of {t1:g}"
    )
