"""Atomic file writes for run folders, and checked creation of output folders.

Every file in a run folder is written to a temporary file in the same directory and moved
into place with :func:`os.replace`, so a reader (or a run killed mid-write) never sees a
half-written file. Files get the usual mode ``0666 & ~umask`` (people share run folders),
not the ``0600`` of a bare temporary file.

Output folders are made with :func:`make_output_dir`, which turns every way a folder can be
unusable (a file in the way, no permission, a read-only or virtual file system) into a
:class:`~biohybrid.errors.UserError` naming the folder; :func:`first_writes` removes a
folder this run created when its first files cannot be written, so a failed start never
leaves a half-made folder that blocks the next attempt.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from biohybrid.errors import UserError


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (the only portable way to read it)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a newly created regular file: ``0o666 & ~umask``."""
    return 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Args:
        path: Destination file; its directory must exist.
        data: The bytes to write.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, file_mode())  # mkstemp makes 0600; a run folder is shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (NumPy scalars allowed)."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _opt(option: str) -> str:
    return f" ({option})" if option else ""


def _problem(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_output_dir(path: str | Path, option: str = "") -> Path:
    """Check that ``path`` can become an output folder, without creating anything.

    The folder may exist (empty or not: callers decide what an existing folder means) but
    must be a directory; if it does not exist, its nearest existing ancestor must be a
    directory this process may write into.

    Args:
        path: The output folder.
        option: How the user gave it, for messages (``"--out"``, ``"out"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        UserError: If a file (or anything but a directory) is in the way, or the folder
            cannot be created there.
    """
    path = Path(path)
    try:
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                raise UserError(
                    f"The output folder '{path}'{_opt(option)} is an existing file, not a folder;"
                    " choose a new or empty folder."
                )
            return path
        parent = path.parent
        while not (parent.exists() or parent.is_symlink()) and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise UserError(
                f"Cannot create the output folder '{path}'{_opt(option)}: '{parent}' is a file, not"
                " a folder; choose another location."
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UserError(
                f"Cannot create the output folder '{path}'{_opt(option)}: no permission to write"
                f" in '{parent}'; choose another location."
            )
    except OSError as exc:  # e.g. a name too long, a loop of symbolic links
        raise UserError(
            f"Cannot use the output folder '{path}'{_opt(option)}: {_problem(exc)}; choose another"
            " location."
        ) from None
    return path


def make_output_dir(
    path: str | Path, option: str = "", subdirs: tuple[str, ...] = ()
) -> Path | None:
    """Create an empty output folder (with its parents), or refuse with a clear message.

    Args:
        path: The folder; it must not exist, or be an empty directory.
        option: How the user gave it, for messages.
        subdirs: Sub-folders to create inside it (e.g. ``("figures",)``).

    Returns:
        The topmost directory this call created (``path`` or one of its parents), to be
        removed if the first writes fail (see :func:`first_writes`); ``None`` if ``path``
        already existed.

    Raises:
        UserError: If ``path`` is a file or a non-empty folder, or cannot be created.
    """
    path = check_output_dir(path, option)
    if path.is_dir() and any(path.iterdir()):
        raise UserError(
            f"Output folder '{path}' already exists and is not empty; choose a new or empty"
            f" folder{_opt(option)}."
        )
    created = new_dirs_top(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for sub in subdirs:
            (path / sub).mkdir(exist_ok=True)
    except OSError as exc:
        if created is not None:
            remove_created(created)
        raise UserError(
            f"Cannot create the output folder '{path}'{_opt(option)}: {_problem(exc)}; choose"
            " another location."
        ) from None
    return created


def new_dirs_top(path: Path) -> Path | None:
    """The topmost of ``path`` and its parents that does not exist yet (``None``: it exists).

    Removing it undoes a ``path.mkdir(parents=True)``.
    """
    path = Path(path)
    if path.exists():
        return None
    top = path
    while not top.parent.exists() and top.parent != top.parent.parent:
        top = top.parent
    return top


def remove_created(top: Path | None) -> None:
    """Remove a directory tree made by :func:`make_output_dir` (``None``: nothing to do)."""
    if top is not None:
        shutil.rmtree(top, ignore_errors=True)


@contextlib.contextmanager
def first_writes(path: Path | None, created: Path | None, option: str = "") -> Iterator[None]:
    """Turn a failure of the first writes into an output folder into a :class:`UserError`.

    Use around the first files a run or sweep writes (its manifest and header): if one
    cannot be written (a full disk, a file-size limit, a read-only mount), the folder this
    run created (``created``, from :func:`make_output_dir`) is removed again, so the same
    ``--out`` can be used once the cause is fixed.

    Args:
        path: The output folder (``None``: nothing is written, nothing to guard).
        created: What :func:`make_output_dir` returned.
        option: How the user gave the folder, for messages.

    Raises:
        UserError: If an :class:`OSError` escapes the block.
    """
    try:
        yield
    except OSError as exc:
        if path is None:
            raise
        remove_created(created)
        name = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
        raise UserError(
            f"Cannot write into the output folder '{path}'{_opt(option)}{name}: {_problem(exc)}."
            " Nothing was kept; free space or choose another location and start again."
        ) from None


def is_regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a directory, device, FIFO or socket)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def check_scenario_path(path: Path) -> None:
    """Refuse a scenario path that exists but is not a readable regular file.

    A directory, a device (``/dev/zero``), a FIFO or a socket is named as such instead of
    being reported as missing (and is never opened: reading a FIFO would block).

    Args:
        path: The path the user gave as a scenario.

    Raises:
        UserError: If ``path`` exists and is not a regular file.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if stat.S_ISREG(mode):
        return
    kind = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    hint = " (give the .toml file inside it)" if stat.S_ISDIR(mode) else ""
    raise UserError(
        f"Scenario '{path}' is {kind}, not a scenario file{hint}. Give a bundled scenario name"
        " (biohybrid list) or a path to a .toml file."
    )


def check_run_name(name: str, where: str) -> str:
    """Check a scenario ``name`` that becomes a folder name under ``outputs/``.

    Args:
        name: The name (e.g. the ``name`` key of a scenario file).
        where: Where it was given, for messages.

    Returns:
        ``name``, unchanged.

    Raises:
        UserError: Unless it is one plain folder name: letters, digits, ``.``, ``_``, ``-``
            or ``+``, not starting with ``.`` (so no ``..``, no ``/``, no absolute path).
    """
    ok = (
        bool(name)
        and len(name) <= 128
        and not name.startswith(".")
        and all(ch.isalnum() or ch in "._+-" for ch in name)
    )
    if not ok:
        raise UserError(
            f"The scenario name {name!r} in {where} cannot be used as a folder name under"
            " outputs/: use letters, digits, '.', '_', '-' or '+' (not starting with '.',"
            ' at most 128 characters), e.g. name = "my-scenario".'
        )
    return name
