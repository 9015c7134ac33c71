"""Run observers: the one interface through which a run feeds its outputs.

The runner calls every observer after each step (:meth:`RunObserver.observe`) and once at
the end, after the run's data (biomarkers, summary, final manifest) are on disk
(:meth:`RunObserver.finish`), so a slow or failing observer can never cost the data.
Observers write what they own into the run folder: the biomarker figure and the model's own
outputs (:class:`FigureObserver`), grid frames, snapshots and the animation
(:class:`FrameObserver`), per-cell tables, field stores and ParaView files
(:class:`biohybrid.results.OutputObserver`). Checkpoints plug in the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from biohybrid.figures import plot_biomarkers, save_figure


class RunObserver(Protocol):
    """What the runner calls; both methods may be no-ops."""

    def observe(self, model: Any) -> None:
        """Called after every :meth:`~biohybrid.model.HybridModel.step`."""

    def finish(self, model: Any, run_dir: Path, status: str) -> None:
        """Called once, after the data files and the final manifest are written."""


class FigureObserver:
    """``figures/biomarkers.png`` and the model's own outputs (``write_outputs``)."""

    def __init__(self, title: str) -> None:
        self.title = title

    def observe(self, model: Any) -> None:
        """Nothing per step."""

    def finish(self, model: Any, run_dir: Path, status: str) -> None:
        """Draw the biomarkers and let the model write its extra files."""
        fig = plot_biomarkers(
            model.recorder.frame(),
            model.recorder.units,
            model.time_units,
            title=f"{self.title} ({status})",
        )
        save_figure(fig, run_dir / "figures" / "biomarkers.png")
        model.write_outputs(run_dir)


class FrameObserver:
    """Bounded grid frames (at most ~60) for snapshots, kymographs and the animation."""

    def __init__(self, model: Any) -> None:
        from biohybrid.viz.frames import FrameRecorder

        self.frames = FrameRecorder.for_model(model)

    def observe(self, model: Any) -> None:
        """Keep a frame when one is due (none for a single site: no spatial figures)."""
        if self.frames is not None:
            self.frames.observe(model)

    def finish(self, model: Any, run_dir: Path, status: str) -> None:
        """``snapshots.png``, ``animation.gif`` (and ``kymograph.png`` in 1-D)."""
        from biohybrid.viz.outputs import write_run_figures

        write_run_figures(model, run_dir, self.frames)


def default_observers(
    model: Any, title: str, run_dir: Path | None = None, figures: bool = True
) -> list[RunObserver]:
    """The observers of a run that writes a run folder.

    Args:
        model: The populated model.
        title: Title of the figures.
        run_dir: The run folder; when given and an output interval is on (``cells_every``,
            ``fields_every``, ``vtk_every``), an :class:`~biohybrid.results.OutputObserver`
            writes those outputs (its first ones, at the current time, right away).
        figures: Include the figure observers.
    """
    from biohybrid.results.observer import OutputObserver
    from biohybrid.schedule import check_output_intervals

    observers: list[RunObserver] = []
    if run_dir is not None and check_output_intervals(model.run, model.time_units):
        observers.append(OutputObserver(model, run_dir))
    if figures:
        observers += [FigureObserver(title), FrameObserver(model)]
    return observers
