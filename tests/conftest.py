"""Shared fixtures: small, fast settings for the demo scenario."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def fast_demo() -> dict:
    """Overrides that make the demo scenario run in about a second."""
    return {"t_end": 180.0, "nx": 16, "ny": 16, "seed_radius": 3.0}


@pytest.fixture
def cli_env() -> dict:
    """Environment for CLI subprocesses (no colour codes, wide console)."""
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"})
    return env
