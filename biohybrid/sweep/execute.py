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
  from it (unless it would import another copy of ``biohybrid`` than this process, e.g. a
  source checkout in the working directory shadowing the installed package: then each
  worker imports it from this process's ``sys.path``). A worker that dies takes the pool
  with it: its runs are retried once on a new pool, then recorded as failed. Workers die
  with the sweep: SIGTERM to this process kills them before it ends, and on Linux each
  worker asks the kernel for SIGKILL when its parent (the fork server, which exits as soon
  as this process is gone) dies, so SIGKILL of this process leaves no worker behind.
* :func:`run_dask`: ``distributed.Client(address)``; the same tasks are submitted to the
  cluster. Workers write run folders under the sweep folder, so a multi-machine cluster
  needs a shared file system (rows are written by this process either way).
  :func:`connect_dask` connects with a short timeout and turns failure into a
  :class:`~biohybrid.errors.UserError`.

A process pool re-runs the main script in every worker (``spawn`` and ``forkserver``
semantics); :func:`check_main_guard` refuses, before anything runs, a sweep started from
a script's top level without an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import ast
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from biohybrid.errors import UserError

#: Columns every row has, before the parameter and metric columns.
ROW_COLUMNS = ("run", "point", "replicate", "seed", "param_hash")
#: Columns after the parameters.
STATUS_COLUMNS = ("status", "message", "error", "wall_time", "task_time", "path")
#: Columns that depend on timing or placement, not on the computation.
TIMING_COLUMNS = ("wall_time", "task_time")
_WINDOW = 4
#: Longest wait for a Dask scheduler to answer (s); Dask's own default is 30 s.
DASK_CONNECT_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
    from biohybrid.registry import get_model  # first: it links a source checkout's models/

    if where is not None:
        import importlib

        try:
            obj: Any = importlib.import_module(where[0])
        except ImportError:
            obj = None
        for part in where[1].split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, type) and getattr(obj, "name", None) == name:
            return obj

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


def _die_with_parent(main_pid: int) -> None:
    """Worker initializer: SIGKILL this worker when its parent dies (Linux), or now if gone.

    A worker's parent is the fork server. The fork server exits when every holder of its
    "alive" pipe has gone; each worker inherits one end of that pipe (so that it could ask
    the fork server for processes of its own, which a worker never does). The worker closes
    it here, so the sweep's process is the only holder: when it dies, however it dies, the
    fork server exits and the kernel kills the workers.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(alive, int):
        try:
            os.close(alive)
        except OSError:
            pass
        server._forkserver_alive_fd = None
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the pool's EOF handling still applies
        return
    try:
        os.kill(main_pid, 0)
        running = os.getppid() == parent
    except ProcessLookupError:
        running = False
    except PermissionError:
        running = True
    if not running:  # the sweep ended before the request took effect
        os._exit(1)


def _server_imports_this_biohybrid() -> bool:
    """Whether the fork server would import the ``biohybrid`` this process runs.

    The fork server is a fresh ``python -c`` in the working directory: its ``sys.path``
    starts with that directory (unless ``-P``/``-I``) instead of this process's first entry
    (a script's folder). A source checkout there would shadow an installed package.
    """
    import importlib.machinery

    import biohybrid

    mine = getattr(biohybrid, "__file__", None)
    path = sys.path[1:] if sys.path else []
    if not sys.flags.safe_path:
        path = [os.getcwd(), *path]
    try:
        spec = importlib.machinery.PathFinder.find_spec("biohybrid", path)
    except (ImportError, ValueError, OSError):
        return False
    if spec is None or not spec.origin or mine is None:
        return True  # found by another finder (e.g. an editable install), as here
    return os.path.samefile(spec.origin, mine)


def _pool(workers: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    # Import the engine (and the model) once in the fork server; workers fork from it. The
    # setting takes effect when the fork server starts (once per process).
    modules = ["biohybrid.sweep.execute", "biohybrid.runner", *preload]
    ctx.set_forkserver_preload(modules if _server_imports_this_biohybrid() else [])
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )


class _PoolGuard:
    """While a pool runs: SIGTERM kills its workers first, then takes its previous effect.

    A previous Python handler is called. The default action (end the process) becomes
    ``SystemExit(143)``, the status a shell reports for SIGTERM, so that the sweep still
    folds its finished rows into ``results.parquet`` and releases its folder on the way out.
    """

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _PoolGuard:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the previous SIGTERM handler back."""
        if self._installed:
            self._installed = False
            try:
                signal.signal(signal.SIGTERM, self._previous)
            except (ValueError, TypeError):
                pass

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pool is not None:
            _terminate(self.pool)
        previous = self._previous
        self.restore()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # the default: end the process, as SIGTERM does
            raise SystemExit(128 + signum)


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
    guard = _PoolGuard().__enter__()
    try:
        pool = guard.pool = _pool(workers, preload)
    except BaseException:
        guard.restore()
        raise
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
                pool = guard.pool = _pool(workers, preload)
    except BaseException:  # Ctrl-C, or the consumer stopped: stop the runs in flight now
        _terminate(pool)
        raise
    finally:
        guard.restore()
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
    from distributed import as_completed

    client, own = connect_dask(scheduler)
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


def connect_dask(scheduler: Any, timeout: float = DASK_CONNECT_TIMEOUT) -> tuple[Any, bool]:
    """Connect to a Dask scheduler, failing quickly and clearly if it cannot be reached.

    Args:
        scheduler: A scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``.
        timeout: Longest wait (s); Dask's ``distributed.comm.timeouts.connect`` if shorter.

    Returns:
        ``(client, own)``: ``own`` when this call created the client (the caller closes it).

    Raises:
        UserError: If the address is not valid or no scheduler answers there in time.
    """
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise UserError(
            "The scheduler must be a Dask scheduler address such as 'tcp://host:8786' or a"
            f" distributed.Client, got {scheduler!r}."
        )
    import dask
    from dask.utils import parse_timedelta
    from distributed.comm import get_address_host_port, parse_address, registry

    try:  # the address itself first: a Client given a bad one hangs at exit
        scheme, _ = parse_address(scheduler)
        registry.get_backend(scheme)
        if scheme in ("tcp", "tls"):
            get_address_host_port(scheduler)
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"'{scheduler}' is not a Dask scheduler address ({exc}); give one such as"
            " tcp://host:8786."
        ) from None
    configured = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    limit = min(float(timeout), float(configured or timeout))
    try:
        return Client(scheduler, timeout=limit, set_as_default=False), True
    except Exception as exc:  # OSError / TimeoutError: nothing answered in time
        detail = str(exc).strip() or type(exc).__name__
        raise UserError(
            f"Cannot reach the Dask scheduler at '{scheduler}' ({detail}). Check the address"
            " and that the scheduler is running, or leave --scheduler out to run on this"
            " machine."
        ) from None


