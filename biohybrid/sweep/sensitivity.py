"""Global sensitivity indices from a Sobol or Morris sweep (SALib).

* Sobol design: first-order ``S1`` and total-order ``ST`` indices with bootstrap
  confidence half-widths (Saltelli 2010 / Jansen 1999 estimators, as SALib implements them).
* Morris design: elementary-effect statistics ``mu``, ``mu_star`` (mean absolute effect,
  a screening proxy for total order) and ``sigma`` (interactions and non-linearity).

Replicates of a design point are averaged before the analysis, so the indices describe
the mean response; the replicate spread is in the results table itself.

References:
    Saltelli et al. (2010), Comput. Phys. Commun. 181:259-270.
    Jansen (1999), Comput. Phys. Commun. 117:35-43.
    Morris (1991), Technometrics 33:161-174; Campolongo et al. (2007), Environ. Model.
    Softw. 22:1509-1518.
    Herman & Usher (2017), J. Open Source Softw. 2:97 (SALib).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biohybrid.errors import UserError
from biohybrid.sweep.design import MORRIS_LEVELS, SENSITIVITY_DESIGNS, Design, design_from_dict
from biohybrid.sweep.execute import ROW_COLUMNS, STATUS_COLUMNS


def indices(
    design: Design,
    y: np.ndarray,
    *,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Sensitivity indices of one output over a Sobol or Morris design.

    Args:
        design: A ``sobol`` or ``morris`` design.
        y: The output at every design point, shape ``(n_points,)``, in design order.
        num_resamples: Bootstrap resamples for the confidence intervals.
        conf_level: Confidence level of the intervals.
        seed: Seed of the bootstrap.

    Returns:
        One row per parameter. Sobol: ``parameter, S1, S1_conf, ST, ST_conf``. Morris:
        ``parameter, mu, mu_star, mu_star_conf, sigma``.

    Raises:
        UserError: If the design is not a sensitivity design or ``y`` has the wrong
            shape or non-finite values.
    """
    if design.kind not in SENSITIVITY_DESIGNS:
        raise UserError(
            f"Sensitivity indices need a sobol or morris design; this sweep is '{design.kind}'."
        )
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (design.n_points,):
        raise UserError(f"Expected {design.n_points} outputs (one per point), got {y.shape}.")
    if not np.all(np.isfinite(y)):
        raise UserError(
            f"{int((~np.isfinite(y)).sum())} design points have no finite output (failed"
            " runs?); sensitivity indices need every point. Re-run with retry_failed=True."
        )
    problem = design.problem()
    if design.kind == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(
            problem,
            y,
            calc_second_order=False,
            num_resamples=num_resamples,
            conf_level=conf_level,
            seed=seed + 1,  # SALib ignores a seed of 0 (`if seed:`)
        )
        cols = ("S1", "S1_conf", "ST", "ST_conf")
    else:
        from SALib.analyze import morris

        x = design.points[design.names].to_numpy(dtype=np.float64)
        res = morris.analyze(
            problem,
            x,
            y,
            num_resamples=num_resamples,
            conf_level=conf_level,
            num_levels=MORRIS_LEVELS,
            seed=seed + 1,  # SALib ignores a seed of 0 (`if seed:`)
        )
        cols = ("mu", "mu_star", "mu_star_conf", "sigma")
    out = pd.DataFrame({c: np.asarray(res[c], dtype=np.float64) for c in cols})
    out.insert(0, "parameter", design.names)
    return out


def _load(sweep: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, Design]:
    from biohybrid.sweep.api import load_sweep
    from biohybrid.sweep.store import SweepStore

    if isinstance(sweep, pd.DataFrame):
        path = sweep.attrs.get("sweep", {}).get("path")
        if path is None:
            raise UserError(
                "Pass the DataFrame returned by biohybrid.sweep (it records its folder) or"
                " the sweep folder itself."
            )
        df = sweep
    else:
        path = sweep
        df = load_sweep(path)
    design = design_from_dict(SweepStore(path).record()["design"])
    return df, design


def metric_columns(df: pd.DataFrame, design_names: Sequence[str]) -> list[str]:
    """The numeric metric columns of a results table."""
    skip = {*ROW_COLUMNS, *STATUS_COLUMNS, *design_names}
    return [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


def sensitivity(
    sweep: pd.DataFrame | str | Path,
    metrics: str | Sequence[str] | None = None,
    *,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """First- and total-order Sobol indices (or Morris statistics) of a sweep's metrics.

    Args:
        sweep: The DataFrame returned by :func:`biohybrid.sweep` or a sweep folder.
        metrics: A metric name or names (default: every numeric metric).
        num_resamples: Bootstrap resamples for the confidence intervals.
        conf_level: Confidence level of the intervals.
        seed: Seed of the bootstrap.

    Returns:
        A tidy table: ``metric, parameter`` and ``S1, S1_conf, ST, ST_conf`` (Sobol) or
        ``mu, mu_star, mu_star_conf, sigma`` (Morris).

    Raises:
        UserError: If the sweep is not a Sobol or Morris design, a metric is unknown, or
            a design point has no completed run.
    """
    df, design = _load(sweep)
    available = metric_columns(df, design.names)
    if metrics is None:
        names = available
    else:
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        for m in names:
            if m not in available:
                raise UserError(
                    f"Unknown metric '{m}'. Metrics of this sweep: {', '.join(available)}."
                )
    ok = df[df["status"] == "completed"]
    frames = []
    for m in names:
        y = ok.groupby("point")[m].mean().reindex(range(design.n_points)).to_numpy()
        if np.nanstd(y) == 0.0:  # a constant output has no variance to apportion
            continue
        table = indices(design, y, num_resamples=num_resamples, conf_level=conf_level, seed=seed)
        table.insert(0, "metric", m)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=["metric", "parameter"])
    return pd.concat(frames, ignore_index=True)
