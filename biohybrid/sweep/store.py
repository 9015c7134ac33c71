"""The sweep folder: ``sweep.json``, one Parquet part per finished run, ``results.parquet``.

Layout of a sweep folder::

    sweep.json              the design, every point, the resolved base scenario
    results.parquet         one row per finished run, in design order
    results/part-<i>.parquet  rows of runs finished since the last consolidation
    runs/run-<i>/           each run's own run folder (manifest.json, biomarkers.csv, ...)
    figures/                metrics against parameters; sensitivity indices
    sweep.lock              held (flock) by the sweep running in the folder: pid, host, start

A finished run is written at once as its own small part file (atomically), so a sweep
killed at any moment loses at most the runs in flight. :meth:`SweepStore.consolidate`
folds the parts into ``results.parquet`` (written to a temporary file and moved into
place with :func:`os.replace`) and then deletes them. The sweep keeps no per-run data in
memory beyond the rows it is consolidating, and never any run's time series.

:meth:`SweepStore.open` takes an exclusive lock (``flock``) on ``sweep.lock`` and holds it
until :meth:`SweepStore.close` (or the process ends, however it ends: the kernel drops the
lock), so a second sweep started on the same folder stops with a message naming the holder
and changes nothing. The lock file stays in the folder (removing it would let two processes
lock two different files); its contents only say who held it last.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from biohybrid.errors import UserError
from biohybrid.io import atomic_write_bytes, atomic_write_json

FORMAT_VERSION = 1
_PART = re.compile(r"^part-(\d+)\.parquet$")
# sweep.json keys that must match for a sweep folder to be resumed
IDENTITY_KEYS = ("format", "scenario", "design")
LOCK_NAME = "sweep.lock"


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow")
    return buf.getvalue()


class SweepStore:
    """Reads and writes one sweep folder.

    Args:
        root: The sweep folder (created if missing).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.parts = self.root / "results"
        self.results = self.root / "results.parquet"
        self.meta = self.root / "sweep.json"
        self.lock_path = self.root / LOCK_NAME
        self._lock_fd: int | None = None

    def run_dir(self, run: int) -> Path:
        """The run folder of run ``run``."""
        return self.root / "runs" / f"run-{run:05d}"

    def open(self, record: Mapping[str, Any]) -> bool:
        """Lock the folder, then create it and ``sweep.json`` or check an existing one matches.

        The lock is held until :meth:`close`.

        Args:
            record: The sweep description (``format``, ``scenario``, ``design`` and any
                extra informational keys).

        Returns:
            Whether an existing sweep was found (a resume).

        Raises:
            UserError: If another sweep holds the folder, if it holds a different sweep, or
                if it is a non-sweep folder that is not empty. Nothing is changed then.
        """
        if self.root.exists() and not self.root.is_dir():
            raise UserError(
                f"'{self.root}' is a file, not a folder; choose a new or empty --out folder."
            )
        if self.root.exists() and not self.meta.exists() and self._foreign_files():
            raise UserError(
                f"The folder '{self.root}' is not empty and is not a sweep folder (no"
                " sweep.json); choose a new or empty --out folder."
            )
        self.lock()
        try:
            return self._open(record)
        except BaseException:
            self.close()
            raise

    def _foreign_files(self) -> bool:
        """Whether the folder holds anything but a lock file (or is not a folder at all)."""
        if not self.root.is_dir():
            return True
        return any(p.name != LOCK_NAME for p in self.root.iterdir())

    def lock(self) -> None:
        """Take the folder's lock (creating the folder), or say which sweep holds it.

        Raises:
            UserError: If another process holds the lock, or the folder cannot be created.
        """
        if self._lock_fd is not None:
            return
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise UserError(
                f"Cannot create the sweep folder '{self.root}': {exc.strerror or exc}."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(
                f"The sweep folder '{self.root}' is in use by another sweep ({holder}). Wait"
                " for it to finish (or stop it) and start this sweep again to resume, or"
                " choose another --out folder."
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError:  # who holds it is information only
            pass
        self._lock_fd = fd

    def close(self) -> None:
        """Release the folder's lock (if held)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock

    def _open(self, record: Mapping[str, Any]) -> bool:
        if self.meta.exists():
            try:
                old = json.loads(self.meta.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise UserError(f"Cannot read '{self.meta}': {exc}.") from None
            new = json.loads(json.dumps(dict(record), default=str))
            differ = [k for k in IDENTITY_KEYS if old.get(k) != new.get(k)]
            if differ:
                detail = _first_difference(old, new, differ)
                raise UserError(
                    f"The folder '{self.root}' holds a different sweep ({detail})."
                    " Start it again with the same arguments to resume it, or choose a new"
                    " --out folder."
                )
            return True
        if self._foreign_files():
            raise UserError(
                f"The folder '{self.root}' is not empty and is not a sweep folder (no"
                " sweep.json); choose a new or empty --out folder."
            )
        self.parts.mkdir(parents=True, exist_ok=True)
        (self.root / "runs").mkdir(exist_ok=True)
        atomic_write_json(self.meta, dict(record))
        return False

    def write_part(self, row: Mapping[str, Any]) -> None:
        """Write one finished run's row as ``results/part-<run>.parquet``, atomically."""
        self.parts.mkdir(parents=True, exist_ok=True)
        df = pd.DataFrame([dict(row)])
        atomic_write_bytes(self.parts / f"part-{int(row['run']):06d}.parquet", _parquet_bytes(df))

    def _part_files(self) -> list[Path]:
        if not self.parts.is_dir():
            return []
        return sorted(p for p in self.parts.iterdir() if _PART.match(p.name))

    def done(self) -> pd.DataFrame:
        """``run``, ``param_hash`` and ``status`` of every recorded run."""
        cols = ["run", "param_hash", "status"]
        frames = []
        if self.results.exists():
            frames.append(pd.read_parquet(self.results, columns=cols))
        frames += [pd.read_parquet(p, columns=cols) for p in self._part_files()]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
        return pd.concat(frames, ignore_index=True).drop_duplicates("run", keep="last")

    def consolidate(self, drop_runs: set[int] | None = None) -> pd.DataFrame:
        """Fold the part files into ``results.parquet`` (sorted by run) and delete them.

        Args:
            drop_runs: Runs whose old rows are discarded (e.g. failed runs being retried).

        Returns:
            The consolidated results, one row per run in design order.
        """
        parts = self._part_files()
        frames = []
        if self.results.exists():
            frames.append(pd.read_parquet(self.results))
        frames += [pd.read_parquet(p) for p in parts]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True)
        if drop_runs:
            df = df[~df["run"].isin(drop_runs)]
        df = df.drop_duplicates("run", keep="last").sort_values("run", kind="stable")
        df = df.reset_index(drop=True)
        atomic_write_bytes(self.results, _parquet_bytes(df))
        for p in parts:
            p.unlink(missing_ok=True)
        return df

    def clear_run_dir(self, run: int) -> Path:
        """Remove a stale (unfinished) run folder so the run can be redone; return its path."""
        path = self.run_dir(run)
        if path.exists():
            shutil.rmtree(path)
        return path

    def read(self) -> pd.DataFrame:
        """All recorded rows (results.parquet plus any unconsolidated parts), in run order."""
        frames = []
        if self.results.exists():
            frames.append(pd.read_parquet(self.results))
        frames += [pd.read_parquet(p) for p in self._part_files()]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True).drop_duplicates("run", keep="last")
        return df.sort_values("run", kind="stable").reset_index(drop=True)

    def record(self) -> dict[str, Any]:
        """The contents of ``sweep.json``."""
        return json.loads(self.meta.read_text(encoding="utf-8"))


def _read_holder(fd: int) -> str:
    """Who holds a lock file, in words, from what it wrote into it."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "its process has not yet written who it is"
    return (
        f"process {info.get('pid')} on host {info.get('host', '?')}, started"
        f" {info.get('started', '?')}"
    )


def _first_difference(old: Mapping[str, Any], new: Mapping[str, Any], keys: list[str]) -> str:
    """Name the first differing field, e.g. ``design.n: 8 != 16``."""
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub):
                    va, vb = json.dumps(a.get(sub))[:80], json.dumps(b.get(sub))[:80]
                    return f"{key}.{sub} was {va}, now {vb}"
        return f"{key} differs"
    return "unknown difference"
