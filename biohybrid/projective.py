"""Coarse projective (equation-free) integration of a model's slow variables.

A fine-scale simulator (here: a whole hybrid model, one ``micro_step`` at a time) is run for
a short *burst*; the slow (coarse) variables are *restricted* from its state after each micro
step; their time derivative is estimated by a least-squares line through the burst samples
(optionally after discarding the first samples, while fast modes heal); the coarse variables
are *projected* forward over a long interval ``Δ`` with that derivative (forward Euler on the
coarse level); and the fine state is *lifted* to agree with the projected coarse variables.

With ``log=True`` the fit and projection are done on ``log(x)``, so exponential growth
(e.g. cyst volumes) is projected exactly when the rate is constant over the step.

The integrator is model-agnostic: the model supplies ``micro_step``, ``restrict`` and
``lift`` callables. Coarse variables may appear during a burst (a new cyst): a column whose
samples are NaN except at the last ``m`` micro steps is fitted over those ``m`` samples, and
held (zero slope) when fewer than two exist.

References:
    Kevrekidis, I. G., Gear, C. W., Hyman, J. M., Kevrekidis, P. G., Runborg, O. &
    Theodoropoulos, C. (2003). Equation-free, coarse-grained multiscale computation:
    enabling microscopic simulators to perform system-level analysis. Commun. Math. Sci.
    1(4):715-762.
    Gear, C. W. & Kevrekidis, I. G. (2003). Projective methods for stiff differential
    equations: problems with gaps in their eigenvalue spectrum. SIAM J. Sci. Comput.
    24(4):1091-1106.
    Lee, S. L. & Gear, C. W. (2007). Second-order accurate projective integrators for
    multiscale problems. J. Comput. Appl. Math. 201(1):258-274.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import SimulationError, UserError


def fit_slopes(
    times: NDArray[np.float64], samples: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Least-squares line through each column of ``samples``, evaluated at the last time.

    Args:
        times: Sample times, shape ``(m,)``.
        samples: Coarse variables, shape ``(m, n)``; NaN marks a variable that did not
            exist yet at that sample (only leading NaNs are meaningful).

    Returns:
        ``(value, slope, t_mid)``, each of shape ``(n,)``: the fitted value at ``times[-1]``,
        the time derivative, and the mean sample time, where the slope is the second-order
        estimate of the derivative. Columns with fewer than two finite samples get their
        last value and slope 0.
    """
    t = np.asarray(times, dtype=float)
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[0] != t.size:
        raise ValueError(f"samples must have shape ({t.size}, n), got {x.shape}")
    ok = np.isfinite(x)
    w = ok.astype(float)
    n_ok = w.sum(axis=0)
    xz = np.where(ok, x, 0.0)
    tm = (w * t[:, None]).sum(axis=0) / np.maximum(n_ok, 1.0)
    xm = xz.sum(axis=0) / np.maximum(n_ok, 1.0)
    dt = (t[:, None] - tm) * w
    sxx = (dt * dt).sum(axis=0)
    sxy = (dt * (xz - xm)).sum(axis=0)
    fit = n_ok >= 2
    slope = np.zeros(x.shape[1])
    np.divide(sxy, sxx, out=slope, where=fit & (sxx > 0))
    value = np.where(fit, xm + slope * (t[-1] - tm), x[-1])
    return value, slope, np.where(fit, tm, t[-1])


def _lagrange(
    ts: list[NDArray[np.float64]], ss: list[NDArray[np.float64]], t: float
) -> NDArray[np.float64]:
    """Per column, the polynomial through ``(ts[i], ss[i])`` evaluated at ``t``."""
    out = np.zeros_like(ss[0])
    for i, (ti, si) in enumerate(zip(ts, ss, strict=True)):
        w = np.ones_like(si)
        for j, tj in enumerate(ts):
            if j != i:
                w = w * (t - tj) / np.where(ti != tj, ti - tj, np.inf)
        out = out + w * si
    return out


