"""Start the ``biohybrid viz`` server: validate first, then hand over to ``solara run``.

The scenario and overrides are resolved here, before anything starts, so a bad scenario or
parameter fails with the engine's :class:`~biohybrid.errors.UserError` (exit status 2 from
the CLI) instead of a broken page. The server process then replaces this one (``exec``), so
stopping the PID that was started stops the server.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

from biohybrid.errors import UserError
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


def check_port(host: str, port: int) -> None:
    """Raise :class:`UserError` if ``host:port`` cannot be bound (e.g. already in use)."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {port}.")
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port."
            ) from None


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
        port: TCP port.

    Returns:
        ``(argv, env)`` for the server process.

    Raises:
        UserError: On an invalid scenario, override, seed or port.
    """
    config = load_config(scenario, overrides, seed)
    check_port(host, port)
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
    print(f"biohybrid viz: serving '{scenario}' at http://{host}:{port}/ (Ctrl-C to stop)")
    sys.stdout.flush()
    os.execve(argv[0], argv, env)
