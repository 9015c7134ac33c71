"""Running a sweep's runs: in-process, on a local process pool, or on a Dask cluster.

The unit of work is :func:`run_task`: it takes a plain dict (picklable, so it travels to a
worker process or a Dask worker), runs one scenario with :func:`biohybrid.run`, and
returns one result row. It never raises for a failed run: a numerical failure, an
invalid parameter combination or an exception in the user's ``metrics`` callable becomes
a row with ``status = "failed"`` and the ``error``.

Executors yield rows as runs finish (in completion order) and keep only a bounded window
of runs in flight (``4 x workers``), so memory stays flat in the number of runs.

* :func:`run_inprocess`: ``workers=1``, in this process (no pickling, easiest to debug).
* :func:`run_pool`: :class:`concurrent.futures.ProcessPoolExecutor` with the
  ``forkserver`` start method; the fork server imports the engine once and forks workers
  from it. A worker that dies takes the pool with it: its runs are retried once on a new
  pool, then recorded as failed.
* :func:`run_dask`: ``distributed.Client(address)``; the same tasks are submitted to the
  cluster. Workers write run folders under the sweep folder, so a multi-machine cluster
  needs a shared file system (rows are written by this process either way).
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

#: Columns every row has, before the parameter and metric columns.
ROW_COLUMNS = ("run", "point", "replicate", "seed", "param_hash")
#: Columns after the parameters.
STATUS_COLUMNS = ("status", "message", "error", "wall_time", "task_time", "path")
#: Columns that depend on timing or placement, not on the computation.
TIMING_COLUMNS = ("wall_time", "task_time")
_WINDOW = 4


def default_metrics(result: Any) -> dict[str, Any]:
    """The final value of every biomarker plus the model's scalar summary values.

    Args:
        result: A :class:`~biohybrid.runner.RunResult`.

    Returns:
        ``{name: value}``; summary keys that clash with a biomarker get a ``summary_`` prefix.
    """
    out: dict[str, Any] = {}
    df = result.biomarkers
    if len(df):
        last = df.iloc[-1]
        out.update({str(k): float(v) for k, v in last.items()})
    for key, value in (result.summary or {}).items():
        if isinstance(value, bool | int | float | str):
            out[f"summary_{key}" if key in out else str(key)] = value
    return out


def _metric_row(values: dict[str, Any], reserved: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"metric_{key}" if key in reserved else str(key)
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, bool):
            value = float(value)
        elif isinstance(value, int):
            value = float(value)
        elif not isinstance(value, float | str):
            raise TypeError(f"metric '{key}' is not a number or text: {type(value).__name__}")
        out[name] = value
    return out


def _model_class(name: str, where: tuple[str, str] | None) -> type:
    """The model class, imported directly by ``(module, qualname)`` when given.

    This skips the registry's scan of installed entry points (tens of ms per call).
    """
    if where is not None:
        import importlib

        obj: Any = importlib.import_module(where[0])
        for part in where[1].split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, type) and getattr(obj, "name", None) == name:
            return obj
    from biohybrid.registry import get_model

    return get_model(name)


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one sweep run and return its row.

    Args:
        task: ``run, point, replicate, seed, param_hash`` (the design row), ``values``
            (``{name: value}`` of the swept parameters), ``scenario`` (the base
            scenario's :meth:`~biohybrid.scenario.Scenario.to_dict`), ``root`` (sweep
            folder, or ``None`` for no run folder), ``rel`` (run folder relative to
            ``root``), ``figures`` (render per-run figures), ``metrics`` (a
            cloudpickled callable ``RunResult -> dict`` or ``None`` for
            :func:`default_metrics`), ``model_class`` (optional ``(module, qualname)``
            of the model class).

    Returns:
        The row: the design columns, the parameter values, ``status``, ``message``,
        ``error``, ``wall_time`` (s, the run's stepping loop), ``task_time`` (s, all of
        this call), ``path`` (relative run folder) and the metrics.
    """
    start = time.perf_counter()
    row: dict[str, Any] = {k: task[k] for k in ROW_COLUMNS}
    row.update(task["values"])
    row.update(
        status="failed", message="", error=None, wall_time=math.nan, task_time=math.nan, path=None
    )
    reserved = set(row)
    result = None
    try:
        from biohybrid.runner import run
        from biohybrid.scenario import Scenario
        from biohybrid.settings import merge_run, resolve_params, resolve_run, split_settings

        base = task["scenario"]
        cls = _model_class(base["model"], task.get("model_class"))
        where = f"sweep run {task['run']}"
        swept_run, swept_params = split_settings(cls, task["values"], where=where)
        params = {**base["params"], **swept_params}
        settings = merge_run(base["run"], swept_run)
        scenario = Scenario(
            name=base["name"],
            model=base["model"],
            description=base["description"],
            seed=int(task["seed"]),
            params=resolve_params(cls, params, where=where),
            run=resolve_run(cls, settings, where=where),
            source=base.get("source", ""),
            overrides={**base.get("overrides", {}), **task["values"]},
        )
        out = None
        if task.get("root") is not None:
            out = Path(task["root"]) / task["rel"]
            row["path"] = task["rel"]
        result = run(scenario, out=out, write=out is not None, figures=task.get("figures", False))
        row.update(status=result.status, message=result.message, wall_time=result.wall_time)
        if result.status == "completed":
            fn = default_metrics
            if task.get("metrics") is not None:
                import cloudpickle

                fn = cloudpickle.loads(task["metrics"])
            try:
                row.update(_metric_row(dict(fn(result)), reserved))
            except Exception as exc:
                row.update(status="failed", error=f"metrics: {type(exc).__name__}: {exc}")
                row["message"] = "the run completed but the metrics callable failed"
        elif result.status == "failed":
            row["error"] = result.message
    except Exception as exc:
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        row["message"] = "the run could not start or raised"
        if task.get("root") is not None:
            folder = Path(task["root"]) / task["rel"]
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
            except OSError:
                pass
    row["task_time"] = time.perf_counter() - start
    return row


