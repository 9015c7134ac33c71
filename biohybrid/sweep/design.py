"""Sweep designs: which parameter values to run, how many replicates, and with which seeds.

Four designs, all built from one ``params`` mapping of declared parameter names:

* ``grid``: full factorial over value lists, ``{"s_max": [0.1, 0.5, 1.0], ...}`` (a list, a
  NumPy array or any other sequence of values); a range ``(lo, hi)`` (a tuple) is allowed
  when ``n`` is given and becomes ``n`` evenly spaced values.
* ``lhs``: a Latin hypercube of ``n`` points over ranges ``{"s_max": (0.1, 1.0), ...}``
  (SciPy's :class:`scipy.stats.qmc.LatinHypercube`).
* ``sobol``: Saltelli's extension of the Sobol sequence for first- and total-order Sobol
  indices, ``n * (d + 2)`` points (SALib, ``calc_second_order=False``); ``n`` should be a
  power of two.
* ``morris``: ``n`` Morris trajectories of ``d + 1`` points on a 4-level grid (SALib).

A range is a ``tuple`` ``(lo, hi)`` (or ``{"lo": ..., "hi": ...}``), on the command line
``--param NAME=lo:hi``; a list (or array) is always a list of values, so the sampled designs
refuse one instead of silently reading two values as a range.

Every design point is run ``replicates`` times. Runs are numbered in design order (point
major, replicate minor) and run ``i`` gets the integer seed
``SeedSequence(seed).spawn(n_runs)[i].generate_state(1)[0]``, so results never depend on the
number of workers or on the order in which runs finish.

References:
    McKay, Beckman & Conover (1979), Technometrics 21:239-245 (Latin hypercube sampling).
    Saltelli et al. (2010), Comput. Phys. Commun. 181:259-270 (Sobol design and estimators).
    Morris (1991), Technometrics 33:161-174; Campolongo et al. (2007), Environ. Model.
    Softw. 22:1509-1518 (elementary effects).
    Herman & Usher (2017), J. Open Source Softw. 2:97 (SALib).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from biohybrid.errors import UserError, did_you_mean, list_choices
from biohybrid.params import Overrides, check_whole, show_value
from biohybrid.scenario import parse_value
from biohybrid.settings import declarations

DESIGNS = ("grid", "lhs", "sobol", "morris")
SENSITIVITY_DESIGNS = ("sobol", "morris")
MORRIS_LEVELS = 4


@dataclass(frozen=True)
class Design:
    """A resolved sweep design.

    Attributes:
        kind: One of :data:`DESIGNS`.
        spec: ``{name: [values]}`` (grid) or ``{name: [lo, hi]}`` (sampled designs), JSON-ready.
        points: One row per design point, one column per swept parameter
            (shape ``(n_points, n_params)``).
        replicates: Runs per design point.
        seed: The sweep's root seed.
        n: The ``n`` the design was built with, or ``None``.
    """

    kind: str
    spec: dict[str, list[Any]]
    points: pd.DataFrame
    replicates: int
    seed: int
    n: int | None = None

    @property
    def names(self) -> list[str]:
        """The swept parameter names, in the order given."""
        return list(self.points.columns)

    @property
    def n_points(self) -> int:
        """Number of design points."""
        return len(self.points)

    @property
    def n_runs(self) -> int:
        """Number of runs: points times replicates."""
        return self.n_points * self.replicates

    def problem(self) -> dict[str, Any]:
        """The SALib problem dict (``num_vars``, ``names``, ``bounds``) of a sampled design."""
        return {
            "num_vars": len(self.names),
            "names": self.names,
            "bounds": [list(map(float, self.spec[k])) for k in self.names],
        }

    def run_seeds(self) -> np.ndarray:
        """Integer seed of every run in design order, shape ``(n_runs,)``, dtype int64."""
        children = np.random.SeedSequence(self.seed).spawn(self.n_runs)
        return np.array([int(c.generate_state(1)[0]) for c in children], dtype=np.int64)

    def runs(self) -> pd.DataFrame:
        """One row per run in design order: ``run, point, replicate, seed`` and the parameters.

        Also a ``param_hash`` column: a short hash of the run's parameter values, replicate
        and seed, which (with ``run``) identifies a finished run when a sweep resumes.
        """
        idx = np.repeat(np.arange(self.n_points), self.replicates)
        df = self.points.iloc[idx].reset_index(drop=True)
        df.insert(0, "run", np.arange(self.n_runs, dtype=np.int64))
        df.insert(1, "point", idx.astype(np.int64))
        df.insert(2, "replicate", np.tile(np.arange(self.replicates), self.n_points))
        df.insert(3, "seed", self.run_seeds())
        records = df[["replicate", "seed", *self.names]].to_dict("records")
        df.insert(4, "param_hash", [param_hash(r) for r in records])
        return df

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (kind, spec, n, replicates, seed and every point)."""
        return {
            "kind": self.kind,
            "spec": self.spec,
            "n": self.n,
            "replicates": self.replicates,
            "seed": self.seed,
            "n_points": self.n_points,
            "n_runs": self.n_runs,
            "points": {k: [_plain(v) for v in self.points[k]] for k in self.names},
        }


