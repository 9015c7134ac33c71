"""Start the ``biohybrid viz`` server: validate first, then hand over to ``solara run``.

The scenario, the overrides and the address are checked here, before anything starts, and
the model is built once (so a value that is in range but cannot be set up, such as an
initial radius of ``1e308``, is caught): bad input fails with the engine's
:class:`~biohybrid.errors.UserError` (exit status 2 from the CLI) instead of a broken page.
A bad ``--host`` is reported as a host problem, a busy or forbidden ``--port`` as a port
problem, and ``--port 0`` becomes a free port before the address is printed. The server
process then replaces this one (``exec``), so stopping the PID that was started stops the
server.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

from biohybrid.errors import UserError, setup_errors
from biohybrid.params import check_whole
from biohybrid.viz.adapter import config_env, load_config

#: The module ``solara run`` serves.
APP_MODULE = "biohybrid.viz.app"
DEFAULT_PORT = 8765


def server_command(host: str, port: int) -> list[str]:
    """The ``solara run`` command line for the app on ``host:port``."""
    return [
        sys.executable, "-m", "solara", "run", APP_MODULE, "--host", host, "--port", str(port),
        "--production", "--no-open", "--no-check-version", "--log-level", "warning",
    ]  # fmt: skip


def _addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    if not isinstance(host, str) or not host.strip():
        raise UserError(
            f"--host must be an address of this machine, e.g. 127.0.0.1 (the default), ::1 or"
            f" 0.0.0.0; got {host!r}."
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        raise UserError(
            f"Cannot use --host '{host}': it is not a known host name or address ({detail})."
            " Give an address of this machine, e.g. 127.0.0.1 (the default), ::1 or 0.0.0.0."
        ) from None
    return [info[:2] + info[4:5] for info in infos]


def check_port(host: str, port: int) -> int:
    """Check that the server can listen on ``host:port``; return the port to use.

    Args:
        host: The address to listen on.
        port: The TCP port; 0 picks a free port now, so that the printed address is real.

    Returns:
        The port (the free port found when ``port`` is 0).

    Raises:
        UserError: If ``port`` is out of range, ``host`` is not an address of this machine
            (a host problem), or the port is in use or not allowed (a port problem).
    """
    port = check_whole(port, "--port", minimum=None)
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535 (0: any free port), got {port}.")
    family, _, address = _addresses(host, port)[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise UserError(
                    f"Cannot use --host '{host}': it is not an address of this machine"
                    f" ({exc.strerror}). Give an address of this machine, e.g. 127.0.0.1 (the"
                    " default), ::1 or 0.0.0.0."
                ) from None
            why = (
                "it is in use"
                if exc.errno == errno.EADDRINUSE
                else "it needs special privileges"
                if exc.errno == errno.EACCES
                else exc.strerror
            )
            raise UserError(
                f"Cannot listen on port {port} of {host} ({why}); choose another --port"
                " (e.g. --port 0 for any free port)."
            ) from None
        return int(s.getsockname()[1])


def prepare(
    scenario: str,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
) -> tuple[list[str], dict[str, str]]:
    """Validate a scenario and build the server's command and environment.

    Args:
        scenario: Scenario name or path.
        overrides: ``--set`` values.
        seed: Seed override.
        host: Address to bind (default localhost only).
        port: TCP port (0: any free port, chosen here).

    Returns:
        ``(argv, env)`` for the server process (``argv`` holds the real port).

    Raises:
        UserError: On an invalid scenario, override, seed, host or port, or a model that
            cannot be set up with these values.
    """
    seed = check_whole(seed, "--seed", none_ok=True)
    config = load_config(scenario, overrides, seed)
    port = check_port(host, port)
    sc = config.scenario
    with setup_errors(sc):  # build once: values that pass validation but cannot be set up
        sc.model_class(params=sc.params, run=sc.run, seed=sc.seed)
    env = dict(os.environ)
    env.update(config_env(config.scenario.source, overrides, seed))
    env.setdefault("MPLBACKEND", "Agg")
    env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"  # no calls home from a local server
    return server_command(host, port), env


def serve(
    scenario: str,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
) -> None:
    """Validate, print the address and replace this process with the Solara server."""
    argv, env = prepare(scenario, overrides, seed, host, port)
    port = int(argv[argv.index("--port") + 1])
    shown = f"[{host}]" if ":" in host else host
    print(f"biohybrid viz: serving '{scenario}' at http://{shown}:{port}/ (Ctrl-C to stop)")
    sys.stdout.flush()
    os.execve(argv[0], argv, env)
