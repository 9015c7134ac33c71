"""Repaint time of the ``biohybrid viz`` page at 50×50 and 100×100, against Mesa's drawing.

One repaint is what the server does after each Step: capture the grid frame from the model
(cells' states and phenotypes, the field), update the grid figure (coloured by ``x`` over the
``signal`` field, colour bars, legend) and the biomarker panels with the live point in place
(``TissuePainter``, ``BiomarkerPainter``), and encode both figures to PNG (as
``solara.FigureMatplotlib`` does). ``fresh_figures`` builds both figures anew instead. The
model is the demo with the grid filled with cells (worst case: one agent per site).

Baseline (same run, same figure size and PNG encoding): Mesa 3.5's own matplotlib space
drawing, ``mesa.visualization.mpl_space_drawing.draw_space`` with an agent portrayal that
colours each agent by ``x`` (one scatter marker per agent), plus the same biomarker panels.
``speedup`` = baseline / ours. Model step time per tick is reported for context.

Wall times are best and median of ``--repeats``; CPU times (``process_time``) are given too,
since other work on a shared machine inflates wall time but not this process's CPU time.

Prints one JSON line; progress goes to stderr. Run: ``.venv/bin/python benchmarks/viz.py``
(about half a minute).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings

import matplotlib
from matplotlib.figure import Figure

from biohybrid.scenario import load_scenario
from biohybrid.viz.frames import capture
from biohybrid.viz.render import (
    LIVE_DPI,
    BiomarkerPainter,
    TissuePainter,
    biomarker_figure,
    figure_png,
    tissue_view_figure,
)


def _model(n: int):
    sc = load_scenario("demo", {"nx": n, "ny": n, "seed_radius": float(n)})
    return sc.model_class(params=sc.params, run=sc.run, seed=sc.seed)


def _ours(model, kinds, painters=None):
    """One repaint; with ``painters`` the figures are updated in place (as the server does)."""
    frame = capture(model, kinds)
    units = {"signal": "µM", "x": "1"}
    live = (model.t, model.measure())
    df = model.recorder.frame()
    if painters is None:
        fig = tissue_view_figure(frame, "x", "signal", kinds, units, model.time_units)
        bio = biomarker_figure(df, model.recorder.units, model.time_units, live)
    else:
        fig = painters[0].paint(frame, "x", "signal", kinds, units, model.time_units)
        bio = painters[1].paint(df, model.recorder.units, model.time_units, live)
    return len(figure_png(fig)) + len(figure_png(bio))


def _mesa(model):
    from mesa.visualization.components import AgentPortrayalStyle
    from mesa.visualization.mpl_space_drawing import draw_space

    col = model.table.column("x")

    def portray(agent):
        value = float(model.table.row(agent.row)[col])
        return AgentPortrayalStyle(color=matplotlib.colormaps["viridis"](min(value * 5, 1.0)))

    fig = Figure(figsize=(6.0, 5.2), dpi=LIVE_DPI)
    ax = fig.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        draw_space(model.grid, portray, ax=ax)
    live = (model.t, model.measure())
    bio = biomarker_figure(model.recorder.frame(), model.recorder.units, model.time_units, live)
    return len(figure_png(fig)) + len(figure_png(bio))


def main() -> None:
    """Time repaints and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="Repaints timed per contender.")
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100])
    args = ap.parse_args()
    out = {
        "benchmark": "viz_repaint",
        "what": "seconds per repaint (frame capture + grid/field figure + biomarker figure + PNG)",
        "python": platform.python_version(),
        "matplotlib": matplotlib.__version__,
        "sizes": {},
    }
    for n in args.sizes:
        model = _model(n)
        t0 = time.perf_counter()
        model.step()
        step_s = time.perf_counter() - t0
        kinds: list[str] = []
        painters = (TissuePainter(), BiomarkerPainter())
        _ours(model, kinds, painters)  # builds the figures once, as on the first page render
        ours, fresh, mesa, ours_cpu, mesa_cpu = [], [], [], [], []
        for _ in range(args.repeats):  # take turns so all see the same machine load
            t0, c0 = time.perf_counter(), time.process_time()
            _ours(model, kinds, painters)
            ours.append(time.perf_counter() - t0)
            ours_cpu.append(time.process_time() - c0)
            t0 = time.perf_counter()
            _ours(model, kinds)
            fresh.append(time.perf_counter() - t0)
            t0, c0 = time.perf_counter(), time.process_time()
            _mesa(model)
            mesa.append(time.perf_counter() - t0)
            mesa_cpu.append(time.process_time() - c0)
        print(
            f"{n}x{n}: ours {min(ours):.3f} s, mesa draw_space {min(mesa):.3f} s", file=sys.stderr
        )
        out["sizes"][f"{n}x{n}"] = {
            "cells": int(model.table.n_alive),
            "repaint_best_s": round(min(ours), 4),
            "repaint_median_s": round(statistics.median(ours), 4),
            "repaint_cpu_best_s": round(min(ours_cpu), 4),
            "fresh_figures_best_s": round(min(fresh), 4),
            "mesa_draw_space_best_s": round(min(mesa), 4),
            "mesa_draw_space_median_s": round(statistics.median(mesa), 4),
            "mesa_draw_space_cpu_best_s": round(min(mesa_cpu), 4),
            "speedup_vs_mesa_draw_space": round(min(mesa) / min(ours), 2),
            "model_step_s": round(step_s, 4),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
