"""Benchmark of the batched intracellular integrator on 10^4 Li-Rinzel cells.

Workload (issue 3): 10^4 Li-Rinzel (1994) cells, state (Ca, h), IP3 spread evenly over
0.2-0.8 µM (some cells oscillate, some settle), 100 s of model time, rtol=1e-6, atol=1e-9.

* A, uninterrupted: one :func:`biohybrid.intracellular.integrate` call over 0-100 s.
* B, coupled: 200 macro steps of 0.5 s through :class:`biohybrid.intracellular.Stepper`,
  as the engine runs it between field updates (warm restarts through ``ode_h``).

Baselines, timed in the same run:

* (a) ``solve_ivp(method="BDF")`` on the stacked 2·10^4 system with a block-diagonal
  ``jac_sparsity``: one call for A, restarted at every macro step for B.
* (b) a per-cell loop of ``solve_ivp(method="BDF")`` (analytic Jacobian) on a 100-cell
  subset, stepped like B over the first ``--b-macro`` macro steps, scaled to 10^4 cells and
  200 macro steps.
* (c) libroadrunner, if installed: a per-cell RoadRunner loop on a 100-cell subset, stepped
  like B, scaled the same way.

The error is the maximum absolute difference in (Ca [µM], h) at t = 100 s over all cells
against a tight reference (this kernel at rtol=1e-10, atol=1e-13), itself checked against
``solve_ivp(method="Radau", rtol=1e-10)`` on a subset (``ref_check_err``).

Prints one JSON line to stdout; progress goes to stderr.

Usage: ``python benchmarks/intracellular.py [--quick] [--n N] [--skip-a-b]``.

References:
    Y.-X. Li and J. Rinzel, *J. Theor. Biol.* 166 (1994) 461-473.
"""

from __future__ import annotations

import os

# One BLAS thread for every solver timed here: on a shared 2-core machine multithreaded
# OpenBLAS spins on contended cores and makes scipy's BDF (which calls dot/norm on 2e4-long
# vectors) up to 8x slower, which would flatter the batched kernel unfairly.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import platform
import sys
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from biohybrid.intracellular import StateTable, Stepper, integrate
from biohybrid.models.astrocyte.li_rinzel import (
    LI_RINZEL_PARAMETERS,
    li_rinzel_jac,
    li_rinzel_rhs,
    li_rinzel_system,
)
from biohybrid.params import ParameterSet

T_END = 100.0
DT_MACRO = 0.5
RTOL, ATOL = 1e-6, 1e-9
Y0 = (0.1, 0.7)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def workload(n: int) -> tuple[dict, np.ndarray]:
    p = ParameterSet(LI_RINZEL_PARAMETERS).defaults()
    p["ip3"] = np.linspace(0.2, 0.8, n)
    return p, np.tile(Y0, (n, 1))