def _extrapolated_rate(
    history: list[tuple[NDArray[np.float64], NDArray[np.float64]]],
    latest: NDArray[np.float64],
    t0: float,
    t1: float,
    present: NDArray[np.bool_],
    max_order: NDArray[np.int64] | None = None,
) -> NDArray[np.float64]:
    """Mean over ``[t0, t1]`` of the slope polynomial through the history, per column.

    Args:
        history: ``(t_mid, slope)`` per burst, oldest first; NaN slopes mark columns not
            fitted over that whole burst.
        latest: The latest burst's slope, shape ``(n,)`` (used where the history is short).
        t0: Start of the projection.
        t1: End of the projection.
        present: Columns fitted over the whole latest burst (others use ``latest`` alone).
        max_order: Optional per-column cap on the order, shape ``(n,)``.

    Returns:
        The rate to project with, shape ``(n,)``.
    """
    rate = np.asarray(latest, dtype=float).copy()
    for k in range(2, len(history) + 1):
        ts = [h[0] for h in history[-k:]]
        ss = [h[1] for h in history[-k:]]
        ok = present & np.all(np.isfinite(np.vstack(ss)), axis=0)
        if max_order is not None:
            ok &= np.asarray(max_order) >= k
        if t1 > t0:
            nodes = (t0, 0.5 * (t0 + t1), t1)
            vals = [_lagrange(ts, [np.nan_to_num(x) for x in ss], tn) for tn in nodes]
            mean = (vals[0] + 4.0 * vals[1] + vals[2]) / 6.0
        else:
            mean = latest
        rate = np.where(ok, mean, rate)
    return rate


@dataclass
class ProjectiveStats:
    """Work done by a :class:`CoarseProjectiveIntegrator`.

    Attributes:
        bursts: Bursts run.
        micro_steps: Micro steps of the fine model.
        projected_time: Time covered by projection (not simulated), model time unit.
        simulated_time: Time covered by micro steps, model time unit.
    """

    bursts: int = 0
    micro_steps: int = 0
    projected_time: float = 0.0
    simulated_time: float = 0.0


