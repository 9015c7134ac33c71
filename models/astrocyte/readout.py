"""Wave readouts: activation times, wave-front radius, wave speed and oscillation statistics.

All functions are pure and vectorised over cells; the model calls them with its arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def crossing_times(
    c_prev: NDArray[np.float64],
    c_now: NDArray[np.float64],
    t_prev: float,
    t_now: float,
    threshold: float,
) -> NDArray[np.float64]:
    """Times at which each cell's Ca²⁺ crosses ``threshold`` upwards within a step.

    The crossing time is interpolated linearly between the two samples.

    Args:
        c_prev: Ca²⁺ at ``t_prev``, µM, shape ``(N,)``.
        c_now: Ca²⁺ at ``t_now``, µM, shape ``(N,)``.
        t_prev: Earlier sample time, s.
        t_now: Later sample time, s.
        threshold: Activation threshold, µM.

    Returns:
        Crossing times, s, shape ``(N,)``; NaN where there is no upward crossing.
    """
    up = (c_prev <= threshold) & (c_now > threshold)
    frac = np.divide(
        threshold - c_prev, c_now - c_prev, out=np.ones_like(c_now), where=c_now != c_prev
    )
    return np.where(up, t_prev + np.clip(frac, 0.0, 1.0) * (t_now - t_prev), np.nan)


def front_radius(distance: NDArray[np.float64], t_act: NDArray[np.float64], t: float) -> float:
    """The wave-front radius at time ``t``: the furthest cell activated by then.

    Args:
        distance: Distance of each cell from the stimulus, µm, shape ``(N,)``.
        t_act: First activation time of each cell, s (NaN if never), shape ``(N,)``.
        t: Time, s.

    Returns:
        The radius, µm (0 when no cell is activated).
    """
    hit = np.isfinite(t_act) & (t_act <= t)
    return float(distance[hit].max()) if hit.any() else 0.0


def wave_statistics(
    distance: NDArray[np.float64],
    t_act: NDArray[np.float64],
    stimulated: NDArray[np.bool_],
) -> dict[str, float]:
    """Summary of a wave from per-cell activation times.

    The mean wave speed is the least-squares slope of distance against arrival time over
    the recruited (activated, not stimulated) cells, the measure used for culture waves
    (e.g. Charles et al. 1991, wave-front distance against time).

    Args:
        distance: Distance of each cell from the stimulus, µm, shape ``(N,)``.
        t_act: First activation time, s (NaN if never), shape ``(N,)``.
        stimulated: Which cells were stimulated directly, shape ``(N,)``.

    Returns:
        ``cells_recruited``, ``max_activation_distance_um``, ``mean_wave_speed_um_s``
        (NaN with fewer than 3 recruited cells), ``front_speed_um_s`` (furthest distance
        over its arrival time, NaN if none) and ``last_activation_s``.
    """
    rec = np.isfinite(t_act) & ~stimulated
    n = int(rec.sum())
    out = {
        "cells_recruited": float(n),
        "max_activation_distance_um": float(distance[rec].max()) if n else 0.0,
        "mean_wave_speed_um_s": float("nan"),
        "front_speed_um_s": float("nan"),
        "last_activation_s": float(t_act[rec].max()) if n else float("nan"),
    }
    if n:
        far = np.argmax(np.where(rec, distance, -1.0))
        t0 = float(np.nanmin(t_act[stimulated])) if np.isfinite(t_act[stimulated]).any() else 0.0
        if t_act[far] > t0:
            out["front_speed_um_s"] = float(distance[far] / (t_act[far] - t0))
    if n >= 3 and np.ptp(t_act[rec]) > 0:
        slope = np.polyfit(t_act[rec], distance[rec], 1)[0]
        out["mean_wave_speed_um_s"] = float(slope)
    return out


def oscillation_statistics(
    t: NDArray[np.float64], c: NDArray[np.float64], t_from: float = 0.0
) -> dict[str, float]:
    """Period and peak-to-trough amplitude of a sustained oscillation.

    Args:
        t: Sample times, s, shape ``(T,)``, ascending.
        c: Samples (e.g. Ca²⁺, µM), shape ``(T,)``.
        t_from: Ignore samples before this time (transient), s.

    Returns:
        ``amplitude`` (max - min over the window, same units as ``c``), ``period`` (mean
        interval between upward crossings of the window's mid level, s; NaN with fewer than
        three crossings), ``n_cycles``, ``c_max`` and ``c_min``.
    """
    keep = t >= t_from
    tt, cc = t[keep], c[keep]
    if cc.size < 3:
        nan = float("nan")
        return {"amplitude": nan, "period": nan, "n_cycles": 0.0, "c_max": nan, "c_min": nan}
    hi, lo = float(cc.max()), float(cc.min())
    mid = 0.5 * (hi + lo)
    up = np.flatnonzero((cc[:-1] < mid) & (cc[1:] >= mid))
    # interpolate the crossing instants
    tc = tt[up] + (mid - cc[up]) / (cc[up + 1] - cc[up]) * (tt[up + 1] - tt[up])
    period = float(np.diff(tc).mean()) if tc.size >= 3 else float("nan")
    return {
        "amplitude": hi - lo,
        "period": period,
        "n_cycles": float(max(tc.size - 1, 0)),
        "c_max": hi,
        "c_min": lo,
    }
