"""Errors a user can cause, and failures a run can end with.

A :class:`UserError` is a mistake in input (unknown scenario, bad parameter value, malformed
file). The command line prints its message as one paragraph, with no traceback, and exits
with status 2. A :class:`SimulationError` is a numerical failure inside a run (NaN, solver
failure); the runner records it in the manifest with status ``failed``.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Iterator
from typing import Any


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


@contextlib.contextmanager
def setup_errors(scenario: Any) -> Iterator[None]:
    """Report a model that cannot be set up with valid-looking values as a :class:`UserError`.

    Every value can be within its declared range and the set-up still fail on it, e.g. an
    initial radius of ``1e308`` overflows when squared. Use around building a model from a
    resolved scenario (a run, and ``biohybrid viz`` before its server starts), so such a
    value is reported with the values that were changed, instead of as a traceback.

    Args:
        scenario: The resolved :class:`~biohybrid.scenario.Scenario` (``name``, ``model``,
            ``overrides``).

    Raises:
        UserError: If an arithmetic error, a ``ValueError`` or a ``MemoryError`` escapes.
    """
    try:
        yield
    except (ArithmeticError, ValueError, MemoryError) as exc:
        changed = getattr(scenario, "overrides", None) or {}
        shown = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        hint = (
            f" The values changed from the scenario file were: {shown}."
            if shown
            else " Check the scenario file's values."
        )
        detail = str(exc) or "no detail"
        raise UserError(
            f"Cannot set up scenario '{getattr(scenario, 'name', '?')}' (model"
            f" '{getattr(scenario, 'model', '?')}'): {type(exc).__name__}: {detail}.{hint}"
            " A value may be valid on its own but too large to compute with."
        ) from None