def run_inprocess(tasks: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Run tasks one after another in this process, yielding each row."""
    for task in tasks:
        row = run_task(task)
        if row["status"] == "interrupted":
            raise KeyboardInterrupt
        yield row


def _pool(workers: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    # Import the engine (and the model) once in the fork server; workers fork from it.
    ctx.set_forkserver_preload(["biohybrid.sweep.execute", "biohybrid.runner", *preload])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def run_pool(
    tasks: Iterable[dict[str, Any]], workers: int, preload: Sequence[str] = ()
) -> Iterator[dict[str, Any]]:
    """Run tasks on a local process pool, yielding rows as runs finish.

    Args:
        tasks: The tasks, consumed lazily.
        workers: Number of worker processes.
        preload: Modules to import once in the fork server (e.g. the model's package).

    Yields:
        One row per task, in completion order.
    """
    from concurrent.futures.process import BrokenProcessPool

    pending = iter(tasks)
    retry: list[dict[str, Any]] = []
    attempts: dict[int, int] = {}
    window = _WINDOW * workers
    pool = _pool(workers, preload)
    inflight: dict[Future, dict[str, Any]] = {}
    try:
        while True:
            while len(inflight) < window:
                task = retry.pop() if retry else next(pending, None)
                if task is None:
                    break
                inflight[pool.submit(run_task, task)] = task
            if not inflight:
                break
            finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                task = inflight.pop(fut)
                try:
                    row = fut.result()
                except BrokenProcessPool:
                    broken = True
                    attempts[task["run"]] = attempts.get(task["run"], 0) + 1
                    if attempts[task["run"]] < 2:
                        retry.append(task)
                        continue
                    row = _infra_failure(task, "a worker process died (twice) running it")
                if row["status"] == "interrupted":
                    raise KeyboardInterrupt
                yield row
            if broken:
                for fut, task in inflight.items():
                    fut.cancel()
                    retry.append(task)
                inflight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _pool(workers, preload)
    except BaseException:  # Ctrl-C, or the consumer stopped: stop the runs in flight now
        _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes (SIGKILL: a run may be deep in C code); redone on resume."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()
        except (OSError, ValueError, AttributeError):
            pass


def run_dask(
    tasks: Iterable[dict[str, Any]], scheduler: Any, workers: int | None = None
) -> Iterator[dict[str, Any]]:
    """Run tasks on a Dask distributed cluster, yielding rows as runs finish.

    Args:
        tasks: The tasks, consumed lazily.
        scheduler: A scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``.
        workers: Runs in flight per worker are bounded by ``4 x`` this (default: the
            cluster's total thread count).

    Yields:
        One row per task, in completion order.
    """
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        if workers is None:
            workers = max(1, sum(client.nthreads().values()))
        window = _WINDOW * workers
        pending = iter(tasks)
        tasks_of: dict[str, dict[str, Any]] = {}
        ac = as_completed()

        def submit() -> bool:
            task = next(pending, None)
            if task is None:
                return False
            key = f"biohybrid-sweep-{task['param_hash']}-{task['run']}-{os.getpid()}"
            fut = client.submit(run_task, task, key=key, pure=False, retries=0)
            tasks_of[fut.key] = task
            ac.add(fut)
            return True

        for _ in range(window):
            if not submit():
                break
        for fut in ac:
            task = tasks_of.pop(fut.key)
            try:
                row = fut.result()
            except Exception as exc:  # KilledWorker, lost connection, ...
                row = _infra_failure(task, f"Dask: {type(exc).__name__}: {exc}")
            fut.release()
            if row["status"] == "interrupted":
                raise KeyboardInterrupt
            yield row
            submit()
    finally:
        if own:
            client.close()


def _infra_failure(task: dict[str, Any], error: str) -> dict[str, Any]:
    row: dict[str, Any] = {k: task[k] for k in ROW_COLUMNS}
    row.update(task["values"])
    row.update(
        status="failed",
        message="the worker running it was lost",
        error=error,
        wall_time=math.nan,
        task_time=math.nan,
        path=task["rel"] if task.get("root") is not None else None,
    )
    return row


ProgressFn = Callable[[int, int, dict[str, Any]], None]