def run_a(p: dict, y0: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> np.ndarray:
    res = integrate(
        li_rinzel_rhs, y0, (0.0, T_END), jac=li_rinzel_jac, args=(p, None), rtol=rtol,
        atol=atol, autonomous=True,
    )  # fmt: skip
    return res.y


def run_b(p: dict, y0: np.ndarray, n_macro: int) -> tuple[np.ndarray, dict]:
    system = li_rinzel_system()
    n = y0.shape[0]
    table = StateTable(system.species, capacity=n)
    for row in range(n):
        table.add(y0[row])
    rows = table.live_rows()
    stepper = Stepper(system, rtol=RTOL, atol=ATOL)
    for i in range(n_macro):
        stepper.advance(table, i * DT_MACRO, (i + 1) * DT_MACRO, p, None, rows)
    return table.get(rows), stepper.counters


def stacked_funs(p: dict, n: int):
    def f(t, z):
        return li_rinzel_rhs(t, z.reshape(n, 2), p).ravel()

    sparsity = sp.kron(sp.identity(n), np.ones((2, 2)), format="csr")
    return f, sparsity


def baseline_a_uninterrupted(p: dict, y0: np.ndarray) -> np.ndarray:
    n = y0.shape[0]
    f, sparsity = stacked_funs(p, n)
    sol = solve_ivp(f, (0, T_END), y0.ravel(), method="BDF", rtol=RTOL, atol=ATOL,
                    jac_sparsity=sparsity)  # fmt: skip
    return sol.y[:, -1].reshape(n, 2)


def baseline_a_coupled(p: dict, y0: np.ndarray, n_macro: int) -> np.ndarray:
    n = y0.shape[0]
    f, sparsity = stacked_funs(p, n)
    z = y0.ravel().copy()
    for i in range(n_macro):
        sol = solve_ivp(f, (i * DT_MACRO, (i + 1) * DT_MACRO), z, method="BDF", rtol=RTOL,
                        atol=ATOL, jac_sparsity=sparsity)  # fmt: skip
        z = sol.y[:, -1]
    return z.reshape(n, 2)


def baseline_b(p: dict, y0: np.ndarray, cells: np.ndarray, n_macro: int) -> np.ndarray:
    out = []
    for c in cells:
        pc = dict(p)
        pc["ip3"] = p["ip3"][c]

        def f(t, y, pc=pc):
            return li_rinzel_rhs(t, y[None, :], pc)[0]

        def jac(t, y, pc=pc):
            return li_rinzel_jac(t, y[None, :], pc)[0]

        y = y0[c].copy()
        for i in range(n_macro):
            sol = solve_ivp(f, (i * DT_MACRO, (i + 1) * DT_MACRO), y, method="BDF", rtol=RTOL,
                            atol=ATOL, jac=jac)  # fmt: skip
            y = sol.y[:, -1]
        out.append(y)
    return np.array(out)


def _mathml() -> tuple[str, str]:
    """MathML of the Li-Rinzel rate rules (species ``ca``, ``hh``), written out by hand."""

    def ap(op: str, *xs: str) -> str:
        return f"<apply><{op}/>{''.join(xs)}</apply>"

    def ci(x: str) -> str:
        return f"<ci>{x}</ci>"

    def cn(v: float) -> str:
        return f"<cn>{v!r}</cn>"

    m = ap("divide", ci("ip3"), ap("plus", ci("ip3"), ci("d1")))
    n = ap("divide", ci("ca"), ap("plus", ci("ca"), ci("d5")))
    mnh3 = ap("power", ap("times", m, n, ci("hh")), cn(3.0))
    grad = ap("minus", ci("c0"), ap("times", ap("plus", cn(1.0), ci("c1")), ci("ca")))
    ca2 = ap("times", ci("ca"), ci("ca"))
    pump = ap(
        "divide", ap("times", ci("v3"), ca2), ap("plus", ap("times", ci("k3"), ci("k3")), ca2)
    )
    dca = ap("minus", ap("times", ap("plus", ap("times", ci("v1"), mnh3), ci("v2")), grad), pump)
    q2 = ap("divide", ap("times", ci("d2"), ap("plus", ci("ip3"), ci("d1"))),
            ap("plus", ci("ip3"), ci("d3")))  # fmt: skip
    dh = ap("times", ci("a2"), ap("minus", ap("times", q2, ap("minus", cn(1.0), ci("hh"))),
                                   ap("times", ci("ca"), ci("hh"))))  # fmt: skip
    wrap = '<math xmlns="http://www.w3.org/1998/Math/MathML">{}</math>'
    return wrap.format(dca), wrap.format(dh)


def baseline_c(p: dict, y0: np.ndarray, cells: np.ndarray, n_macro: int):
    """Per-cell RoadRunner (CVODE) loop, one SBML model instance per cell, stepped like B."""
    try:
        import roadrunner
    except ImportError:
        return None, "libroadrunner not installed (optional; pip install libroadrunner)"
    dca, dh = _mathml()
    t_setup = time.perf_counter()
    models = []
    for c in cells:
        params = {k: v for k, v in p.items() if k != "ip3"} | {"ip3": float(p["ip3"][c])}
        plist = "".join(
            f'<parameter id="{k}" value="{float(v)!r}" constant="true"/>' for k, v in params.items()
        )
        sbml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" version="1">'
            '<model id="li_rinzel"><listOfParameters>'
            f'<parameter id="ca" value="{float(y0[c, 0])!r}" constant="false"/>'
            f'<parameter id="hh" value="{float(y0[c, 1])!r}" constant="false"/>'
            f"{plist}</listOfParameters><listOfRules>"
            f'<rateRule variable="ca">{dca}</rateRule>'
            f'<rateRule variable="hh">{dh}</rateRule>'
            "</listOfRules></model></sbml>"
        )
        rr = roadrunner.RoadRunner(sbml)
        integ = rr.getIntegrator()
        integ.setValue("relative_tolerance", RTOL)
        integ.setValue("absolute_tolerance", ATOL)
        models.append(rr)
    t_setup = time.perf_counter() - t_setup
    out = []
    t0 = time.perf_counter()
    for rr in models:
        t = 0.0
        for _ in range(n_macro):  # one CVODE integration per macro step, like B
            rr.simulate(t, t + DT_MACRO, 2)
            t += DT_MACRO
        out.append([rr["ca"], rr["hh"]])
    return (np.array(out), time.perf_counter() - t0, t_setup), None


