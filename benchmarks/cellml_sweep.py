"""Sweep: import every CellML model in a folder, check its rhs, optionally simulate one beat.

For each file: :func:`~biohybrid.importers.cellml.load_cellml` (a failure must be a
``UserError`` with its reason), the generated rhs at the initial state against myokit's own
``evaluate_derivatives`` (largest relative difference), whether the Jacobian is analytic
and how far it is from central differences (relative to each row's largest entry),
the oxmeta voltage / stimulus / conductances found and the number of gates. With ``--beat``
it also runs one stimulated beat to 700 ms with the batched RODAS4 stepper (the file's own
stimulus protocol) and reports APD90 of the annotated voltage. Prints one JSON line per
model and a summary line.

Usage: ``.venv/bin/python benchmarks/cellml_sweep.py [folder] [--beat]``
(default folder ``../shared/cellml``, relative to the repository root).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from biohybrid.errors import SimulationError, UserError
from biohybrid.importers.cellml import load_cellml
from biohybrid.intracellular.state_table import StateTable
from biohybrid.intracellular.steppers import make_stepper


def _apd90(t: np.ndarray, v: np.ndarray) -> float | None:
    level = v.max() - 0.9 * (v.max() - v[0])
    up = np.flatnonzero((v[:-1] < level) & (v[1:] >= level))
    if up.size == 0:
        return None
    down = np.flatnonzero((v[:-1] >= level) & (v[1:] < level))
    down = down[down > up[0]]
    if down.size == 0:
        return None

    def cross(i: int) -> float:
        return float(t[i] + (level - v[i]) / (v[i + 1] - v[i]) * (t[i + 1] - t[i]))

    return cross(int(down[0])) - cross(int(up[0]))


def _jac_error(system) -> float | None:
    """Largest difference of the Jacobian from central differences, relative to its row."""
    if system.jac is None:
        return None
    p = system.params.defaults()
    y = system.initial_state()[None]
    u = np.zeros((1, len(system.inputs)))
    jac = system.jac(0.0, y, p, u)[0]
    fd = np.zeros_like(jac)
    for c in range(system.k):
        h = 1e-6 * max(abs(y[0, c]), 1e-3)
        yp, ym = y.copy(), y.copy()
        yp[0, c] += h
        ym[0, c] -= h
        fd[:, c] = (system.rhs(0.0, yp, p, u)[0] - system.rhs(0.0, ym, p, u)[0]) / (2 * h)
    scale = np.abs(fd).max(axis=1, keepdims=True) + 1e-30
    with np.errstate(all="ignore"):
        return float(np.nanmax(np.abs(jac - fd) / scale))


def _beat(system, info, t_end: float = 700.0) -> dict:
    p = system.params.defaults()
    start = p.get(info.stimulus.get("offset", ""), 50.0)
    times = np.unique(np.r_[np.arange(0.0, t_end + 1e-9, 2.0), np.arange(start, start + 10, 0.1)])
    iv = system.index.col(info.voltage)
    stepper = make_stepper("rodas4", system, rtol=1e-6, atol=1e-8)
    table = StateTable(system.species, 1)
    table.add(system.initial_state())
    v = [table.get([0])[0, iv]]
    t0 = time.perf_counter()
    for a, b in itertools.pairwise(times):
        stepper.advance(table, a, b, p)
        v.append(table.get([0])[0, iv])
    return {"apd90": _apd90(times, np.array(v)), "beat_s": round(time.perf_counter() - t0, 2)}


def main(argv: list[str]) -> None:
    beat = "--beat" in argv
    args = [a for a in argv if not a.startswith("--")]
    folder = Path(args[0]) if args else Path(__file__).parents[1] / ".." / "shared" / "cellml"
    ok, failed = 0, {}
    for path in sorted(folder.glob("*.cellml")):
        row: dict = {"model": path.stem}
        t0 = time.perf_counter()
        try:
            system, info = load_cellml(path)
        except UserError as exc:
            failed[path.stem] = str(exc)
            print(json.dumps({**row, "error": str(exc)}))
            continue
        ok += 1
        row["import_s"] = round(time.perf_counter() - t0, 3)
        y = system.initial_state()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            ref = np.array(
                info.myokit_model.evaluate_derivatives(inputs={"time": 0.0}, ignore_errors=True)
            )
            ours = system.rhs(0.0, y[None], system.params.defaults(), np.zeros((1, 0)))[0]
            rel = np.abs(ours - ref) / (np.abs(ref) + 1e-300)
            jac_err = _jac_error(system)
        same = (ours == ref) | (np.isnan(ours) & np.isnan(ref))
        row.update(
            k=system.k,
            rhs_rel_err=float(np.max(np.where(same, 0.0, rel))),
            finite_rhs=bool(np.all(np.isfinite(ours))),
            jacobian=info.jacobian,
            jac_vs_differences=jac_err,
            voltage=info.voltage,
            stimulus=sorted(info.stimulus),
            conductances=sorted(info.conductances),
            gates=len(info.gates),
        )
        if beat and info.voltage is not None:
            try:
                row.update(_beat(system, info))
            except SimulationError as exc:
                row["beat_error"] = str(exc)[:200]
        print(json.dumps(row))
    print(json.dumps({"summary": True, "imported": ok, "failed": len(failed), "failures": failed}))


if __name__ == "__main__":
    main(sys.argv[1:])
