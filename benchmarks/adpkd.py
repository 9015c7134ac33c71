"""Benchmark: coarse projective integration vs brute force for the ADPKD model.

Both runs use the default 100×100 patch from birth to age 60 with the same seed, in a
deterministic configuration (50 cysts seeded at birth, no further second hits, no
expression noise) so that the two TKV trajectories are comparable value by value. Prints
one JSON line: wall times, the speed-up (brute force / projective) and the largest relative
TKV and cyst-volume differences over the yearly outputs.

Usage: ``.venv/bin/python benchmarks/adpkd.py [t_end]``
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from biohybrid.models.adpkd import AdpkdModel


def _run(projective: bool, t_end: float) -> tuple[float, dict[str, np.ndarray], int]:
    params = {"initial_cysts": 50, "u_hit_pkd1": 0.0, "pc_cv": 0.0, "projective": projective}
    m = AdpkdModel(params=params, run={"t_end": t_end}, seed=0)
    start = time.perf_counter()
    while m.running and m.tick < m.schedule.n_ticks:
        m.step()
    wall = time.perf_counter() - start
    df = m.recorder.frame()
    return (
        wall,
        {k: df[k].to_numpy() for k in ("tkv_ml", "cyst_volume_ml")},
        m.counters["ode_macro_steps"],
    )


def main() -> None:
    """Time both runs and print the JSON line."""
    t_end = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    wp, p, np_steps = _run(True, t_end)
    wb, b, nb_steps = _run(False, t_end)
    rel = {k: float(np.max(np.abs(p[k][1:] / b[k][1:] - 1.0))) for k in p}
    print(
        json.dumps(
            {
                "benchmark": "adpkd_projective_vs_brute_force",
                "grid": "100x100",
                "t_end_yr": t_end,
                "projective_s": round(wp, 3),
                "brute_force_s": round(wb, 3),
                "speedup": round(wb / wp, 2),
                "micro_steps_projective": np_steps,
                "micro_steps_brute_force": nb_steps,
                "max_rel_diff_tkv": round(rel["tkv_ml"], 5),
                "max_rel_diff_cyst_volume": round(rel["cyst_volume_ml"], 5),
                "tkv_ml_end_projective": round(float(p["tkv_ml"][-1]), 2),
                "tkv_ml_end_brute_force": round(float(b["tkv_ml"][-1]), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