def numba_per_cell(p: dict, y0: np.ndarray, ref: np.ndarray, n_macro: int) -> dict:
    """(d) A compiled per-cell RODAS4 (numba) on the same workload, if numba is installed.

    Same tableau, controller and warm restarts as the numpy kernel, but one cell at a time
    in compiled code with a hand-written Li-Rinzel RHS/Jacobian. Reports import and compile
    time so the dependency can be judged.
    """
    t_imp = time.perf_counter()
    try:
        import numba as nb
    except ImportError:
        return {"skipped": "numba not installed"}
    t_imp = time.perf_counter() - t_imp
    from biohybrid.intracellular.rosenbrock import RODAS4

    A, C = np.array(RODAS4.a), np.array(RODAS4.c)

    @nb.njit
    def _f(ca, h, ip3, P, out):
        c0, c1, v1, v2, v3, k3, d1, d2, d3, d5, a2 = P
        m = ip3 / (ip3 + d1)
        n = ca / (ca + d5)
        mnh = m * n * h
        g = c0 - (1.0 + c1) * ca
        out[0] = (v1 * mnh * mnh * mnh + v2) * g - v3 * ca * ca / (k3 * k3 + ca * ca)
        q2 = d2 * (ip3 + d1) / (ip3 + d3)
        out[1] = a2 * (q2 * (1.0 - h) - ca * h)

    @nb.njit
    def _jac(ca, h, ip3, P, J):
        c0, c1, v1, v2, v3, k3, d1, d2, d3, d5, a2 = P
        m = ip3 / (ip3 + d1)
        m3 = m * m * m
        n = ca / (ca + d5)
        dn = d5 / ((ca + d5) ** 2)
        g = c0 - (1.0 + c1) * ca
        J[0, 0] = (
            v1 * m3 * h**3 * (3 * n * n * dn * g - (1 + c1) * n**3)
            - v2 * (1 + c1)
            - v3 * 2 * ca * k3 * k3 / (k3 * k3 + ca * ca) ** 2
        )
        J[0, 1] = 3 * v1 * m3 * n**3 * h * h * g
        q2 = d2 * (ip3 + d1) / (ip3 + d3)
        J[1, 0] = -a2 * h
        J[1, 1] = -a2 * (q2 + ca)

    @nb.njit
    def solve(y, hh, ip3, P, t0, t1, rtol, atol, A, C, M):
        n = y.shape[0]
        K = np.empty((6, 2))
        F = np.empty(2)
        Ys = np.empty(2)
        J = np.empty((2, 2))
        ynew = np.empty(2)
        steps = 0
        for c in range(n):
            t = t0
            h = hh[c]
            if not h > 0:
                h = 1e-3
            hprev = h
            ep = 1.0
            nst = 0
            while t < t1:
                last = (t1 - t) <= 1.01 * h
                hs = t1 - t if last else h
                _jac(y[c, 0], y[c, 1], ip3[c], P, J)
                gh = 1.0 / (0.25 * hs)
                a = gh - J[0, 0]
                b = -J[0, 1]
                cc = -J[1, 0]
                d = gh - J[1, 1]
                rd = 1.0 / (a * d - b * cc)
                i00 = d * rd
                i01 = -b * rd
                i10 = -cc * rd
                i11 = a * rd
                for i in range(6):
                    Ys[0] = y[c, 0]
                    Ys[1] = y[c, 1]
                    for j in range(i):
                        Ys[0] += A[i, j] * K[j, 0]
                        Ys[1] += A[i, j] * K[j, 1]
                    _f(Ys[0], Ys[1], ip3[c], P, F)
                    r0 = F[0]
                    r1 = F[1]
                    for j in range(i):
                        r0 += C[i, j] / hs * K[j, 0]
                        r1 += C[i, j] / hs * K[j, 1]
                    K[i, 0] = i00 * r0 + i01 * r1
                    K[i, 1] = i10 * r0 + i11 * r1
                ynew[0] = Ys[0] + K[5, 0]
                ynew[1] = Ys[1] + K[5, 1]
                e = 0.0
                for q in range(2):
                    sc = atol + rtol * max(abs(y[c, q]), abs(ynew[q]))
                    e += (K[5, q] / sc) ** 2
                err = np.sqrt(e / 2)
                ec = max(err, 1e-10) ** 0.25
                fac = 0.9 / ec
                if err <= 1.0:
                    if nst > 0:
                        fac = min(fac, fac * (hs / hprev) * ep / ec)
                    fac = min(6.0, max(0.2, fac))
                    y[c, 0] = ynew[0]
                    y[c, 1] = ynew[1]
                    t = t1 if last else t + hs
                    hprev = hs
                    ep = max(ec, 0.1)
                    nst += 1
                    steps += 1
                    hn = hs * fac
                    h = max(hn, h) if last else hn
                else:
                    fac = min(1.0, max(0.2, fac))
                    h = hs * fac
            hh[c] = h
        return steps

    P = np.array([p[k] for k in ("c0", "c1", "v1", "v2", "v3", "k3", "d1", "d2", "d3", "d5", "a2")])
    ip3 = p["ip3"]
    t_c = time.perf_counter()
    solve(y0[:2].copy(), np.full(2, np.nan), ip3[:2], P, 0.0, 0.5, RTOL, ATOL, A, C, A[0])
    t_c = time.perf_counter() - t_c
    y, hh = y0.copy(), np.full(y0.shape[0], np.nan)
    t_a = time.perf_counter()
    solve(y, hh, ip3, P, 0.0, T_END, RTOL, ATOL, A, C, A[0])
    t_a = time.perf_counter() - t_a
    err_a = float(np.abs(y - ref).max())
    y, hh = y0.copy(), np.full(y0.shape[0], np.nan)
    t_b = time.perf_counter()
    for i in range(n_macro):
        solve(y, hh, ip3, P, i * DT_MACRO, (i + 1) * DT_MACRO, RTOL, ATOL, A, C, A[0])
    t_b = time.perf_counter() - t_b
    return {
        "import_seconds": round(t_imp, 2), "compile_seconds": round(t_c, 2),
        "A_seconds": round(t_a, 3), "A_max_err": err_a,
        "B_seconds": round(t_b, 3), "B_max_err": float(np.abs(y - ref).max()),
    }  # fmt: skip


