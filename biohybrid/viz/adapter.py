"""The bridge between a biohybrid scenario and Mesa's SolaraViz.

SolaraViz re-creates a model on *Reset* as ``type(model)(**user_values)``; biohybrid models
take ``Model(params=..., run=..., seed=...)``. :func:`viz_model_class` builds a thin
subclass of the scenario's model whose constructor takes the model's parameters as keyword
arguments and resolves them through the scenario (file values, then ``--set`` overrides,
then the user's inputs), so the browser and the CLI validate identically.
:func:`user_params` turns the model's declared parameters into SolaraViz inputs, labelled
with their units, starting from the resolved scenario values (the CLI's defaults).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from biohybrid.errors import UserError
from biohybrid.params import Param
from biohybrid.scenario import Scenario, load_scenario

#: Environment variables through which ``biohybrid viz`` hands the scenario to the server.
ENV_SCENARIO = "BIOHYBRID_VIZ_SCENARIO"
ENV_SET = "BIOHYBRID_VIZ_SET"
ENV_SEED = "BIOHYBRID_VIZ_SEED"

#: Number of slider positions between a parameter's bounds.
SLIDER_STEPS = 200


def viz_model_class(scenario: Scenario) -> type:
    """A subclass of the scenario's model constructed from keyword parameters.

    Args:
        scenario: The resolved scenario (its ``--set`` overrides and seed are kept).

    Returns:
        A class whose ``__init__(**params)`` resolves ``params`` on top of the scenario and
        builds the model; it raises :class:`~biohybrid.errors.UserError` on invalid values.
    """
    base = scenario.model_class

    def init(self: Any, **params: Any) -> None:
        # SolaraViz's Reset also passes Mesa's own ``scenario`` object (and may pass ``rng``
        # or ``seed``); the biohybrid scenario is fixed here, so only a seed is taken.
        params.pop("scenario", None)
        seed = params.pop("seed", None)
        seed = params.pop("rng", seed)
        seed = scenario.seed if seed is None else int(seed)
        sc = load_scenario(scenario.source, {**scenario.overrides, **params}, seed)
        base.__init__(self, params=sc.params, run=sc.run, seed=sc.seed)
        self.viz_scenario = sc

    return type(base.__name__, (base,), {"__init__": init, "__module__": base.__module__})


def slider_range(p: Param, value: float) -> tuple[float, float, float]:
    """Bounds and step of a float slider for a declared parameter.

    The declared bounds are used where given (an exclusive bound is moved in by one step);
    an open upper end becomes four times the current value (1 when it is 0).

    Args:
        p: The declaration.
        value: The current (scenario) value.

    Returns:
        ``(min, max, step)`` with ``min <= value <= max``.
    """
    hi = p.le if p.le is not None else p.lt
    if hi is None:
        hi = 4.0 * abs(value) if value != 0 else 1.0
    lo = p.ge if p.ge is not None else p.gt
    if lo is None:
        lo = -hi if value < 0 else 0.0
    lo, hi = min(lo, value), max(hi, value)
    step = (hi - lo) / SLIDER_STEPS
    if step > 0:  # round the step to 2 significant digits for readable values
        step = float(f"{step:.2g}")
    if p.gt is not None and lo <= p.gt:
        lo = min(p.gt + step, value)
    if p.lt is not None and hi >= p.lt:
        hi = max(p.lt - step, value)
    return float(lo), float(hi), float(step)


def user_params(scenario: Scenario) -> dict[str, dict[str, Any]]:
    """SolaraViz inputs for the model's declared parameters.

    Args:
        scenario: The resolved scenario; its values are the inputs' starting values.

    Returns:
        ``{name: options}`` in SolaraViz's dict format (``SliderFloat``, ``SliderInt``,
        ``Select`` or ``Checkbox``), labels ``"name (units)"``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, p in scenario.model_class.parameters.items():
        value = scenario.params[name]
        units = f"{p.units}, " if p.units and p.units not in ("1", "-") else ""
        shown = value if isinstance(value, str | bool) else f"{value:.3g}"
        label = f"{name} ({units}default {shown})"
        if p.choices:
            out[name] = {
                "type": "Select",
                "value": value,
                "values": list(p.choices),
                "label": label,
            }
        elif p.kind is bool:
            out[name] = {"type": "Checkbox", "value": bool(value), "label": label}
        elif p.kind is int:
            lo = int(p.ge if p.ge is not None else (p.gt + 1 if p.gt is not None else 0))
            hi = int(p.le if p.le is not None else max(4 * int(value), lo + 10))
            out[name] = {
                "type": "SliderInt", "value": int(value), "min": min(lo, int(value)),
                "max": max(hi, int(value)), "step": 1, "label": label,
            }  # fmt: skip
        elif p.kind is float and math.isfinite(value):
            lo, hi, step = slider_range(p, float(value))
            out[name] = {
                "type": "SliderFloat", "value": float(value), "min": lo, "max": hi,
                "step": step, "label": label,
            }  # fmt: skip
        else:
            out[name] = {"type": "InputText", "value": str(value), "label": label}
    return out


@dataclass(frozen=True)
class VizConfig:
    """What the server shows: the resolved scenario and the SolaraViz pieces built from it.

    Attributes:
        scenario: The resolved scenario.
        model_class: See :func:`viz_model_class`.
        model_params: See :func:`user_params`.
    """

    scenario: Scenario
    model_class: type
    model_params: dict[str, dict[str, Any]]

    def initial_values(self) -> dict[str, Any]:
        """The inputs' starting values, ``{name: value}``."""
        return {k: v["value"] for k, v in self.model_params.items()}


def config_env(scenario: str, overrides: Mapping[str, Any] | None, seed: int | None) -> dict:
    """Environment variables that hand a scenario to the server (see :func:`load_config`)."""
    env = {ENV_SCENARIO: str(scenario), ENV_SET: json.dumps(dict(overrides or {}))}
    if seed is not None:
        env[ENV_SEED] = str(int(seed))
    return env


def load_config(
    scenario: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    env: Mapping[str, str] | None = None,
) -> VizConfig:
    """Resolve the scenario to show, from arguments or from the environment.

    Args:
        scenario: Scenario name or path; default ``$BIOHYBRID_VIZ_SCENARIO`` or ``demo``.
        overrides: ``--set`` values; default ``$BIOHYBRID_VIZ_SET`` (a JSON object).
        seed: Seed override; default ``$BIOHYBRID_VIZ_SEED``.
        env: The environment (default ``os.environ``).

    Returns:
        The configuration.

    Raises:
        UserError: On an invalid scenario, override or seed.
    """
    env = os.environ if env is None else env
    if scenario is None:
        scenario = env.get(ENV_SCENARIO, "demo")
    if overrides is None:
        try:
            overrides = json.loads(env.get(ENV_SET, "{}") or "{}")
        except json.JSONDecodeError as exc:
            raise UserError(f"{ENV_SET} must be a JSON object: {exc}.") from None
        if not isinstance(overrides, dict):
            raise UserError(f"{ENV_SET} must be a JSON object, e.g. '{{\"t_end\": 100}}'.")
    if seed is None and env.get(ENV_SEED):
        seed = int(env[ENV_SEED])
    sc = load_scenario(scenario, overrides, seed)
    return VizConfig(scenario=sc, model_class=viz_model_class(sc), model_params=user_params(sc))