def check_main_guard() -> None:
    """Refuse a process pool started from a script's top level without a ``__main__`` guard.

    Every worker of a ``spawn`` or ``forkserver`` pool runs the main script again (as
    ``__mp_main__``) before it takes work; a sweep called from the script's top level
    would start again in every worker, and every run would fail with a lost worker. This
    looks up the statement of the main script that led to this call and whether that
    re-run would reach it (it would not under ``if __name__ == "__main__":``).

    Raises:
        UserError: If the sweep would be restarted in the workers, or if this process is
            itself a worker importing the main script.
    """
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise UserError(
            "biohybrid.sweep() was called while a worker process was importing the main"
            ' script: put the sweep under `if __name__ == "__main__":` in that script.'
        )
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    path = getattr(main, "__file__", None)
    if main is None or path is None or (name is not None and name.endswith("__main__")):
        return  # an interactive session, `python -c`, or a package's __main__: not re-run
    frame = sys._getframe(1)
    while frame is not None and not (
        frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)
    ):
        frame = frame.f_back
    if frame is None:
        return
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return
    line = frame.f_lineno
    if _reached_by_worker(tree.body, line):
        raise UserError(
            f"biohybrid.sweep() with a process pool is called from the top level of the"
            f" script '{path}' (line {line}) without an `if __name__ == \"__main__\":`"
            " guard. Every worker process runs the script again before it takes work, so"
            " each would start the sweep again. Put the code that runs the sweep under"
            ' `if __name__ == "__main__":` (see docs/sweeps.md), or pass workers=1 to run'
            " in this process."
        )


def _reached_by_worker(body: list[ast.stmt], line: int) -> bool:
    """Whether re-running ``body`` with ``__name__ == "__mp_main__"`` reaches ``line``."""
    for stmt in body:
        end = getattr(stmt, "end_lineno", None) or stmt.lineno
        if not stmt.lineno <= line <= end:
            continue
        if isinstance(stmt, ast.If):
            branch = _in_child(stmt.test)
            if _contains(stmt.body, line):
                return branch is not False and _reached_by_worker(stmt.body, line)
            if _contains(stmt.orelse, line):
                return branch is not True and _reached_by_worker(stmt.orelse, line)
            return True  # in the test itself
        blocks = [getattr(stmt, f, None) or [] for f in ("body", "orelse", "finalbody")]
        blocks += [h.body for h in getattr(stmt, "handlers", None) or []]
        blocks += [c.body for c in getattr(stmt, "cases", None) or []]
        for block in blocks:
            if block and isinstance(block[0], ast.stmt) and _contains(block, line):
                return _reached_by_worker(block, line)
        return True
    return False


def _contains(body: list[ast.stmt], line: int) -> bool:
    return any(s.lineno <= line <= (getattr(s, "end_lineno", None) or s.lineno) for s in body)


def _in_child(test: ast.expr) -> bool | None:
    """The value of an ``if`` test when ``__name__ == "__mp_main__"``, or None if unknown."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        sides = {ast.dump(test.left), ast.dump(test.comparators[0])}
        name, main = ast.dump(ast.Name("__name__", ast.Load())), ast.dump(ast.Constant("__main__"))
        if sides == {name, main}:
            if isinstance(test.ops[0], ast.Eq | ast.Is):
                return False
            if isinstance(test.ops[0], ast.NotEq | ast.IsNot):
                return True
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _in_child(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        values = [_in_child(v) for v in test.values]
        if isinstance(test.op, ast.And):
            return False if False in values else (True if all(values) else None)
        return True if True in values else (False if all(v is False for v in values) else None)
    return None


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
