"""Scenarios: small declarative TOML files that name a model and set its parameters.

A scenario file looks like::

    description = "One line saying what this scenario shows"
    model = "demo"          # a model name from `biohybrid list --models`
    seed = 42

    [run]                   # run settings, in the model's time units
    t_end = 1440.0
    dt_output = 30.0
    nx = 40
    ny = 40

    [params]                # model parameters by their declared names
    diffusion = 6000.0

Every key is validated: unknown keys (with the closest valid name suggested), wrong types,
NaN or out-of-range values are :class:`~biohybrid.errors.UserError`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biohybrid.errors import UserError, did_you_mean
from biohybrid.io import check_run_name
from biohybrid.params import check_overrides, check_whole, overrides_origin
from biohybrid.registry import find_scenario, get_model
from biohybrid.settings import merge_run, resolve_params, resolve_run, split_settings

TOP_LEVEL_KEYS = ("name", "description", "model", "seed", "run", "params")


@dataclass(frozen=True)
class Scenario:
    """A fully resolved scenario: every parameter and run setting has a validated value.

    Attributes:
        name: Scenario name (the file stem unless the file sets ``name``).
        model: Model name.
        description: One-line description.
        seed: Random seed.
        params: Resolved model parameters.
        run: Resolved run settings.
        source: The scenario file, if any.
    """

    name: str
    model: str
    description: str
    seed: int
    params: dict[str, Any]
    run: dict[str, Any]
    source: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def model_class(self) -> type:
        """The model class."""
        return get_model(self.model)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the resolved scenario."""
        return {
            "name": self.name,
            "model": self.model,
            "description": self.description,
            "seed": self.seed,
            "source": self.source,
            "overrides": dict(self.overrides),
            "run": dict(self.run),
            "params": dict(self.params),
        }


def parse_value(text: str) -> Any:
    """Parse a command-line value as a TOML literal (number, bool, string, array).

    Args:
        text: E.g. ``"1e-3"``, ``"true"``, ``"pkd1"``, ``"[1, 2]"``.

    Returns:
        The parsed value; unquoted text that is not a TOML literal is returned as a string.
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """Parse ``NAME=VALUE`` strings (from ``--set``) into a dict.

    Raises:
        UserError: If an item has no ``=``.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--set expects NAME=VALUE, got '{item}' (e.g. --set t_end=100).")
        name, value = item.split("=", 1)
        out[name.strip()] = parse_value(value.strip())
    return out


def read_scenario_file(path: Path) -> dict[str, Any]:
    """Read and structurally check a scenario file.

    Raises:
        UserError: If the file is not valid TOML or has unknown or mistyped top-level keys.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"Malformed scenario file '{path}': {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"Cannot read scenario file '{path}': {exc}.") from None
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise UserError(
                f"Unknown key '{key}' in scenario file '{path}'.{did_you_mean(key, TOP_LEVEL_KEYS)}"
                f" Valid keys: {', '.join(TOP_LEVEL_KEYS)}."
            )
    if "model" not in data:
        raise UserError(f"Scenario file '{path}' does not name a model (model = \"...\").")
    for key, kind in (("model", str), ("description", str), ("name", str)):
        if key in data and not isinstance(data[key], kind):
            raise UserError(f"In scenario file '{path}', '{key}' must be text.")
    if "name" in data:
        check_run_name(data["name"], f"scenario file '{path}'")
    for key in ("run", "params"):
        if key in data and not isinstance(data[key], dict):
            raise UserError(f"In scenario file '{path}', '{key}' must be a table ([{key}]).")
    if "seed" in data and (not isinstance(data["seed"], int) or isinstance(data["seed"], bool)):
        raise UserError(f"In scenario file '{path}', 'seed' must be a whole number.")
    return data


def load_scenario(
    scenario: str | Path,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> Scenario:
    """Load, resolve and validate a scenario.

    Args:
        scenario: A bundled scenario name or a path to a scenario file.
        overrides: ``{name: value}`` for model parameters and run settings (``t_end``,
            ``dt_output``, ...), as given by ``--set``.
        seed: Overrides the scenario's seed.

    Returns:
        The resolved scenario.

    Raises:
        UserError: On any invalid input, naming the problem and the valid choices.
    """
    path = find_scenario(str(scenario))
    data = read_scenario_file(path)
    model_cls = get_model(data["model"])
    run_values = dict(data.get("run", {}))
    param_values = dict(data.get("params", {}))
    where = f"scenario file '{path.name}'"
    # Validate the file on its own first, so errors point at the file.
    resolve_run(model_cls, run_values, where=f"[run] of {where}")
    resolve_params(model_cls, param_values, where=f"[params] of {where}")
    origin = overrides_origin(overrides)
    overrides = check_overrides(overrides, origin)
    seed = check_whole(seed, "The seed", none_ok=True)
    over_run, over_params = split_settings(model_cls, overrides, where=origin)
    run_values = merge_run(_flatten_run(model_cls, run_values), over_run)
    param_values = {**param_values, **over_params}
    run = resolve_run(model_cls, run_values, where=origin if overrides else where)
    params = resolve_params(model_cls, param_values, where=origin if overrides else where)
    if seed is None:
        seed = check_whole(data.get("seed", 0), f"The seed in {where}")
    return Scenario(
        name=data.get("name", path.stem),
        model=model_cls.name,
        description=data.get("description", ""),
        seed=int(seed),
        params=params,
        run=run,
        source=str(path),
        overrides=overrides,
    )


def _flatten_run(model_cls: type, run_values: dict[str, Any]) -> dict[str, Any]:
    """``[run.<population>]`` sub-tables as qualified names, so ``--set`` can override them."""
    pops = {p.name for p in model_cls.populations}
    out: dict[str, Any] = {}
    for key, value in run_values.items():
        if key in pops and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
