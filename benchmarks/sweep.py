"""Benchmark of biohybrid.sweep: parallel efficiency, per-run overhead and resume.

16 short demo runs (a 4-value grid x 4 replicates) are swept

* with 1 worker (in this process) and with 2 worker processes: parallel efficiency
  ``E = T1 / (2 T2)``;
* against the baseline of a plain loop of ``biohybrid.run(..., write=False)`` over the same
  16 runs: overhead per run ``(T1 - sum of run walls) / 16`` (model construction, run
  folder, Parquet row) and ``T1 / T_loop``;
* then the 1-worker sweep is started again on its folder: it must run nothing.

``pool_busy_fraction_2w`` (time the 2 workers spent inside runs / (2 T2)) and
``run_slowdown_2w_vs_1w`` (sum of run times with 2 workers / with 1) separate the pool's
own losses from CPU contention with other processes on the machine.

The first 2-worker sweep of the process is "cold": it starts the fork server, which
imports the engine once (about 2 s); later pools reuse it ("warm"). Each measurement is
repeated ``--repeat`` times; medians are reported with every repetition.

Usage::

    .venv/bin/python benchmarks/sweep.py [--repeat 3] [--t-end 180]
    .venv/bin/python benchmarks/sweep.py --memory 50,400   # memory flat in runs

Prints exactly one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import biohybrid
from biohybrid.sweep import sweep

PARAMS = {"s_max": [0.1, 0.4, 0.7, 1.0]}
REPLICATES = 4


def _timed_sweep(out: Path, workers: int, overrides: dict) -> tuple[float, float, int, float]:
    t0 = time.perf_counter()
    df = sweep(
        "demo",
        PARAMS,
        replicates=REPLICATES,
        seed=1,
        workers=workers,
        overrides=overrides,
        out=out,
        figures=False,
    )
    wall = time.perf_counter() - t0
    assert (df["status"] == "completed").all(), df[["status", "error"]]
    return (
        wall,
        float(df["wall_time"].sum()),
        int(df.attrs["sweep"]["n_done_now"]),
        float(df["task_time"].sum()),
    )


def _loop(overrides: dict) -> float:
    seeds = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(1).spawn(16)]
    t0 = time.perf_counter()
    i = 0
    for s_max in PARAMS["s_max"]:
        for _ in range(REPLICATES):
            biohybrid.run(
                "demo", overrides={**overrides, "s_max": s_max}, seed=seeds[i], write=False
            )
            i += 1
    return time.perf_counter() - t0


def memory(sizes: list[int]) -> None:
    """Peak Python allocations of this (calling) process for sweeps of growing size.

    Tiny runs on 2 workers; ``tracemalloc`` traces this process only (the workers run the
    models), so the peak is the sweep's own bookkeeping: design, futures, results table.
    """
    import tracemalloc

    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-mem-"))
    tiny = {"t_end": 30.0, "nx": 8, "ny": 8, "seed_radius": 1.5}
    peaks = {}
    # warm up: start the fork server and make the one-time imports before measuring
    sweep("demo", {"s_max": [0.1, 0.2]}, workers=2, overrides=tiny, out=tmp / "warm")
    for size in sizes:
        values = [round(0.1 + 0.9 * i / size, 6) for i in range(size)]
        tracemalloc.start()
        t0 = time.perf_counter()
        df = sweep(
            "demo",
            {"s_max": values},
            workers=2,
            overrides=tiny,
            out=tmp / f"m{size}",
            figures=False,
        )
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(df) == size
        peaks[size] = {"peak_mib": round(peak / 2**20, 2), "wall_s": round(wall, 1)}
    a, b = sizes[0], sizes[-1]
    print(
        json.dumps(
            {
                "benchmark": "sweep-memory",
                "runs": sizes,
                "peaks": peaks,
                "peak_per_extra_run_kib": round(
                    (peaks[b]["peak_mib"] - peaks[a]["peak_mib"]) * 1024 / (b - a), 2
                ),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--t-end", type=float, default=180.0)
    ap.add_argument(
        "--memory",
        default=None,
        metavar="N1,N2",
        help="Instead: peak memory of this process for sweeps of N1 and N2 tiny runs.",
    )
    args = ap.parse_args()
    if args.memory:
        memory([int(v) for v in args.memory.split(",")])
        return
    overrides = {"t_end": args.t_end, "nx": 16, "ny": 16, "seed_radius": 3.0}
    n = len(PARAMS["s_max"]) * REPLICATES
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    biohybrid.run("demo", overrides=overrides, write=False)  # warm up this process
    t1s, t2s, loops, sums, overheads, resumes = [], [], [], [], [], []
    busy, slowdown = [], []
    redone = 0
    for k in range(args.repeat):
        loops.append(_loop(overrides))
        t1, s1, _, _ = _timed_sweep(tmp / f"w1-{k}", 1, overrides)
        t2, s2, _, task2 = _timed_sweep(tmp / f"w2-{k}", 2, overrides)
        # how much of the 2 workers' time was spent in runs, and how much slower each run
        # was than in the 1-worker sweep (CPU contention shows up here, not in the pool)
        busy.append(task2 / (2 * t2))
        slowdown.append(s2 / s1)
        t1s.append(t1)
        t2s.append(t2)
        sums.append(s1)
        overheads.append((t1 - s1) / n)
        tr, _, done_now, _ = _timed_sweep(tmp / f"w1-{k}", 1, overrides)
        resumes.append(tr)
        redone += done_now
    eff = [a / (2 * b) for a, b in zip(t1s, t2s, strict=True)]
    med = statistics.median
    print(
        json.dumps(
            {
                "benchmark": "sweep",
                "runs": n,
                "t_end_min": args.t_end,
                "cpus": os.cpu_count(),
                "load_avg_1min": round(os.getloadavg()[0], 2),
                "repeat": args.repeat,
                "t1_s": med(t1s),
                "t2_s": med(t2s),
                "parallel_efficiency_2w": round(med(eff), 3),
                "parallel_efficiency_2w_cold": round(eff[0], 3),
                "parallel_efficiency_2w_all": [round(e, 3) for e in eff],
                "pool_busy_fraction_2w": round(med(busy), 3),
                "run_slowdown_2w_vs_1w": round(med(slowdown), 3),
                "run_wall_sum_s": round(med(sums), 3),
                "overhead_per_run_s": round(med(overheads), 4),
                "overhead_per_run_all_s": [round(o, 4) for o in overheads],
                "baseline_plain_loop_s": round(med(loops), 3),
                "sweep_1w_vs_plain_loop": round(med(t1s) / med(loops), 3),
                "resume_s": round(med(resumes), 3),
                "resume_runs_redone": redone,
            }
        )
    )


if __name__ == "__main__":
    main()
