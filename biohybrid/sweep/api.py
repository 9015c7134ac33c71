"""``biohybrid.sweep``: run a scenario over a design of parameter values, resumably.

Example::

    import biohybrid

    df = biohybrid.sweep(
        "demo",
        {"s_max": [0.1, 0.5, 1.0]},
        replicates=3,
        overrides={"t_end": 360.0},
        out="outputs/demo-smax",
    )
    df.groupby("s_max")["n_cells"].mean()

Run the same call again and every finished run is skipped; a different design for the
same folder is a :class:`~biohybrid.errors.UserError`.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from biohybrid.errors import UserError
from biohybrid.io import check_output_dir, first_writes, new_dirs_top
from biohybrid.params import Overrides, check_overrides, check_whole, overrides_origin, show_value
from biohybrid.scenario import Scenario, load_scenario
from biohybrid.settings import merge_run, resolve_params, resolve_run, split_settings
from biohybrid.sweep.design import Design, make_design
from biohybrid.sweep.execute import (
    ProgressFn,
    check_main_guard,
    connect_dask,
    run_dask,
    run_inprocess,
    run_pool,
)
from biohybrid.sweep.store import FORMAT_VERSION, SweepStore

#: Statuses that count as finished when a sweep resumes (``failed`` unless retried).
FINISHED = ("completed", "failed")
# Fold parts into results.parquet after this many new rows (at least; grows with the table
# so that rewriting it stays a small fraction of the work) or this many seconds.
_CONSOLIDATE_EVERY_S = 10.0
_CONSOLIDATE_EVERY_N = 64


def _default_out(scenario: Scenario) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path.cwd() / "outputs" / scenario.name / f"sweep-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def _check_values(sc: Scenario, design: Design, where: str) -> None:
    """Validate every swept value (grid) or both ends of every range, before any run."""
    cls = sc.model_class
    where = f"the sweep's {where} values"
    for name in design.names:
        for value in design.spec[name]:
            swept_run, swept_params = split_settings(cls, {name: value}, where=where)
            if swept_run:
                resolve_run(cls, merge_run(sc.run, swept_run), where=where)
            else:
                resolve_params(cls, {**sc.params, **swept_params}, where=where)


def _check_arguments(workers: Any, out: Any, progress: Any, flags: Mapping[str, Any]) -> int | None:
    """Check the sweep's plain arguments (types and ranges), before anything is loaded."""
    workers = check_whole(workers, "workers", minimum=1, none_ok=True)
    if out is not None and not isinstance(out, str | os.PathLike):
        raise UserError(
            f"out must be a folder path (text or pathlib.Path), got {show_value(out)}"
            f" ({type(out).__name__})."
        )
    if not (isinstance(progress, bool) or callable(progress)):
        raise UserError(
            "progress must be true/false or a callable progress(done, total, row), got"
            f" {show_value(progress)}."
        )
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise UserError(f"{name} must be true or false, got {show_value(value)}.")
    return workers


def _metrics_blob(metrics: Callable[..., Mapping[str, Any]] | None) -> bytes | None:
    if metrics is None:
        return None
    if not callable(metrics):
        raise UserError(
            f"metrics must be a callable RunResult -> dict, got {type(metrics).__name__}."
        )
    import cloudpickle

    try:
        return cloudpickle.dumps(metrics)
    except Exception as exc:
        raise UserError(f"The metrics callable cannot be sent to workers: {exc}.") from None