def timed(fn, *args, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return out, best


def peak_memory(n: int, n_macro: int = 10) -> dict:
    """Peak memory of coupled stepping (B) for ``n`` cells, measured in a fresh process."""
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n), str(n_macro)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def _vm_hwm_mb() -> float:
    """Peak resident set size of this process (VmHWM, reset at exec unlike ru_maxrss)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def memory_child(n: int, n_macro: int) -> None:
    base = _vm_hwm_mb()
    p, y0 = workload(n)
    tracemalloc.start()
    t0 = time.perf_counter()
    run_b(p, y0, n_macro)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({
        "cells": n, "macro_steps": n_macro, "seconds": round(dt, 2),
        "tracemalloc_peak_MB": round(peak / 2**20, 1),
        "process_peak_rss_MB": _vm_hwm_mb(),
        "process_peak_rss_after_imports_MB": base,
    }))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of cells")
    ap.add_argument("--quick", action="store_true", help="skip the slow baselines (a)-B, (b)")
    ap.add_argument("--repeat", type=int, default=2, help="repeats of A and B (best of)")
    ap.add_argument("--b-macro", type=int, default=20, help="macro steps timed for (b), (c)")
    ap.add_argument("--subset", type=int, default=100, help="cells timed for (b), (c)")
    ap.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    n, n_macro = args.n, round(T_END / DT_MACRO)
    p, y0 = workload(n)
    sim_cell_s = n * T_END

    log("reference (rtol=1e-10) ...")
    ref, t_ref = timed(run_a, p, y0, 1e-10, 1e-13)
    chk = np.linspace(0, n - 1, 12).astype(int)
    ref_err = 0.0
    for c in chk:
        pc = dict(p)
        pc["ip3"] = p["ip3"][c]
        sol = solve_ivp(lambda t, y, pc=pc: li_rinzel_rhs(t, y[None], pc)[0], (0, T_END), y0[c],
                        method="Radau", rtol=1e-10, atol=1e-13)  # fmt: skip
        ref_err = max(ref_err, float(np.abs(sol.y[:, -1] - ref[c]).max()))

    log("A ...")
    yA, tA = timed(run_a, p, y0, repeat=args.repeat)
    log("B ...")
    (yB, countersB), tB = timed(run_b, p, y0, n_macro, repeat=args.repeat)
    log("(a) A ...")
    yaA, taA = timed(baseline_a_uninterrupted, p, y0)
    result: dict = {
        "benchmark": "intracellular",
        "workload": {"cells": n, "model": "Li-Rinzel 1994", "ip3_uM": [0.2, 0.8],
                     "t_end_s": T_END, "rtol": RTOL, "atol": ATOL, "macro_steps_B": n_macro},
        "method": "rodas4 per-cell adaptive (numpy, vectorised)",
        "reference": {"solver": "rodas4 rtol=1e-10 atol=1e-13", "seconds": round(t_ref, 2),
                      "ref_check_err_vs_radau_1e-10": ref_err, "ref_check_cells": len(chk)},
        "A": {"seconds": round(tA, 3), "max_err": float(np.abs(yA - ref).max()),
              "us_per_cell_per_sim_s": round(tA / sim_cell_s * 1e6, 4)},
        "B": {"seconds": round(tB, 3), "max_err": float(np.abs(yB - ref).max()),
              "us_per_cell_per_sim_s": round(tB / sim_cell_s * 1e6, 4),
              "counters": countersB},
        "a_stacked_bdf": {"A_seconds": round(taA, 3),
                          "A_max_err": float(np.abs(yaA - ref).max())},
    }  # fmt: skip
    result["ratios"] = {"A_vs_a": round(taA / tA, 2)}
    if not args.quick:
        log("(a) B ...")
        yaB, taB = timed(baseline_a_coupled, p, y0, n_macro)
        result["a_stacked_bdf"].update(
            {"B_seconds": round(taB, 3), "B_max_err": float(np.abs(yaB - ref).max())}
        )
        result["ratios"]["B_vs_a"] = round(taB / tB, 2)
        cells = np.linspace(0, n - 1, args.subset).astype(int)
        scale = (n / cells.size) * (n_macro / args.b_macro)
        log("(b) per-cell solve_ivp ...")
        _, tb = timed(baseline_b, p, y0, cells, args.b_macro)
        result["b_percell_solve_ivp"] = {
            "timed_cells": int(cells.size), "timed_macro_steps": args.b_macro,
            "timed_seconds": round(tb, 3), "scaled_B_seconds": round(tb * scale, 1),
            "note": "per-cell BDF with analytic Jacobian, restarted each macro step; scaled"
                    " linearly to all cells and 200 macro steps",
        }  # fmt: skip
        result["ratios"]["B_vs_b"] = round(tb * scale / tB, 1)
        log("(c) roadrunner ...")
        outc, why = baseline_c(p, y0, cells, args.b_macro)
        if outc is None:
            result["c_roadrunner"] = {"skipped": why}
        else:
            _, tc, tsetup = outc
            result["c_roadrunner"] = {
                "timed_cells": int(cells.size), "timed_macro_steps": args.b_macro,
                "timed_seconds": round(tc, 3), "setup_seconds": round(tsetup, 3),
                "scaled_B_seconds": round(tc * scale, 1),
            }  # fmt: skip
            result["ratios"]["B_vs_c"] = round(tc * scale / tB, 1)
    log("(d) numba per-cell RODAS4 ...")
    result["d_numba_per_cell_rodas4"] = numba_per_cell(p, y0, ref, n_macro)
    if "A_seconds" in result["d_numba_per_cell_rodas4"]:
        d = result["d_numba_per_cell_rodas4"]
        result["ratios"]["A_vs_numba"] = round(d["A_seconds"] / tA, 2)
        result["ratios"]["B_vs_numba"] = round(d["B_seconds"] / tB, 2)
    log("peak memory, 1e5 cells ...")
    result["memory_1e5_cells"] = peak_memory(100_000)
    result["machine"] = {
        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "note": "2 cores shared with other jobs; timings noisy, ratios are same-run",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
