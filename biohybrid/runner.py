"""Run a scenario into a run folder: manifest, biomarkers, figures; robust to interruption.

A run folder (default ``outputs/<scenario>/<UTC timestamp>-s<seed>/``) holds

* ``manifest.json``: the fully resolved scenario, seed, package versions, start and end
  times, status (``running``, ``completed``, ``interrupted`` or ``failed``) with the reason,
  the units of each biomarker, and the run's counters;
* ``biomarkers.csv``: a ``time`` column and one column per biomarker;
* ``summary.json``: model-specific summary values (when the model has any);
* ``figures/biomarkers.png`` and any model-specific figures;
* when their run settings ``cells_every``, ``fields_every``, ``vtk_every`` are on, the
  per-cell table ``cells/``, the field store ``fields.zarr`` and the ParaView files
  ``vtk/`` (:mod:`biohybrid.results`), written as the run goes and listed in the manifest's
  ``outputs``.

Every file is written atomically. The CSV is rewritten at most every few seconds during a
run and once at the end, so a run stopped by Ctrl-C, SIGTERM or a numerical failure keeps
everything recorded up to then, and its manifest says how it ended.

At the end the data come first: ``biomarkers.csv``, then ``summary.json``, then the final
manifest (``ended`` set), and only then the figures. SIGINT and SIGTERM stay handled until
the manifest is final: in the time loop the first one stops the run (``interrupted``);
while the data and the manifest are being written they are held back; during the figures
one stops the figures (recorded as ``figure_error``). The manifest's ``signals`` lists
every stop signal received, with the phase it arrived in. A signal that arrives after a
run has reached ``t_end`` (or failed) is delivered again, to the handler that was in place
before the run, once everything is written: the process still stops, with its data whole.
SIGKILL cannot be handled; it can only lose the figures, since the data are written first.
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
from typing import TYPE_CHECKING, Any

import pandas as pd
from threadpoolctl import threadpool_limits

from biohybrid.errors import SimulationError, setup_errors
from biohybrid.io import atomic_write_json, atomic_write_text, first_writes, make_output_dir
from biohybrid.observers import default_observers
from biohybrid.params import check_overrides, overrides_origin
from biohybrid.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from biohybrid.model import HybridModel

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
        stop_signal: ``"SIGINT"`` or ``"SIGTERM"`` if a signal stopped the time loop (the
            status is then ``interrupted``), else ``None``.
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
    stop_signal: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the run completed."""
        return self.status == "completed"


