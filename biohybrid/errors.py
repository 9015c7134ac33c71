"""Errors a user can cause, and failures a run can end with.

A :class:`UserError` is a mistake in input (unknown scenario, bad parameter value, malformed
file). The command line prints its message as one paragraph, with no traceback, and exits
with status 2. A :class:`SimulationError` is a numerical failure inside a run (NaN, solver
failure); the runner records it in the manifest with status ``failed``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in user input; the message names the problem and the valid choices."""


class SimulationError(RuntimeError):
    """A numerical failure during a run (divergence, NaN or Inf, solver failure)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return a ``" Did you mean 'x'?"`` hint for the closest choice, or an empty string.

    Args:
        name: The misspelled name.
        choices: The valid names.

    Returns:
        A sentence suggesting the closest valid name, or ``""`` if none is close.
    """
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def list_choices(choices: Iterable[str], limit: int = 40) -> str:
    """Format valid choices as a comma-separated, sorted list.

    Args:
        choices: The valid names.
        limit: The most names to show before eliding.

    Returns:
        The formatted list.
    """
    items = sorted(choices)
    if len(items) > limit:
        return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"
    return ", ".join(items)
