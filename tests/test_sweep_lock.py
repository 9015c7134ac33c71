"""A sweep folder is locked for the sweep's life: a second sweep on it stops and says who.

Issue 12, item 3: the same sweep started twice on one folder crashed one of them with a
traceback and recorded runs of the other as failed. The holder here is a sweep in a child
process (forked from multiprocessing's fork server) that waits after its first run until
the test lets it go; every wait polls a file with a generous deadline.
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from biohybrid.errors import UserError
from biohybrid.sweep import load_sweep, sweep
from biohybrid.sweep.store import LOCK_NAME, SweepStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX flock")

TINY = {"t_end": 60.0, "nx": 12, "ny": 12, "seed_radius": 2.0}
PARAMS = {"s_max": [0.1, 1.0]}
DEADLINE = 180.0  # s: generous, for a loaded machine; never an assertion on speed


def _holder(folder_text: str) -> None:
    """Run a sweep on ``folder/sw`` that pauses after its first run until ``go`` exists."""
    folder = Path(folder_text)

    def progress(done: int, total: int, row: dict) -> None:
        if done == 1:
            (folder / "holding").touch()
            deadline = time.monotonic() + DEADLINE
            while not (folder / "go").exists() and time.monotonic() < deadline:
                time.sleep(0.02)

    df = sweep("demo", PARAMS, workers=1, overrides=TINY, out=folder / "sw", progress=progress)
    (folder / "outcome.json").write_text(json.dumps(df["status"].tolist()))


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root`` with its size, modification time and bytes."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_second_sweep_on_a_held_folder_stops_and_changes_nothing(
    tmp_path: Path, cli_env: dict
) -> None:
    ctx = multiprocessing.get_context("forkserver")
    holder = ctx.Process(target=_holder, args=(str(tmp_path),))
    holder.start()
    out = tmp_path / "sw"
    try:
        deadline = time.monotonic() + DEADLINE
        while not (tmp_path / "holding").exists():
            assert holder.is_alive() and time.monotonic() < deadline, "the holder never ran"
            time.sleep(0.05)
        before = _snapshot(out)
        # from the command line: exit 2, a message naming the holder, no traceback
        args = [str(Path(sys.executable).parent / "biohybrid"), "sweep", "demo", "--quiet"]
        args += ["--param", "s_max=0.1,1", "--workers", "1", "--out", str(out)]
        args += [f"--set={k}={v}" for k, v in TINY.items()]
        p = subprocess.run(
            args, cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=DEADLINE
        )
        assert p.returncode == 2, p.stderr
        assert "Traceback" not in p.stderr
        assert "in use by another sweep" in p.stderr
        assert f"process {holder.pid} on host {socket.gethostname()}" in p.stderr
        # from Python: the same, as a UserError; a different design is refused the same way
        with pytest.raises(UserError, match=rf"in use by another sweep \(process {holder.pid}"):
            sweep("demo", PARAMS, workers=1, overrides=TINY, out=out)
        with pytest.raises(UserError, match="in use by another sweep"):
            sweep("demo", {"s_max": [0.5]}, workers=1, overrides=TINY, out=out)
        assert _snapshot(out) == before  # not a byte, not a timestamp
    finally:
        (tmp_path / "go").touch()
        holder.join(DEADLINE)
        if holder.is_alive():
            holder.kill()
            holder.join()
    assert holder.exitcode == 0
    # the holder's own runs are all fine (the issue saw them recorded as failed)
    assert json.loads((tmp_path / "outcome.json").read_text()) == ["completed", "completed"]
    # and once it has finished, the folder resumes (nothing left to run)
    again = sweep("demo", PARAMS, workers=1, overrides=TINY, out=out)
    assert again.attrs["sweep"]["n_skipped"] == 2
    assert (load_sweep(out)["status"] == "completed").all()


def test_the_lock_is_released_when_a_sweep_raises(tmp_path: Path) -> None:
    out = tmp_path / "sw"

    def explode(done: int, total: int, row: dict) -> None:
        raise RuntimeError("the caller's progress callback failed")

    with pytest.raises(RuntimeError, match="progress callback"):
        sweep("demo", PARAMS, workers=1, overrides=TINY, out=out, progress=explode)
    # the same process can go on with the folder at once: the first run was kept
    df = sweep("demo", PARAMS, workers=1, overrides=TINY, out=out)
    assert df.attrs["sweep"]["n_skipped"] == 1 and (df["status"] == "completed").all()


def test_lock_names_its_holder_and_frees_on_close(tmp_path: Path) -> None:
    first, second = SweepStore(tmp_path / "sw"), SweepStore(tmp_path / "sw")
    first.lock()
    info = json.loads((tmp_path / "sw" / LOCK_NAME).read_text())
    assert info["host"] == socket.gethostname() and isinstance(info["pid"], int)
    with pytest.raises(UserError, match=f"process {info['pid']} on host"):
        second.lock()  # another open file description: flock refuses it even in-process
    first.close()
    second.lock()
    second.close()


def test_a_foreign_folder_is_refused_without_a_lock_file(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("not a sweep")
    with pytest.raises(UserError, match="not a sweep folder"):
        sweep("demo", PARAMS, workers=1, overrides=TINY, out=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_a_file_as_sweep_folder_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "results.txt"
    out.write_text("mine")
    with pytest.raises(UserError, match="is an existing file, not a folder"):
        sweep("demo", PARAMS, workers=1, overrides=TINY, out=out)
    assert out.read_text() == "mine" and sorted(tmp_path.iterdir()) == [out]