def _progress_bar(total: int, label: str) -> tuple[ProgressFn | None, Any]:
    """A rich progress bar on stderr when stderr is a terminal, else nothing."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        return None, None
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs  {task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task(label, total=total, failed=0)
    failed = [0]

    def update(done: int, total: int, row: dict[str, Any]) -> None:
        failed[0] += row.get("status") != "completed"
        bar.update(task, completed=done, total=total, failed=failed[0])

    bar.start()
    return update, bar


def sweep(
    scenario: str | Path,
    params: Mapping[str, Any],
    *,
    design: str = "grid",
    n: int | None = None,
    replicates: int = 1,
    seed: int = 0,
    workers: int | None = None,
    scheduler: Any = None,
    out: str | Path | None = None,
    metrics: Callable[..., Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
    progress: bool | ProgressFn = False,
    retry_failed: bool = False,
    run_figures: bool = False,
    figures: bool = True,
) -> pd.DataFrame:
    """Run ``scenario`` over a design of parameter values; return one row per run.

    Args:
        scenario: A bundled scenario name or a path to a scenario file.
        params: ``{name: [v1, v2, ...]}`` (grid) or ``{name: (lo, hi)}`` (``lhs``,
            ``sobol``, ``morris``); names are model parameters or run settings.
        design: ``grid``, ``lhs``, ``sobol`` or ``morris`` (see
            :mod:`biohybrid.sweep.design`).
        n: Points (lhs), base sample size (sobol, a power of two), trajectories
            (morris), or values per range (grid).
        replicates: Runs per design point, each with its own seed.
        seed: Root seed: run ``i`` gets ``SeedSequence(seed).spawn(n_runs)[i]``.
        workers: Local worker processes (default: the CPU count); 1 runs in this process.
        scheduler: A Dask scheduler address or ``distributed.Client``; runs go to that
            cluster instead of a local pool.
        out: The sweep folder (default ``outputs/<scenario>/sweep-<timestamp>``). Give
            the same folder again to resume.
        metrics: ``RunResult -> {name: number}``, computed in the worker (default: the
            final value of each biomarker plus ``model.summary()``). Sent to workers with
            cloudpickle, so a lambda or closure works.
        overrides: Fixed parameter or run-setting values for every run (like ``--set``).
        progress: ``True`` for a progress bar on stderr (when it is a terminal), or a
            callable ``progress(done, total, row)``.
        retry_failed: On resume, run again the runs recorded as failed.
        run_figures: Render each run's biomarker figure in its run folder (slower).
        figures: Draw the sweep figures into ``figures/`` at the end.

    Returns:
        One row per run in design order: ``run, point, replicate, seed, param_hash``, the
        swept parameters, ``status, message, error, wall_time, task_time, path`` and one
        column per metric. ``df.attrs["sweep"]`` holds the folder, design kind and counts
        of runs done now and skipped.

    Raises:
        UserError: On invalid input (before any run), or if ``out`` holds another sweep.
    """
    workers = _check_arguments(
        workers,
        out,
        progress,
        {"retry_failed": retry_failed, "run_figures": run_figures, "figures": figures},
    )
    origin = overrides_origin(overrides)
    overrides = check_overrides(overrides, origin)
    sc = load_scenario(scenario, Overrides(overrides, origin))
    d = make_design(
        params, model_cls=sc.model_class, design=design, n=n, replicates=replicates, seed=seed
    )
    for name in d.names:
        if name in overrides:
            raise UserError(
                f"'{name}' is both swept and fixed in {origin}; choose one (drop it from"
                f" {origin} or from the swept parameters)."
            )
    _check_values(sc, d, getattr(params, "origin", "params"))
    blob = _metrics_blob(metrics)
    root = check_output_dir(Path(out) if out is not None else _default_out(sc))
    created = new_dirs_top(root)
    store = SweepStore(root)
    base = sc.to_dict()
    # The resolved params and run settings define the sweep; where they came from (file,
    # overrides as typed) and the file's own seed do not.
    source = base.pop("source")
    base.pop("seed")
    typed = base.pop("overrides")
    record = {
        "format": FORMAT_VERSION,
        "scenario": base,
        "design": d.to_dict(),
        "scenario_source": source,
        "overrides": typed,
        "metrics": getattr(metrics, "__qualname__", "default") if metrics else "default",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if scheduler is None and workers != 1:
        check_main_guard()  # a script without a __main__ guard: refuse before anything runs
    client, own_client = connect_dask(scheduler) if scheduler is not None else (None, False)
    try:
        with first_writes(root, created):
            store.open(record)  # takes the folder's lock, held until store.close()
    except BaseException:
        if own_client:
            client.close()
        raise
    try:
        base.update(source=source, overrides=typed)

        runs = d.runs()
        done = store.done()
        finished = FINISHED if not retry_failed else ("completed",)
        ok = done[done["status"].isin(finished)]
        ok_keys = set(zip(ok["run"].astype(int), ok["param_hash"], strict=True))
        todo = [
            int(r)
            for r, h in zip(runs["run"], runs["param_hash"], strict=True)
            if (int(r), h) not in ok_keys
        ]
        n_skipped = d.n_runs - len(todo)

        cls = sc.model_class
        model_where = (cls.__module__, cls.__qualname__)

        def tasks() -> Iterator[dict[str, Any]]:
            for i in todo:
                store.clear_run_dir(i)
                yield {
                    "run": int(runs["run"].iat[i]),
                    "point": int(runs["point"].iat[i]),
                    "replicate": int(runs["replicate"].iat[i]),
                    "seed": int(runs["seed"].iat[i]),
                    "param_hash": str(runs["param_hash"].iat[i]),
                    "values": {k: _py(runs[k].iat[i]) for k in d.names},
                    "scenario": base,
                    "root": str(store.root.resolve()),
                    "rel": str(store.run_dir(i).relative_to(store.root)),
                    "figures": run_figures,
                    "metrics": blob,
                    "model_class": model_where,
                }

        if scheduler is not None:
            rows = run_dask(tasks(), client, workers)
        else:
            w = int(workers) if workers is not None else (os.cpu_count() or 1)
            w = max(1, min(w, len(todo) or 1))
            preload = [sc.model_class.__module__]
            rows = run_inprocess(tasks()) if w == 1 else run_pool(tasks(), w, preload)

        bar = None
        callback: ProgressFn | None = None
        if progress is True:
            from rich.markup import escape

            callback, bar = _progress_bar(len(todo), escape(f"{sc.name} ({d.kind})"))
        elif callable(progress):
            callback = progress
        start = time.perf_counter()
        last = start
        since = 0
        count = 0
        try:
            for row in rows:
                store.write_part(row)
                count += 1
                since += 1
                if callback is not None:
                    callback(count, len(todo), row)
                every = max(_CONSOLIDATE_EVERY_N, (n_skipped + count) // 8)
                if since >= every or time.perf_counter() - last > _CONSOLIDATE_EVERY_S:
                    store.consolidate()
                    since, last = 0, time.perf_counter()
        finally:
            if bar is not None:
                bar.stop()
            store.consolidate()
        wall = time.perf_counter() - start
        df = store.read()
        df.attrs["sweep"] = {
            "path": str(store.root),
            "design": d.kind,
            "names": d.names,
            "n_runs": d.n_runs,
            "n_done_now": count,
            "n_skipped": n_skipped,
            "wall_time": wall,
        }
        if figures and len(df):
            from biohybrid.sweep.figures import write_sweep_figures

            try:
                write_sweep_figures(store.root, df, d)
            except Exception as exc:  # figures are secondary; never lose the results
                print(f"warning: sweep figures failed: {exc}", file=sys.stderr)
        return df
    finally:
        store.close()
        if own_client:
            client.close()


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def load_sweep(path: str | Path) -> pd.DataFrame:
    """Read a sweep folder's results (finished runs so far), in design order.

    Args:
        path: The sweep folder.

    Returns:
        The results, with ``attrs["sweep"]`` as returned by :func:`sweep`.

    Raises:
        UserError: If ``path`` is not a sweep folder.
    """
    store = SweepStore(path)
    if not store.meta.exists():
        raise UserError(f"'{path}' is not a sweep folder (no sweep.json).")
    rec = store.record()
    df = store.read()
    design = rec["design"]
    df.attrs["sweep"] = {
        "path": str(store.root),
        "design": design["kind"],
        "names": list(design["spec"]),
        "n_runs": design["n_runs"],
    }
    return df
