"""Visualisation: the live browser view (``biohybrid viz``) and the figures of every run.

* :mod:`biohybrid.viz.colors`: colour maps of cells, fields and phenotypes.
* :mod:`biohybrid.viz.render`: pure rendering of grid/field images and biomarkers.
* :mod:`biohybrid.viz.frames`: grid frames captured from a model, kept bounded over a run.
* :mod:`biohybrid.viz.outputs`: run snapshots (``snapshots.png``) and ``animation.gif``.
* :mod:`biohybrid.viz.adapter`: the Mesa SolaraViz model adapter and parameter inputs.
* :mod:`biohybrid.viz.app`: the Solara page (imported only by the server).
* :mod:`biohybrid.viz.server`: validating a scenario and starting ``solara run``.

This package imports Solara only in :mod:`~biohybrid.viz.app`, so runs never pay for it.
"""

from biohybrid.viz.frames import FrameRecorder, GridFrame, capture
from biohybrid.viz.outputs import write_run_figures

__all__ = ["FrameRecorder", "GridFrame", "capture", "write_run_figures"]