class _StopSignal(BaseException):
    """Raised in the main thread by SIGINT or SIGTERM while the run may be stopped.

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _SignalGuard:
    """Handles SIGINT and SIGTERM from the start of a run until its manifest is final.

    While ``armed`` (the time loop, the figures) the first signal raises
    :class:`_StopSignal` and disarms the guard; otherwise (writing the data and the final
    manifest) a signal is only recorded. The handlers in place before are restored on exit;
    a signal that was ignored (``SIG_IGN``) stays ignored. Outside the main thread nothing is
    installed (Python only delivers signals there).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.armed = False
        self.phase = "setup"
        self.received: list[dict[str, str]] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _SignalGuard:
        for signum in self.SIGNALS:
            try:
                if signal.getsignal(signum) is signal.SIG_IGN:
                    continue
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread
                break
        return self

    def __exit__(self, *exc: object) -> None:
        self.armed = False
        for signum, old in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)
        self._previous.clear()

    def arm(self, phase: str) -> None:
        """Let the next signal stop what runs now (``phase``)."""
        self.phase = phase
        self.armed = True

    def disarm(self, phase: str) -> None:
        """Hold signals back from now on (``phase``), only recording them."""
        self.armed = False
        self.phase = phase

    def since(self, phases: tuple[str, ...]) -> list[int]:
        """The signals received in any of ``phases``, as numbers."""
        return [signal.Signals[r["signal"]] for r in self.received if r["phase"] in phases]

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(
            {"signal": signal.Signals(signum).name, "phase": self.phase, "at": _now()}
        )
        if self.armed:
            self.armed = False
            raise _StopSignal(signum)


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
    *,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    write: bool = True,
    figures: bool = True,
) -> RunResult:
    """Run a scenario and write its run folder.

    BLAS is pinned to one thread for the run (threadpoolctl): the batched kernels multiply
    many small matrices, which a threaded BLAS does not speed up but does make use twice the
    CPU (measured on the astrocyte wave); the previous limits are restored afterwards.

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
        if overrides is not None or seed is not None:
            origin = overrides_origin(overrides)
            extra = check_overrides(overrides, origin) if overrides is not None else {}
            base = scenario
            scenario = load_scenario(
                base.source,
                {**base.overrides, **extra},
                base.seed if seed is None else seed,
            )
    else:
        scenario = load_scenario(scenario, overrides, seed)
    model_cls = scenario.model_class
    with threadpool_limits(limits=1, user_api="blas"):
        with setup_errors(scenario):
            model = model_cls(params=scenario.params, run=scenario.run, seed=scenario.seed)
        # From before the run folder exists until its manifest is final, SIGINT and SIGTERM
        # are handled by the guard: a run folder that exists always ends with a final manifest.
        with _SignalGuard() as guard:
            result = _execute(
                scenario, model, guard, out=out, progress=progress, write=write, figures=figures
            )
    # The handlers are restored. A run that ended by itself (completed or failed) has not
    # answered a stop signal that came during its end: deliver it now that all is written.
    pending = guard.since(("outputs", "figures", "final"))
    if pending and result.status != "interrupted":
        signal.raise_signal(signal.SIGTERM if signal.SIGTERM in pending else pending[0])
    return result


def _execute(
    scenario: Scenario,
    model: HybridModel,
    guard: _SignalGuard,
    *,
    out: str | Path | None,
    progress: Callable[[int, int], None] | None,
    write: bool,
    figures: bool,
) -> RunResult:
    """Create the run folder, run the time loop, then write data, manifest and figures."""
    model_cls = type(model)
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

    observers: list[Any] = []

    def write_manifest() -> None:
        if run_dir is None:
            return
        manifest["counters"] = model.all_counters()
        written = [o.manifest() for o in observers if hasattr(o, "manifest")]
        if written:  # per-cell tables, fields, ParaView files: paths, intervals, sizes
            manifest["outputs"] = {k: v for entry in written for k, v in entry.items()}
        manifest["model_time_reached"] = model.t
        if model.tissue is not None:  # mass ledger and the solves' own residuals, per field
            manifest["tissue"] = model.tissue.diagnostics()
        if guard.received:
            manifest["signals"] = list(guard.received)
        atomic_write_json(run_dir / "manifest.json", manifest)

    def flush() -> None:
        if run_dir is not None:
            write_biomarkers_csv(run_dir / "biomarkers.csv", model.recorder.frame())
            write_manifest()

    with first_writes(run_dir, created):
        flush()
    if run_dir is not None:
        with first_writes(run_dir, created):
            observers = default_observers(model, scenario.name, run_dir, figures=figures)
            if any(hasattr(o, "manifest") for o in observers):
                write_manifest()  # the outputs are in the manifest from their first time on
    status, message, stop_signal = "completed", "reached t_end", None
    n_ticks = model.schedule.n_ticks
    start = last_flush = time.perf_counter()
    try:
        guard.arm("loop")
        if guard.received:  # a signal during setup: stop before the first step
            raise _StopSignal(guard.since(("setup",))[0])
        while model.running and model.tick < n_ticks:
            model.step()
            for observer in observers:
                observer.observe(model)
            if progress is not None:
                progress(model.tick, n_ticks)
            if run_dir is not None and time.perf_counter() - last_flush > 5.0:
                flush()
                last_flush = time.perf_counter()
        guard.disarm("outputs")
        message = f"reached t_end = {model.t:g} {model_cls.time_units}"
    except (KeyboardInterrupt, _StopSignal) as exc:
        guard.disarm("outputs")
        status, message = "interrupted", _stop_message(exc, model.t)
        if isinstance(exc, _StopSignal):
            stop_signal = signal.Signals(exc.signum).name
    except SimulationError as exc:
        guard.disarm("outputs")
        status, message = "failed", f"numerical failure at t = {model.t:g}: {exc}"
    except Exception as exc:  # any other failure still ends the run cleanly, with the reason
        guard.disarm("outputs")
        status, message = "failed", f"{type(exc).__name__} at t = {model.t:g}: {exc}"
        manifest["traceback"] = traceback.format_exc()
    finally:
        guard.disarm("outputs")
    wall = time.perf_counter() - start

    # Until the manifest is final, stop signals are only recorded.
    summary: dict[str, Any] = {}
    try:
        summary = model.summary() if status != "failed" else {}
    except Exception as exc:  # a summary must never hide the run's own outcome
        manifest["summary_error"] = f"{type(exc).__name__}: {exc}"
    manifest.update(status=status, message=message, ended=_now(), wall_time_s=round(wall, 3))
    df = model.recorder.frame()
    if run_dir is not None:
        # The data first and the manifest last: once the manifest says how the run
        # ended, every data file is whole (SIGKILL during the figures loses only them).
        write_biomarkers_csv(run_dir / "biomarkers.csv", df)
        if summary:
            atomic_write_json(run_dir / "summary.json", summary)
        write_manifest()
        if observers:
            late = guard.since(("outputs",))
            if late:
                name = signal.Signals(late[0]).name
                manifest["figure_error"] = f"skipped: {name} arrived while writing the data"
            else:
                errors: list[str] = []
                try:
                    guard.arm("figures")  # a signal now stops the figures, not the data
                    for observer in observers:
                        try:
                            observer.finish(model, run_dir, status)
                        except _StopSignal:
                            raise
                        except Exception as exc:  # figures are secondary; don't lose the run
                            errors.append(f"{type(observer).__name__}: {type(exc).__name__}: {exc}")
                    guard.disarm("final")
                except _StopSignal as exc:
                    guard.disarm("final")
                    name = signal.Signals(exc.signum).name
                    errors.append(f"stopped by {name} while drawing the figures")
                finally:
                    guard.disarm("final")
                if errors:
                    manifest["figure_error"] = "; ".join(errors)
            write_manifest()
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
        stop_signal=stop_signal,
    )


def _stop_message(exc: BaseException, t: float) -> str:
    """How a stopped run ended, in words."""
    if isinstance(exc, _StopSignal) and exc.signum == signal.SIGTERM:
        return f"terminated (SIGTERM) at t = {t:g}"
    name = " (SIGINT)" if isinstance(exc, _StopSignal) else ""
    return f"interrupted by the user{name} at t = {t:g}"