@dataclass
class CoarseProjectiveIntegrator:
    """Projective forward Euler on coarse variables, with a fine simulator in bursts.

    Args:
        micro_step: Advance the fine model by one micro step; returns the new time.
        restrict: Return the coarse variables now, shape ``(n,)`` (NaN for absent ones;
            ``n`` must not change within a burst).
        lift: ``lift(x, delta)``: set the fine model to coarse state ``x`` (shape ``(n,)``)
            and advance its clock by ``delta``.
        n_burst: Micro steps per burst (>= 1; >= 2 samples are needed for a slope).
        n_discard: Burst samples discarded before the fit (healing of fast modes).
        log: Fit and project ``log(x)`` (``x`` must be positive where finite).
        order: 1 for projective forward Euler (the burst slope is used over the whole
            projection); 2 or 3 to pass a polynomial through the slopes of the last
            ``order`` bursts (each located at its burst's mean sample time) and project with
            its mean over the projection interval (Simpson's rule, exact for these
            polynomials): a projective Adams-Bashforth method of that order for smooth slow
            dynamics (cf. Lee & Gear 2007). Columns with a shorter slope history (variables
            that appeared recently) fall back to the order their history allows.
        anchor: Project from the ``"last"`` burst sample (deterministic simulators) or from
            the least-squares ``"fit"`` at the end of the burst (noisy ones).
        max_order: Optional per-column cap on the order, shape ``(n,)`` or a callable
            returning it (e.g. 1 for variables whose slope may jump between bursts, such as
            a variable that sits on a constraint, where a slope polynomial would amplify
            the jump).

    Attributes:
        stats: Work counters.
    """

    micro_step: Callable[[], float]
    restrict: Callable[[], NDArray[np.float64]]
    lift: Callable[[NDArray[np.float64], float], None]
    n_burst: int = 3
    n_discard: int = 0
    log: bool = False
    order: int = 2
    anchor: str = "last"
    max_order: NDArray[np.int64] | Callable[[], NDArray[np.int64]] | None = None
    stats: ProjectiveStats = field(default_factory=ProjectiveStats)
    _history: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = field(
        default_factory=list, repr=False
    )

    def __post_init__(self) -> None:
        if self.n_burst < 1:
            raise UserError(f"projective integration needs n_burst >= 1, got {self.n_burst}")
        if not 0 <= self.n_discard < self.n_burst:
            raise UserError(
                f"n_discard must be in [0, n_burst) = [0, {self.n_burst}), got {self.n_discard}"
            )
        if self.order not in (1, 2, 3):
            raise UserError(f"projective order must be 1, 2 or 3, got {self.order}")
        if self.anchor not in ("last", "fit"):
            raise UserError(f"projective anchor must be 'last' or 'fit', got {self.anchor!r}")

    def reset(self) -> None:
        """Forget the slope history (e.g. after a discontinuity in the forcing)."""
        self._history = []

    def _coarse(self) -> NDArray[np.float64]:
        x = np.asarray(self.restrict(), dtype=float)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
        return x

    def step(self, t0: float, delta: float, n_burst: int | None = None) -> NDArray[np.float64]:
        """One projective step: a burst from ``t0``, then projection over ``delta``.

        With ``delta = 0`` and a long burst this is a plain simulation that also records the
        slope for the next (second-order) step, e.g. as a start-up step.

        Args:
            t0: Current time of the fine model.
            delta: Projection interval after the burst (>= 0), model time unit.
            n_burst: Micro steps of this burst (default :attr:`n_burst`).

        Returns:
            The projected coarse variables (in original, not log, units), shape ``(n,)``.

        Raises:
            SimulationError: If the coarse variables change length during the burst or
                the projection is not finite.
        """
        times, samples = [t0], [self._coarse()]
        t = t0
        n_micro = self.n_burst if n_burst is None else int(n_burst)
        for _ in range(n_micro):
            t = float(self.micro_step())
            times.append(t)
            samples.append(self._coarse())
        self.stats.bursts += 1
        self.stats.micro_steps += n_micro
        self.stats.simulated_time += t - t0
        sizes = {s.size for s in samples}
        if len(sizes) != 1:
            raise SimulationError(f"coarse variables changed length within a burst: {sizes}")
        k = self.n_discard
        value, slope, t_mid = fit_slopes(np.asarray(times[k:]), np.vstack(samples[k:]))
        if self.anchor == "last":
            value = np.where(np.isfinite(samples[-1]), samples[-1], value)
        # only slopes fitted over the whole burst enter the history: a variable that
        # appeared within the burst has a short, noisy slope at an irregular time
        whole = np.all(np.isfinite(np.vstack(samples[k:])), axis=0)
        slope = np.where(np.isfinite(samples[-1]), slope, 0.0)
        if self._history and self._history[-1][1].size != slope.size:
            self._history = []
        history = [*self._history, (t_mid, np.where(whole, slope, np.nan))][-self.order :]
        self._history = history
        cap = self.max_order() if callable(self.max_order) else self.max_order
        rate = _extrapolated_rate(history, slope, t, t + max(delta, 0.0), whole, cap)
        x = value + rate * max(delta, 0.0)
        x = np.where(np.isfinite(samples[-1]), x, samples[-1])
        if self.log:
            x = np.exp(x)
            x = np.where(np.isfinite(x), x, 0.0)
        if not np.all(np.isfinite(x)):
            raise SimulationError("coarse projection produced NaN/Inf")
        self.lift(x, float(max(delta, 0.0)))
        self.stats.projected_time += max(delta, 0.0)
        return x


