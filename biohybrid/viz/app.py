"""The ``biohybrid viz`` page: Mesa's SolaraViz around a biohybrid scenario.

Served by ``solara run biohybrid.viz.app`` (see :mod:`biohybrid.viz.server`); the scenario
comes from the environment (:func:`biohybrid.viz.adapter.load_config`). The page holds:

* SolaraViz's controls (play/pause, step, reset, play interval) and one input per declared
  model parameter, labelled with units, starting at the scenario's values;
* the tissue, cells coloured by a chosen species or by phenotype, over a chosen field,
  with colour bars and a legend: the grid in 2-D; in 3-D one plane (x-y, x-z or y-z) at a
  chosen index; in 1-D a kymograph (position × time) of the latest steps;
* the biomarkers, recorded rows plus a live point at the current time.

Each browser session gets its own model.
"""

from __future__ import annotations

from typing import Any

import solara
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter

from biohybrid.viz import access
from biohybrid.viz.adapter import VizConfig, load_config
from biohybrid.viz.frames import AXES, NORMAL_AXIS, PLANES, FrameWindow, capture
from biohybrid.viz.outputs import display_species
from biohybrid.viz.render import (
    NO_FIELD,
    PHENOTYPE,
    BiomarkerPainter,
    TissuePainter,
    kymograph_view_figure,
)

#: Biomarker panels drawn at first.
SHOWN_BIOMARKERS = 4
#: Latest steps shown in the live kymograph of a 1-D model.
KYMOGRAPH_STEPS = 120


def default_species(model: Any) -> str:
    """The species cells are coloured by at first (see :func:`display_species`)."""
    return display_species(
        access.species(model),
        [capture(model, max_volume_bytes=0)],
        getattr(model, "display_species", ""),
    )


def _live_point(model: Any) -> tuple[float, dict[str, float]] | None:
    times = model.recorder.times
    if times and model.t <= times[-1]:
        return None
    try:
        return model.t, model.measure()
    except Exception:  # a live point is a convenience; never break the page for it
        return None


@solara.component
def SliceControls(  # noqa: N802 (Solara components are PascalCase)
    shape: tuple[int, ...],
    plane: str,
    on_plane: Any,
    point: tuple[int, ...],
    on_point: Any,
) -> None:
    """A 3-D model's slice selector: the plane and its position along the normal axis."""
    axis = NORMAL_AXIS[plane]

    def set_index(value: int) -> None:
        p = list(point)
        p[axis] = int(value)
        on_point(tuple(p))

    with solara.Row(classes=["biohybrid-slice"]):
        solara.Select("Slice", values=list(PLANES), value=plane, on_value=on_plane)
        solara.SliderInt(
            f"{AXES[axis]} index",
            value=point[axis],
            min=0,
            max=shape[axis] - 1,
            on_value=set_index,
        )


@solara.component
def TissueView(model: Any, tick: int) -> None:  # noqa: N802 (Solara components are PascalCase)
    """The tissue over a field, with its colour and field choices.

    2-D: the grid. 3-D: one plane through a chosen point (:func:`SliceControls`). 1-D: a
    kymograph of the latest :data:`KYMOGRAPH_STEPS` steps.
    """
    species = access.species(model)
    fields = access.field_names(model)
    shape = access.lattice(model).shape
    first = solara.use_memo(lambda: default_species(model), [model])
    color_by, set_color_by = solara.use_state(first)
    field, set_field = solara.use_state(fields[0] if fields else NO_FIELD)
    plane, set_plane = solara.use_state(PLANES[0])
    point, set_point = solara.use_state(access.display_point(model) if len(shape) == 3 else ())
    kinds = solara.use_memo(list, [model])
    painter = solara.use_memo(TissuePainter, [model])
    window = solara.use_memo(lambda: FrameWindow(KYMOGRAPH_STEPS), [model])

    def make() -> Any:
        units, tu = access.units(model), model.time_units
        if len(shape) == 1:
            window.push(capture(model, kinds))
            return kymograph_view_figure(window.frames, color_by, field, kinds, units, tu)
        frame = capture(model, kinds, max_volume_bytes=0, point=point or None)
        if len(shape) == 3:
            frame = frame.section(plane)
        return painter.paint(frame, color_by, field, kinds, units, tu)

    deps = [model, tick, color_by, field, plane, point]
    fig = solara.use_memo(make, deps)
    with solara.Column(classes=["biohybrid-grid"]):
        with solara.Row():
            solara.Select(
                "Colour cells by",
                values=[*species, PHENOTYPE],
                value=color_by,
                on_value=set_color_by,
            )
            solara.Select("Field", values=[*fields, NO_FIELD], value=field, on_value=set_field)
        if len(shape) == 3:
            SliceControls(shape, plane, set_plane, point, set_point)
        solara.Text(
            f"t = {model.t:g} {model.time_units} · tick {model.tick}/{model.schedule.n_ticks}"
            f" · {access.n_cells(model)} cells",
            classes=["biohybrid-status"],
        )
        solara.FigureMatplotlib(fig, format="png", dependencies=[id(model), *deps[1:]])


@solara.component
def BiomarkerView(model: Any, tick: int) -> None:  # noqa: N802 (Solara components are PascalCase)
    """The biomarkers over time, with the current state as a live point.

    At most :data:`SHOWN_BIOMARKERS` panels are drawn at first (repaint cost grows with the
    number of panels); the selector adds or removes them.
    """
    names = [b.name for b in model.biomarkers]
    shown, set_shown = solara.use_state(names[:SHOWN_BIOMARKERS])
    chosen = [n for n in names if n in shown]

    def make() -> Any:
        live = _live_point(model)
        if live is not None:
            live = (live[0], {k: v for k, v in live[1].items() if k in chosen})
        df = model.recorder.frame()[chosen]
        return painter.paint(df, model.recorder.units, model.time_units, live)

    painter = solara.use_memo(BiomarkerPainter, [model])
    fig = solara.use_memo(make, [model, tick, tuple(chosen)])
    with solara.Column(classes=["biohybrid-biomarkers"]):
        solara.SelectMultiple("Biomarkers", values=chosen, all_values=names, on_value=set_shown)
        solara.FigureMatplotlib(fig, format="png", dependencies=[id(model), tick, tuple(chosen)])


def _tissue(model: Any) -> Any:
    update_counter.get()
    return TissueView(model, model.tick)


def _biomarkers(model: Any) -> Any:
    update_counter.get()
    return BiomarkerView(model, model.tick)


@solara.component
def Page() -> None:  # noqa: N802 (Solara components are PascalCase)
    """The page ``solara run`` serves: one model per browser session."""
    config: VizConfig = solara.use_memo(load_config, [])
    model = solara.use_memo(lambda: config.model_class(**config.initial_values()), [])
    sc = config.scenario
    SolaraViz(
        model,
        components=[(_tissue, 0), (_biomarkers, 0)],
        model_params=config.model_params,
        name=f"biohybrid · {sc.name} (model {sc.model})",
        play_interval=50,
    )
