"""Visualisation: the live browser view (``biohybrid viz``) and the figures of every run.

* :mod:`biohybrid.viz.access`: everything the views read from a model (one place to adapt).
* :mod:`biohybrid.viz.colors`: colour maps of cells, fields and phenotypes.
* :mod:`biohybrid.viz.render`: pure rendering of grid/field images and biomarkers.
* :mod:`biohybrid.viz.frames`: frames (1-D, 2-D, 3-D) captured from a model, kept bounded.
* :mod:`biohybrid.viz.outputs`: run snapshots (``snapshots.png``), ``animation.gif`` and,
  for a 1-D cable, ``kymograph.png``.
* :mod:`biohybrid.viz.adapter`: the Mesa SolaraViz model adapter and parameter inputs.
* :mod:`biohybrid.viz.app`: the Solara page (imported only by the server).
* :mod:`biohybrid.viz.server`: validating a scenario and starting ``solara run``.

This package imports Solara only in :mod:`~biohybrid.viz.app`, so runs never pay for it.
"""

from biohybrid.viz.frames import FrameRecorder, GridFrame, capture
from biohybrid.viz.outputs import write_run_figures

__all__ = ["FrameRecorder", "GridFrame", "capture", "write_run_figures"]
