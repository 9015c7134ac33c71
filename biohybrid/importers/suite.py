"""Run one case of the SBML Test Suite (semantic, time-course) with the batched RODAS4.

A case folder ``NNNNN/`` holds the model, ``NNNNN-settings.txt`` and ``NNNNN-results.csv``;
a value passes when ``|computed - expected| <= absolute + relative * |expected|`` (the suite's
own criterion, README of ``cases/semantic``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import SimulationError, UserError
from biohybrid.importers.sbml import SbmlCache, SbmlModel, read_sbml
from biohybrid.intracellular import integrate


@dataclass(frozen=True)
class CaseSettings:
    """The ``NNNNN-settings.txt`` of a case."""

    start: float
    duration: float
    steps: int
    variables: tuple[str, ...]
    absolute: float
    relative: float
    amount: tuple[str, ...]
    concentration: tuple[str, ...]


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one case: ``status`` is ``"pass"``, ``"refused"`` or ``"fail"``."""

    case: str
    status: str
    reason: str = ""
    worst: float = 0.0


def read_settings(path: Path) -> CaseSettings:
    """Parse a settings file."""
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()

    def names(key: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in fields.get(key, "").split(",") if v.strip())

    return CaseSettings(
        start=float(fields["start"]),
        duration=float(fields["duration"]),
        steps=int(float(fields["steps"])),
        variables=names("variables"),
        absolute=float(fields["absolute"]),
        relative=float(fields["relative"]),
        amount=names("amount"),
        concentration=names("concentration"),
    )


def model_file(folder: Path) -> Path:
    """The case's SBML file: L3V1 if present, else the highest level below it."""
    case = folder.name
    for tag in ("l3v1", "l2v5", "l2v4", "l2v3", "l2v2", "l2v1", "l3v2"):
        candidate = folder / f"{case}-sbml-{tag}.xml"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no SBML file in {folder}")


def read_results(path: Path) -> tuple[list[str], NDArray[np.float64]]:
    """Header and values of a results CSV (first column is time)."""
    lines = path.read_text().strip().splitlines()
    header = [h.strip() for h in lines[0].split(",")]
    values = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    return header, values


def output(
    model: SbmlModel, name: str, want_amount: bool, t: float, y: NDArray, p: dict
) -> NDArray[np.float64]:
    """A reported variable, converted between amount and concentration as the case asks."""
    obs = model.observe(t, y, p)
    value = obs[name]
    kind = model.kinds.get(name)
    if kind in ("amount", "concentration"):
        size = obs[model.compartment[name]]
        if want_amount and kind == "concentration":
            value = value * size
        elif not want_amount and kind == "amount":
            value = value / size
    return value


def simulate(
    model: SbmlModel,
    settings: CaseSettings,
    params: dict | None = None,
    n: int = 1,
    rtol: float | None = None,
    atol: float | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Integrate ``n`` copies of the model; ``{variable: (steps + 1, n)}`` at the output times."""
    system = model.system
    p = system.params.defaults() | dict(params or {})
    times = np.linspace(settings.start, settings.start + settings.duration, settings.steps + 1)
    y = np.tile(system.initial_state(), (n, 1))
    rtol = rtol if rtol is not None else min(settings.relative * 1e-3, 1e-7)
    atol = atol if atol is not None else settings.absolute * 1e-3
    h = None
    out: dict[str, list] = {v: [] for v in settings.variables}
    t_prev = 0.0
    for t in times:
        if t > t_prev and system.k:
            res = integrate(
                system.rhs,
                y,
                (t_prev, t),
                jac=system.jac,
                args=(p, None),
                rtol=rtol,
                atol=atol,
                h0=h,
                autonomous=system.autonomous,
            )
            y, h = res.y, res.h
        t_prev = t
        for v in settings.variables:
            out[v].append(
                output(model, v, v in settings.amount, np.full(n, t), y, p)
                if v in model.kinds
                else np.full(n, np.nan)
            )
    return {v: np.array(rows) for v, rows in out.items()}


def run_case(folder: Path, cache: SbmlCache | None = None) -> CaseResult:
    """Import, simulate and compare one case."""
    folder = Path(folder)
    case = folder.name
    settings = read_settings(folder / f"{case}-settings.txt")
    header, expected = read_results(folder / f"{case}-results.csv")
    try:
        model = read_sbml(model_file(folder), cache)
    except UserError as exc:
        return CaseResult(case, "refused", str(exc).split(": ", 1)[-1])
    missing = [v for v in settings.variables if v not in model.kinds]
    if missing:
        return CaseResult(case, "fail", f"variables not in the model: {missing}")
    try:
        got = simulate(model, settings)
    except (SimulationError, UserError, FloatingPointError, ValueError) as exc:
        return CaseResult(case, "fail", f"simulation: {exc}"[:200])
    worst = 0.0
    for col, name in enumerate(header[1:], start=1):
        ref = expected[:, col]
        sim = got[name][:, 0]
        bound = settings.absolute + settings.relative * np.abs(ref)
        both_nan = np.isnan(ref) & np.isnan(sim)
        same_inf = np.isinf(ref) & (ref == sim)
        with np.errstate(invalid="ignore"):
            ratio = np.where(both_nan | same_inf, 0.0, np.abs(sim - ref) / bound)
        ratio = np.nan_to_num(ratio, nan=np.inf)
        worst = max(worst, float(ratio.max()))
    if worst <= 1.0:
        return CaseResult(case, "pass", worst=worst)
    return CaseResult(case, "fail", f"max error / tolerance = {worst:.3g}", worst)
