"""Worked example: how the demo colony's growth depends on its signal secretion.

Sweeps ``s_max`` (extra secretion per fully responding cell, amount/min per cell) over
four values with 3 replicates each (12 runs of a 24 x 24 colony for 24 h) on a local
process pool, then prints the mean and spread of the final cell count and activated
fraction per value. Run it from the repository root::

    .venv/bin/python scenarios/examples/sweep_demo.py [--out outputs/demo-smax] [--workers 2]

Start it again with the same ``--out`` and it skips every finished run (a sweep killed
half way finishes the rest). The sweep folder holds ``results.parquet`` (one row per
run), ``sweep.json`` (design and resolved scenario), ``runs/run-<i>/`` (each run's own
folder) and ``figures/metrics.png`` (every metric against ``s_max``).
"""

from __future__ import annotations

import argparse

import biohybrid


def main() -> None:
    """Run the sweep and print a summary table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="outputs/demo/sweep-s_max")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    df = biohybrid.sweep(
        "demo",
        {"s_max": [0.5, 2.0, 5.0, 20.0]},
        replicates=3,
        seed=2024,
        workers=args.workers,
        overrides={"t_end": 1440.0, "nx": 24, "ny": 24},
        out=args.out,
        progress=True,
    )
    done = df[df["status"] == "completed"]
    table = done.groupby("s_max")[["n_cells", "activated_fraction"]].agg(["mean", "std"])
    print(table.round(3).to_string())
    info = df.attrs["sweep"]
    print(
        f"{info['n_runs']} runs ({info['n_done_now']} run now, {info['n_skipped']} resumed);"
        f" {len(df) - len(done)} not completed; folder {info['path']}"
    )


if __name__ == "__main__":
    main()
