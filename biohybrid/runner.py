"""Run a scenario into a run folder: manifest, biomarkers, figures; robust to interruption.

A run folder (default ``outputs/<scenario>/<UTC timestamp>-s<seed>/``) holds

* ``manifest.json``: the fully resolved scenario, seed, package versions, start and end
  times, status (``running``, ``completed``, ``interrupted`` or ``failed``) with the reason,
  the units of each biomarker, and the run's counters;
* ``biomarkers.csv``: a ``time`` column and one column per biomarker;
* ``summary.json``: model-specific summary values (when the model has any);
* ``figures/biomarkers.png`` and any model-specific figures.

Every file is written atomically. The CSV is rewritten at most every few seconds during a
run and once at the end, so a run stopped by Ctrl-C, SIGTERM or a numerical failure keeps
everything recorded up to then, and its manifest says how it ended.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from biohybrid.errors import SimulationError, setup_errors
from biohybrid.io import atomic_write_json, atomic_write_text, first_writes, make_output_dir
from biohybrid.observers import default_observers
from biohybrid.scenario import Scenario, load_scenario

_PACKAGES = ("biohybrid", "mesa", "fipy", "numpy", "scipy", "pandas", "matplotlib", "pydantic")


@dataclass
class RunResult:
    """What a run returns.

    Attributes:
        status: ``completed``, ``interrupted`` or ``failed``.
        message: How the run ended, in words.
        path: The run folder, or ``None`` for an in-memory run.
        biomarkers: Biomarkers indexed by time (one row per output step).
        counters: Work and event counters (ticks, ODE steps, divisions, ...).
        summary: Model-specific summary values.
        wall_time: Wall-clock seconds.
        scenario: The resolved scenario.
        units: ``{biomarker: units}``.
    """

    status: str
    message: str
    path: Path | None
    biomarkers: pd.DataFrame
    counters: dict[str, int]
    summary: dict[str, Any]
    wall_time: float
    scenario: Scenario
    units: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the run completed."""
        return self.status == "completed"


class _TerminatedError(Exception):
    """Raised in the main thread when SIGTERM arrives."""


def _versions() -> dict[str, str]:
    """Versions of Python and the scientific stack, from the imported modules (fast)."""
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        module = sys.modules.get(pkg)
        version = getattr(module, "__version__", None) if module is not None else None
        if version is None:
            try:
                version = importlib.metadata.version(pkg)
            except importlib.metadata.PackageNotFoundError:
                version = "not installed"
        out[pkg] = str(version)
    return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def default_run_dir(scenario: Scenario, root: Path | None = None) -> Path:
    """``outputs/<scenario>/<UTC timestamp>-s<seed>`` under ``root`` (default: cwd), unique."""
    root = Path.cwd() / "outputs" if root is None else Path(root)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = root / scenario.name / f"{stamp}-s{scenario.seed}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def write_biomarkers_csv(path: Path, df: pd.DataFrame) -> None:
    """Write biomarkers with a ``time`` column, atomically and byte-reproducibly."""
    atomic_write_text(path, df.to_csv(index=True, index_label="time", lineterminator="\n"))


