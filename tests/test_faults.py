"""Faults: real stop signals at every phase of a run, and to a sweep's main process.

A run is driven in a child process forked from multiprocessing's fork server (which has the
engine imported already, so each case costs a run, not an interpreter start). A hook in the
child marks the phase it has reached and waits there; the test then sends a real signal
with ``os.kill`` and lets the child go on. No assertion depends on timing: every wait polls
for a file or a process with a generous deadline.

What must hold (issue 12, item 1): once a run folder exists, the run ends with a final
manifest (``ended`` set, ``status`` ``completed`` or ``interrupted``, the signals it got
listed) and a ``biomarkers.csv`` that parses and holds every output row up to the model
time the manifest reports. SIGKILL cannot be handled: after a SIGKILL while the figures are
drawn, the data and the manifest are already final, because they are written first.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# A 12 x 12 demo colony for 120 min: ticks of 5 min (dt_ode), a row every 30 min.
TINY = {"t_end": 120.0, "nx": 12, "ny": 12, "seed_radius": 2.0}
STOP_TICK = 13  # the loop hook stops at t = 65 min: rows at 0, 30, 60
DEADLINE = 180.0  # s: generous, for a loaded machine; never an assertion on speed


def _ctx() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    # Takes effect if this starts the fork server (the sweep tests may have started it).
    ctx.set_forkserver_preload(["biohybrid.runner", "biohybrid.models.demo", "matplotlib"])
    return ctx


def _hold(folder: Path, name: str) -> None:
    """Mark that the run reached ``name``, then wait until the test says go."""
    (folder / f"at-{name}").touch()
    deadline = time.monotonic() + DEADLINE
    while not (folder / f"go-{name}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _child(folder_text: str, phase: str) -> None:
    """The run under test, with a hook that holds it at ``phase``."""
    import matplotlib

    matplotlib.use("Agg")
    import biohybrid.runner as runner
    from biohybrid.scenario import load_scenario

    folder = Path(folder_text)
    cls = load_scenario("demo").model_class
    if phase == "building":  # constructing the model: no run folder yet
        init = cls.__init__

        def slow_init(self, *args, **kwargs):
            _hold(folder, "building")
            init(self, *args, **kwargs)

        cls.__init__ = slow_init
    if phase == "setup":  # the first write of the run folder
        write = runner.write_biomarkers_csv
        calls = []

        def slow_write(path, df):
            if not calls:
                calls.append(path)
                _hold(folder, "setup")
            write(path, df)

        runner.write_biomarkers_csv = slow_write

    def progress(tick: int, total: int) -> None:
        if tick == STOP_TICK and phase in ("loop", "twice"):
            _hold(folder, "loop")

    if phase in ("outputs", "twice"):  # the first thing after the time loop
        summary = cls.summary

        def slow_summary(self):
            _hold(folder, "outputs")
            return summary(self)

        cls.summary = slow_summary
    if phase == "figures":  # the biomarker figure, drawn by the run's figure observer
        import biohybrid.observers as observers

        plot = observers.plot_biomarkers

        def slow_plot(*args, **kwargs):
            _hold(folder, "figures")
            return plot(*args, **kwargs)

        observers.plot_biomarkers = slow_plot
    try:
        # figures only where they matter: elsewhere they would only cost time
        figures = phase in ("outputs", "twice", "figures")
        res = runner.run(
            "demo", overrides=TINY, out=folder / "run", progress=progress, figures=figures
        )
        outcome = {"returned": res.status, "signal": res.stop_signal}
    except KeyboardInterrupt:
        outcome = {"raised": "KeyboardInterrupt"}
    (folder / "outcome.json").write_text(json.dumps(outcome))


def _wait(path: Path, proc: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + DEADLINE
    while not path.exists():
        assert proc.is_alive(), f"the child ended (exit {proc.exitcode}) before {path.name}"
        assert time.monotonic() < deadline, f"the child never reached {path.name}"
        time.sleep(0.05)


def _drive(tmp: Path, phase: str, signals: list[tuple[str, int]]) -> dict:
    """Run the child held at ``phase``; at each ``(hook, signal)`` send it, then let go."""
    proc = _ctx().Process(target=_child, args=(str(tmp), phase))
    proc.start()
    try:
        for hook, sig in signals:
            _wait(tmp / f"at-{hook}", proc)
            os.kill(proc.pid, sig)
            (tmp / f"go-{hook}").touch()
        proc.join(DEADLINE)
        assert not proc.is_alive(), "the child did not end"
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    out = tmp / "outcome.json"
    return {
        "exitcode": proc.exitcode,
        "outcome": json.loads(out.read_text()) if out.exists() else None,
    }


def _final_manifest(run: Path) -> dict:
    man = json.loads((run / "manifest.json").read_text())
    assert man["status"] in ("completed", "interrupted"), man["status"]
    assert man["ended"] is not None
    return man


def _check_rows(run: Path, man: dict) -> pd.DataFrame:
    """biomarkers.csv parses and has a row at every output time up to the reported time."""
    df = pd.read_csv(run / "biomarkers.csv")
    settings = man["scenario"]["run"]
    expected = np.arange(0.0, man["model_time_reached"] + 1e-9, settings["dt_output"])
    np.testing.assert_allclose(df["time"].to_numpy(), expected)
    assert np.isfinite(df.drop(columns="time").to_numpy()).all()
    return df


def _signal_exit(sig: int) -> tuple[int, ...]:
    """Exit codes of a process ended by ``sig`` (its default action, or a shell's 128+n)."""
    return (-sig, 128 + sig)


SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_while_building_the_model_writes_nothing(tmp_path: Path, sig: int) -> None:
    got = _drive(tmp_path, "building", [("building", sig)])
    assert not (tmp_path / "run").exists()  # nothing half-written: no folder at all
    if sig == signal.SIGINT:
        assert got["outcome"] == {"raised": "KeyboardInterrupt"}
    else:
        assert got["exitcode"] in _signal_exit(sig) and got["outcome"] is None


@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_while_creating_the_run_folder_ends_at_t0(tmp_path: Path, sig: int) -> None:
    got = _drive(tmp_path, "setup", [("setup", sig)])
    assert got["outcome"] == {"returned": "interrupted", "signal": signal.Signals(sig).name}
    man = _final_manifest(tmp_path / "run")
    assert man["status"] == "interrupted" and man["model_time_reached"] == 0.0
    assert [s["signal"] for s in man["signals"]] == [signal.Signals(sig).name]
    assert len(_check_rows(tmp_path / "run", man)) == 1  # the t = 0 row


@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_in_the_loop_interrupts_with_every_row(tmp_path: Path, sig: int) -> None:
    got = _drive(tmp_path, "loop", [("loop", sig)])
    assert got["outcome"] == {"returned": "interrupted", "signal": signal.Signals(sig).name}
    man = _final_manifest(tmp_path / "run")
    assert man["status"] == "interrupted"
    name = signal.Signals(sig).name
    assert name in man["message"]
    assert man["signals"][0]["signal"] == name and man["signals"][0]["phase"] == "loop"
    # stopped after tick 13 of 5 min: t = 65, rows at 0, 30, 60
    assert man["model_time_reached"] == pytest.approx(STOP_TICK * 5.0)
    assert len(_check_rows(tmp_path / "run", man)) == 3


@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_while_writing_the_data_waits_for_them(tmp_path: Path, sig: int) -> None:
    """The repro of issue 12 item 1: the run has finished and is writing its outputs."""
    got = _drive(tmp_path, "outputs", [("outputs", sig)])
    run = tmp_path / "run"
    man = _final_manifest(run)
    assert man["status"] == "completed"  # the time loop did reach t_end
    assert man["model_time_reached"] == TINY["t_end"]
    assert [(s["signal"], s["phase"]) for s in man["signals"]] == [
        (signal.Signals(sig).name, "outputs")
    ]
    assert len(_check_rows(run, man)) == 5  # 0, 30, ..., 120
    assert "skipped" in man["figure_error"]
    assert not (run / "figures" / "biomarkers.png").exists()
    # ...and then the signal still stops the process, once everything is written
    if sig == signal.SIGINT:
        assert got["outcome"] == {"raised": "KeyboardInterrupt"}
    else:
        assert got["exitcode"] in _signal_exit(sig) and got["outcome"] is None


def test_a_second_ctrl_c_during_the_end_still_ends_cleanly(tmp_path: Path) -> None:
    got = _drive(tmp_path, "twice", [("loop", signal.SIGINT), ("outputs", signal.SIGINT)])
    assert got["outcome"]["returned"] == "interrupted"
    run = tmp_path / "run"
    man = _final_manifest(run)
    assert man["status"] == "interrupted"
    assert [(s["signal"], s["phase"]) for s in man["signals"]] == [
        ("SIGINT", "loop"),
        ("SIGINT", "outputs"),
    ]
    assert len(_check_rows(run, man)) == 3
    assert "skipped" in man["figure_error"]


@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_while_drawing_figures_stops_only_them(tmp_path: Path, sig: int) -> None:
    got = _drive(tmp_path, "figures", [("figures", sig)])
    run = tmp_path / "run"
    man = _final_manifest(run)
    assert man["status"] == "completed"
    name = signal.Signals(sig).name
    assert man["figure_error"].startswith(f"stopped by {name}")
    assert man["signals"][0]["phase"] == "figures"
    assert len(_check_rows(run, man)) == 5
    if sig == signal.SIGINT:
        assert got["outcome"] == {"raised": "KeyboardInterrupt"}
    else:
        assert got["exitcode"] in _signal_exit(sig)


def test_sigkill_while_drawing_figures_finds_the_data_complete(tmp_path: Path) -> None:
    got = _drive(tmp_path, "figures", [("figures", signal.SIGKILL)])
    assert got["exitcode"] == -signal.SIGKILL and got["outcome"] is None
    run = tmp_path / "run"
    man = _final_manifest(run)  # written before the figures began
    assert man["status"] == "completed" and man["model_time_reached"] == TINY["t_end"]
    assert len(_check_rows(run, man)) == 5
    assert "signals" not in man


def test_sigkill_in_the_loop_leaves_parseable_files(tmp_path: Path) -> None:
    got = _drive(tmp_path, "loop", [("loop", signal.SIGKILL)])
    assert got["exitcode"] == -signal.SIGKILL
    run = tmp_path / "run"
    man = json.loads((run / "manifest.json").read_text())  # atomic writes: whole or absent
    assert man["status"] == "running"  # SIGKILL cannot be recorded
    df = pd.read_csv(run / "biomarkers.csv")  # the last periodic flush, whole
    assert df["time"].iloc[0] == 0.0 and df["time"].is_monotonic_increasing


# ------------------------------------------------------------------ sweeps (item 7)


def _descendants(pid: int) -> dict[int, str]:
    """``{pid: start time}`` of every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    start: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        start[int(entry.name)] = fields[19]
    out: dict[int, str] = {}
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out[p] = start[p]
        todo += children.get(p, [])
    return out


def _alive(pid: int, started: str) -> bool:
    """Whether ``pid`` is still the same, running (not zombie) process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sweep_workers_die_with_the_main_process(tmp_path: Path, cli_env: dict) -> None:
    """SIGTERM or SIGKILL to a sweep's main process leaves no worker or fork server."""
    exe = str(Path(sys.executable).parent / "biohybrid")
    procs = {}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        out = tmp_path / signal.Signals(sig).name
        # two runs of 20000 ticks: they never end by themselves during the test
        args = [exe, "sweep", "demo", "--param", "s_max=0.1,1", "--workers", "2", "--quiet"]
        args += ["--set=t_end=99990", "--set=nx=12", "--set=ny=12", "--out", str(out)]
        procs[sig] = (subprocess.Popen(args, cwd=tmp_path, env=cli_env), out)
    try:
        tree = {}
        for sig, (proc, out) in procs.items():
            manifests = [out / "runs" / f"run-{i:05d}" / "manifest.json" for i in (0, 1)]
            deadline = time.monotonic() + DEADLINE
            while not all(m.exists() for m in manifests):  # both workers are in a run
                assert proc.poll() is None, f"the sweep ended early ({proc.returncode})"
                assert time.monotonic() < deadline, "the workers never started"
                time.sleep(0.1)
            tree[sig] = _descendants(proc.pid)
            assert len(tree[sig]) >= 3, tree[sig]  # fork server and two workers at least
        for sig, (proc, _) in procs.items():
            os.kill(proc.pid, sig)
        for proc, _ in procs.values():
            proc.wait(DEADLINE)
        assert procs[signal.SIGTERM][0].returncode in _signal_exit(signal.SIGTERM)
        assert procs[signal.SIGKILL][0].returncode == -signal.SIGKILL
        deadline = time.monotonic() + 60.0
        survivors = {}
        while time.monotonic() < deadline:
            survivors = {
                f"{signal.Signals(sig).name}: {pid}": _cmdline(pid)
                for sig, pids in tree.items()
                for pid, started in pids.items()
                if _alive(pid, started)
            }
            if not survivors:
                break
            time.sleep(0.2)
        assert not survivors, survivors
        # what finished is intact: the sweep folder still reads
        from biohybrid.sweep import load_sweep

        for _, out in procs.values():
            assert load_sweep(out).attrs["sweep"]["n_runs"] == 2
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# ------------------------------------------------------------------ Dask (item 14)


def test_unreachable_scheduler_is_a_quick_clear_error(tmp_path: Path, cli_env: dict) -> None:
    """No traceback, exit 2, no sweep folder (it was a traceback after 30 s and a folder)."""
    env = dict(cli_env, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")  # honoured if shorter
    exe = str(Path(sys.executable).parent / "biohybrid")
    args = [exe, "sweep", "demo", "--param", "s_max=0.1,1", "--scheduler", "tcp://127.0.0.1:9"]
    p = subprocess.run(
        [*args, "--out", str(tmp_path / "sw")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr, p.stderr
    assert "Cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in p.stderr
    assert "after 1 s" in p.stderr  # the configured timeout, not Dask's 30 s default
    assert sorted(tmp_path.iterdir()) == []  # no sweep folder, no outputs/


@pytest.mark.parametrize(
    ("address", "fragments"),
    [
        ("nonsense://x", ["is not a Dask scheduler address", "unknown address scheme"]),
        ("tcp://host-without-port", ["is not a Dask scheduler address", "port"]),
        ("", ["must be a Dask scheduler address"]),
        (8786, ["must be a Dask scheduler address", "8786"]),
    ],
)
def test_bad_scheduler_addresses_are_refused_before_connecting(
    tmp_path: Path, address: object, fragments: list[str]
) -> None:
    pytest.importorskip("distributed")
    from biohybrid.errors import UserError
    from biohybrid.sweep import sweep

    with pytest.raises(UserError) as info:
        sweep("demo", {"s_max": [0.1]}, scheduler=address, out=tmp_path / "sw")
    for fragment in fragments:
        assert fragment in str(info.value)
    assert not (tmp_path / "sw").exists()


def test_connect_timeout_is_the_shorter_of_ours_and_dask_config() -> None:
    dask = pytest.importorskip("dask")
    from biohybrid.errors import UserError
    from biohybrid.sweep.execute import DASK_CONNECT_TIMEOUT, connect_dask

    assert DASK_CONNECT_TIMEOUT <= 10.0  # Dask's own default (30 s) is what the issue hit
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        with pytest.raises(UserError, match=r"Cannot reach .* after 0\.5 s"):
            connect_dask("tcp://127.0.0.1:9")