@dataclass
class ProjectiveDriver:
    """Drive a :class:`~biohybrid.model.HybridModel` by bursts and coarse projections.

    A model returns one from ``build_driver()``. Each call of :meth:`advance` at the start
    of an output interval runs a burst of ``n_burst`` base ticks of every stage
    (``model.tick_once()``), projects the coarse variables over the rest of the interval
    (:class:`CoarseProjectiveIntegrator`), jumps the model's clock there
    (``model.jump``) and records a biomarker row. The first interval is simulated in full
    (start-up of the higher-order projection, whose slopes it keeps). Elsewhere, or when
    the output interval is too short to gain anything, it runs one plain tick.

    Args:
        restrict: Coarse variables now, shape ``(n,)`` (NaN for absent ones).
        lift: ``lift(x, delta)``: set the fine model to the projection ``x`` over ``delta``
            (called before the clock jumps, so ``model.t`` is the burst's end).
        n_burst: Base ticks per burst (>= 2).
        order: Projective order (1-3), see :class:`CoarseProjectiveIntegrator`.
        log: Project ``log(x)``.
        max_order: Per-column order cap (array or callable).
        on_burst: Called before each burst (e.g. to fix the set of coarse variables).

    Attributes:
        integrator: The projective integrator (after the first :meth:`advance`).
        bursts: Bursts run.
        projected_ticks: Ticks skipped by projection.
    """

    restrict: Callable[[], NDArray[np.float64]]
    lift: Callable[[NDArray[np.float64], float], None]
    n_burst: int = 4
    order: int = 2
    log: bool = False
    max_order: NDArray[np.int64] | Callable[[], NDArray[np.int64]] | None = None
    on_burst: Callable[[], None] | None = None
    integrator: CoarseProjectiveIntegrator | None = None
    bursts: int = 0
    projected_ticks: int = 0

    def __post_init__(self) -> None:
        if self.n_burst < 2:
            raise UserError(f"projective integration needs n_burst >= 2, got {self.n_burst}")

    @property
    def counters(self) -> dict[str, int]:
        """Work counters for the run manifest."""
        return {"projective_bursts": self.bursts, "projected_steps": self.projected_ticks}

    def advance(self, model: Any) -> None:
        """Advance ``model`` by one output interval (or one tick; see the class docstring)."""
        sched = model.schedule
        n_out = sched.n_output
        if n_out <= self.n_burst + 1 or model.tick % n_out:
            model.tick_once()
            return
        if self.integrator is None:

            def micro() -> float:
                model.tick_once()
                return float(model.t)

            self.integrator = CoarseProjectiveIntegrator(
                micro_step=micro,
                restrict=self.restrict,
                lift=self.lift,
                n_burst=self.n_burst,
                log=self.log,
                order=self.order,
                max_order=self.max_order,
            )
        if self.on_burst is not None:
            self.on_burst()
        n_b = n_out if model.tick == 0 else self.n_burst
        n_proj = n_out - n_b
        self.integrator.step(model.t, n_proj * sched.base, n_burst=n_b)
        model.jump(n_proj)
        self.bursts += 1
        self.projected_ticks += n_proj
        if n_proj:  # (a fully simulated interval was recorded by its last tick)
            model.record()


def projective_solve(
    f_micro: Callable[[NDArray[np.float64], float], NDArray[np.float64]],
    restrict: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    lift: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]],
    y0: NDArray[np.float64],
    *,
    dt_micro: float,
    n_burst: int,
    delta: float,
    t_end: float,
    n_discard: int = 0,
    log: bool = False,
    order: int = 2,
) -> tuple[NDArray[np.float64], ProjectiveStats]:
    """Functional form of coarse projective integration for a state vector.

    Args:
        f_micro: ``f_micro(y, dt) -> y'``, one micro step of the fine simulator.
        restrict: ``restrict(y) -> x``, the coarse variables.
        lift: ``lift(x, y) -> y'``, a fine state consistent with ``x`` (using ``y`` for the
            unresolved components).
        y0: Initial fine state.
        dt_micro: Micro step.
        n_burst: Micro steps per burst.
        delta: Projection interval after each burst.
        t_end: Final time; the last step is shortened to land on it.
        n_discard: Burst samples discarded before the fit.
        log: Project ``log(x)``.
        order: 1 (projective forward Euler), 2 or 3 (slope polynomial through the last
            ``order`` bursts).

    Returns:
        The fine state at ``t_end`` and the work counters.
    """
    state = {"y": np.asarray(y0, dtype=float).copy(), "t": 0.0}

    def micro() -> float:
        state["y"] = f_micro(state["y"], dt_micro)
        state["t"] += dt_micro
        return state["t"]

    def lift_(x: NDArray[np.float64], d: float) -> None:
        state["y"] = lift(x, state["y"])
        state["t"] += d

    integ = CoarseProjectiveIntegrator(
        micro,
        lambda: restrict(state["y"]),
        lift_,
        n_burst=n_burst,
        n_discard=n_discard,
        log=log,
        order=order,
    )
    burst = n_burst * dt_micro
    while state["t"] < t_end - 1e-12:
        remaining = t_end - state["t"]
        if remaining <= burst + 1e-12:
            while state["t"] < t_end - 1e-12:
                micro()
                integ.stats.micro_steps += 1
            break
        integ.step(state["t"], min(delta, remaining - burst))
    return state["y"], integ.stats