def _plain(value: Any) -> Any:
    """A NumPy scalar as the matching Python scalar (for JSON and hashing)."""
    return value.item() if isinstance(value, np.generic) else value


def param_hash(values: Mapping[str, Any]) -> str:
    """A 16-hex-digit hash of ``{name: value}`` (order-independent, floats exact via repr)."""
    text = json.dumps({k: _plain(v) for k, v in values.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_param_text(items: Sequence[str] | None) -> dict[str, Any]:
    """Parse command-line ``--param`` values into a ``params`` mapping.

    ``NAME=v1,v2,...`` gives a value list; ``NAME=lo:hi`` gives a range ``(lo, hi)``.

    Args:
        items: E.g. ``["s_max=0.1,0.5,1", "diffusion=1000:5000"]``.

    Returns:
        ``{name: [values]}`` or ``{name: (lo, hi)}``.

    Raises:
        UserError: On a missing ``=``, a repeated name or an unparsable value.
    """
    out = Overrides(origin="--param")
    for item in items or []:
        if "=" not in item:
            raise UserError(
                f"--param expects NAME=v1,v2,... or NAME=lo:hi, got '{item}'"
                " (e.g. --param s_max=0.1,0.5,1 or --param s_max=0.1:1)."
            )
        name, text = (s.strip() for s in item.split("=", 1))
        if not name:
            raise UserError(f"--param expects NAME=..., got '{item}': the name is missing.")
        if name in out:
            raise UserError(f"--param '{name}' is given twice; give each parameter once.")
        if ":" in text and "," not in text:
            parts = text.split(":")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise UserError(
                    f"--param {name}: a range is lo:hi with two numbers (e.g. 0.1:1), got '{text}'."
                )
            out[name] = (parse_value(parts[0].strip()), parse_value(parts[1].strip()))
        else:
            out[name] = [parse_value(v.strip()) for v in text.split(",") if v.strip()]
            if not out[name]:
                raise UserError(f"--param {name}: no values given.")
    return out


def _declarations(model_cls: type) -> dict[str, Any]:

    return declarations(model_cls)


def _check_range(name: str, value: Any, design: str) -> tuple[float, float]:
    if isinstance(value, Mapping):
        if set(value) != {"lo", "hi"}:
            raise UserError(
                f"A range for '{name}' given as a mapping needs exactly the keys 'lo' and 'hi',"
                f" got {sorted(map(str, value))}."
            )
        value = (value["lo"], value["hi"])
    if isinstance(value, list | np.ndarray) and design != "grid":
        raise UserError(
            f"The {design} design samples a range (lo, hi) for '{name}': give it as a tuple"
            f" (lo, hi) (on the command line: --param {name}=lo:hi). A list such as"
            f" {show_value(_values_list(value))} is a list of values, for the grid design."
        )
    value = tuple(_plain(v) for v in value) if isinstance(value, tuple) else value
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise UserError(
            f"The {design} design needs a range (lo, hi) of two numbers for '{name}',"
            f" got {show_value(value)} (on the command line: --param {name}=lo:hi)."
        )
    try:
        lo, hi = float(value[0]), float(value[1])
    except OverflowError:
        raise UserError(f"The range of '{name}' is too large: {show_value(value)}.") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UserError(f"The range of '{name}' must be finite with lo < hi, got ({lo}, {hi}).")
    return lo, hi


def _values_list(value: Any) -> list[Any]:
    """A sequence of values (list, tuple, NumPy array, pandas Series, range) as a list."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise UserError(f"A NumPy array of values must be one-dimensional, got {value.shape}.")
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, pd.Series | pd.Index):
        return [_plain(v) for v in value.tolist()]
    return [_plain(v) for v in value]


def _is_values(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim >= 1
    return isinstance(value, Sequence | pd.Series | pd.Index) and not isinstance(value, str | bytes)


def _cast(decl: Any, column: np.ndarray) -> pd.Series:
    """Cast sampled values to the declared kind (ints rounded)."""
    if decl is not None and decl.kind is int:
        return pd.Series(np.rint(column).astype(np.int64))
    return pd.Series(np.asarray(column, dtype=np.float64))


def make_design(
    params: Mapping[str, Any],
    *,
    model_cls: type,
    design: str = "grid",
    n: int | None = None,
    replicates: int = 1,
    seed: int = 0,
) -> Design:
    """Build and check a design.

    Args:
        params: ``{name: [values]}`` for a grid, ``{name: (lo, hi)}`` for sampled designs.
            Names are the model's declared parameters or run settings (``t_end``, ...).
        model_cls: The scenario's model class (its declarations validate the names).
        design: One of :data:`DESIGNS`.
        n: LHS: number of points. Sobol: base sample size (points = ``n * (d + 2)``).
            Morris: number of trajectories (points = ``n * (d + 1)``). Grid: optional, the
            number of values for each range.
        replicates: Runs per design point (each with its own seed).
        seed: Root seed of the design's sampling and of every run's seed.

    Returns:
        The design.

    Raises:
        UserError: On an unknown design or parameter name, a bad range or a bad ``n``.
    """
    if not isinstance(design, str) or design not in DESIGNS:
        shown = design if isinstance(design, str) else show_value(design)
        hint = did_you_mean(design, DESIGNS) if isinstance(design, str) else ""
        raise UserError(f"Unknown design '{shown}'.{hint} Valid designs: {', '.join(DESIGNS)}.")
    if not isinstance(params, Mapping):
        raise UserError(
            "params must be a mapping of parameter names to values, e.g."
            " {'s_max': [0.1, 0.5, 1.0]} (grid) or {'s_max': (0.1, 1.0)} (lhs, sobol,"
            f" morris); got a {type(params).__name__} {show_value(params)}."
        )
    if not params:
        raise UserError("A sweep needs at least one parameter to vary (--param NAME=...).")
    replicates = check_whole(replicates, "replicates", minimum=1)
    seed = check_whole(seed, "The sweep seed")
    n = check_whole(n, "n", minimum=1, none_ok=True)
    decls = _declarations(model_cls)
    for name in params:
        if not isinstance(name, str):
            raise UserError(f"Parameter names in params must be text, got {show_value(name)}.")
        if name == "seed":
            raise UserError("Use replicates (and the sweep seed) to vary seeds, not --param seed.")
        if name not in decls:
            raise UserError(
                f"Cannot sweep '{name}': not a parameter or run setting of model"
                f" '{model_cls.name}'.{did_you_mean(name, decls)}"
                f" Valid names: {list_choices(decls)}."
            )
    names = list(params)
    sample_seed = int(np.random.SeedSequence(int(seed)).generate_state(1)[0])
    spec: dict[str, list[Any]] = {}
    if design == "grid":
        columns = []
        for name in names:
            value = params[name]
            is_range = isinstance(value, tuple) or isinstance(value, Mapping)
            if is_range:
                if n is None or n < 2:
                    raise UserError(
                        f"The grid design takes value lists; for the range given for '{name}'"
                        " also give n >= 2 (evenly spaced values), or list the values."
                    )
                lo, hi = _check_range(name, value, design)
                vals = list(_cast(decls[name], np.linspace(lo, hi, n)))
            elif _is_values(value):
                vals = _values_list(value)
            elif isinstance(value, set | frozenset):
                raise UserError(
                    f"The values of '{name}' are a set, which has no order; give a list so that"
                    " the design's run order is reproducible."
                )
            else:
                vals = [_plain(value.item() if isinstance(value, np.ndarray) else value)]
            if not vals:
                raise UserError(f"No values given for '{name}'.")
            if len(set(map(repr, vals))) != len(vals):
                raise UserError(
                    f"Repeated values for '{name}': {show_value(vals)}. Use replicates instead."
                )
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
            if numeric and (decls[name].kind is float or any(isinstance(v, float) for v in vals)):
                vals = [float(v) for v in vals]  # 1 and 1.0 are the same design
            spec[name] = [_plain(v) for v in vals]
            columns.append(spec[name])
        rows = list(itertools.product(*columns))
        points = pd.DataFrame(rows, columns=names)
    else:
        bounds = [_check_range(k, params[k], design) for k in names]
        spec = {k: [lo, hi] for k, (lo, hi) in zip(names, bounds, strict=True)}
        problem = {"num_vars": len(names), "names": names, "bounds": [list(b) for b in bounds]}
        if design == "lhs":
            if n is None:
                raise UserError("The lhs design needs n, the number of points (--n).")
            from scipy.stats import qmc

            unit = qmc.LatinHypercube(d=len(names), seed=sample_seed).random(n)
            x = qmc.scale(unit, [b[0] for b in bounds], [b[1] for b in bounds])
        elif design == "sobol":
            if n is None:
                raise UserError("The sobol design needs n, the base sample size (e.g. --n 64).")
            if n & (n - 1):
                raise UserError(f"The sobol design needs n a power of two (e.g. 64), got {n}.")
            from SALib.sample import sobol

            x = sobol.sample(problem, n, calc_second_order=False, seed=sample_seed)
        else:
            if n is None or n < 2:
                raise UserError("The morris design needs n >= 2 trajectories (e.g. --n 10).")
            from SALib.sample import morris

            x = morris.sample(problem, n, num_levels=MORRIS_LEVELS, seed=sample_seed)
        points = pd.DataFrame({k: _cast(decls[k], x[:, j]) for j, k in enumerate(names)})
    return Design(
        kind=design,
        spec=spec,
        points=points,
        replicates=int(replicates),
        seed=int(seed),
        n=None if n is None else int(n),
    )


def design_from_dict(data: Mapping[str, Any]) -> Design:
    """Rebuild a :class:`Design` from :meth:`Design.to_dict` (e.g. read from ``sweep.json``)."""
    return Design(
        kind=data["kind"],
        spec={k: list(v) for k, v in data["spec"].items()},
        points=pd.DataFrame(data["points"]),
        replicates=int(data["replicates"]),
        seed=int(data["seed"]),
        n=data.get("n"),
    )