def run(
    scenario: str | Path | Scenario,
    **kwargs: Any,
) -> RunResult:
    """Run a scenario and write its run folder (see :func:`run_scenario` for the arguments).

    BLAS is pinned to one thread for the run (threadpoolctl): the batched kernels multiply
    many small matrices, which a threaded BLAS does not speed up but does make use twice the
    CPU (measured on the astrocyte wave); the previous limits are restored afterwards.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return run_scenario(scenario, **kwargs)


def run_scenario(
    scenario: str | Path | Scenario,
    *,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    write: bool = True,
    figures: bool = True,
) -> RunResult:
    """Run a scenario and write its run folder.

    Args:
        scenario: A bundled scenario name, a path to a scenario file, or a resolved
            :class:`~biohybrid.scenario.Scenario`.
        overrides: ``{name: value}`` for model parameters and run settings.
        seed: Overrides the scenario's seed.
        out: The run folder to create (must not exist or be empty); default
            ``outputs/<scenario>/<timestamp>-s<seed>`` under the working directory.
        progress: Called as ``progress(tick, n_ticks)`` after every tick.
        write: Write a run folder (``False`` keeps everything in memory).
        figures: Render figures into ``figures/`` (only when ``write``).

    Returns:
        The run result. A numerical failure or an interruption is reported in
        ``result.status``, not raised.

    Raises:
        UserError: On invalid input, before any file is written.
    """
    if isinstance(scenario, Scenario):
        if overrides or seed is not None:
            base = scenario
            scenario = load_scenario(
                base.source,
                {**base.overrides, **dict(overrides or {})},
                base.seed if seed is None else seed,
            )
    else:
        scenario = load_scenario(scenario, overrides, seed)
    model_cls = scenario.model_class
    with setup_errors(scenario):
        model = model_cls(params=scenario.params, run=scenario.run, seed=scenario.seed)

    run_dir: Path | None = None
    created: Path | None = None
    if write:
        run_dir = Path(out) if out is not None else default_run_dir(scenario)
        created = make_output_dir(run_dir, subdirs=("figures",))

    manifest: dict[str, Any] = {
        "scenario": scenario.to_dict(),
        "seed": scenario.seed,
        "model": model_cls.name,
        "time_units": model_cls.time_units,
        "biomarker_units": model.recorder.units,
        "biomarker_descriptions": {b.name: b.description for b in model.biomarkers},
        "versions": _versions(),
        "command": sys.argv if sys.argv and sys.argv[0].endswith("biohybrid") else None,
        "started": _now(),
        "ended": None,
        "status": "running",
        "message": "",
        "counters": {},
    }

    def flush() -> None:
        if run_dir is None:
            return
        write_biomarkers_csv(run_dir / "biomarkers.csv", model.recorder.frame())
        manifest["counters"] = model.all_counters()
        manifest["model_time_reached"] = model.t
        if model.tissue is not None:  # mass ledger and the solves' own residuals, per field
            manifest["tissue"] = model.tissue.diagnostics()
        atomic_write_json(run_dir / "manifest.json", manifest)

    with first_writes(run_dir, created):
        flush()
    observers = default_observers(model, scenario.name) if write and figures else []
    start = time.perf_counter()
    status, message = "completed", "reached t_end"
    previous = None
    last_flush = start
    n_ticks = model.schedule.n_ticks
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not in the main thread
        previous = None
    try:
        while model.running and model.tick < n_ticks:
            model.step()
            for observer in observers:
                observer.observe(model)
            if progress is not None:
                progress(model.tick, n_ticks)
            if run_dir is not None and time.perf_counter() - last_flush > 5.0:
                flush()
                last_flush = time.perf_counter()
        message = f"reached t_end = {model.t:g} {model_cls.time_units}"
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted by the user at t = {model.t:g}"
    except _TerminatedError:
        status, message = "interrupted", f"terminated (SIGTERM) at t = {model.t:g}"
    except SimulationError as exc:
        status, message = "failed", f"numerical failure at t = {model.t:g}: {exc}"
    except Exception as exc:  # any other failure still ends the run cleanly, with the reason
        status, message = "failed", f"{type(exc).__name__} at t = {model.t:g}: {exc}"
        manifest["traceback"] = traceback.format_exc()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    wall = time.perf_counter() - start
    summary: dict[str, Any] = {}
    try:
        summary = model.summary() if status != "failed" else {}
    except Exception as exc:  # a summary must never hide the run's own outcome
        manifest["summary_error"] = f"{type(exc).__name__}: {exc}"
    manifest.update(status=status, message=message, ended=_now(), wall_time_s=round(wall, 3))
    df = model.recorder.frame()
    if run_dir is not None:
        # the data first: biomarkers, summary and the final manifest, then the figures
        if summary:
            atomic_write_json(run_dir / "summary.json", summary)
        flush()
        errors = []
        for observer in observers:
            try:
                observer.finish(model, run_dir, status)
            except Exception as exc:  # figures are secondary; record, don't lose the run
                errors.append(f"{type(observer).__name__}: {type(exc).__name__}: {exc}")
        if errors:
            manifest["figure_error"] = "; ".join(errors)
            flush()
    return RunResult(
        status=status,
        message=message,
        path=run_dir,
        biomarkers=df,
        counters=model.all_counters(),
        summary=summary,
        wall_time=wall,
        scenario=scenario,
        units=model.recorder.units,
    )


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _TerminatedError()
