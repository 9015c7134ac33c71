"""What a scenario can set for a model: its parameters, its populations' and the run settings.

This is the one place that decides where a name belongs (scenario files, ``--set``,
sweeps and the Python API all go through it):

* a run setting (``t_end``, ``dt_ode``, ``shape``, ``method`` …, see
  :data:`biohybrid.schedule.RUN_PARAMETERS`);
* a population's run setting, qualified: ``neuron.method``, ``neuron.rtol``,
  ``neuron.atol`` (in a file: ``[run.neuron]``);
* a model parameter (``diffusion``);
* a population parameter, qualified (``neuron.g_na``; in a file ``[params.neuron]``), or
  unqualified where the name is unique among the model's and every population's
  parameters.

Resolved parameters are one flat dict: model parameters by name, population parameters by
qualified name. Resolved run settings are a flat dict with ``shape`` and ``spacing`` always
filled in and ``populations``: ``{name: {method/rtol/atol}}`` for per-population overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from biohybrid.errors import UserError, did_you_mean, list_choices
from biohybrid.params import Param
from biohybrid.schedule import (
    POPULATION_RUN_SETTINGS,
    check_output_intervals,
    geometry_from_run,
    run_parameter_set,
)

if TYPE_CHECKING:
    from biohybrid.model import HybridModel


def _populations(model_cls: type[HybridModel]) -> dict[str, Any]:
    return {p.name: p for p in model_cls.populations}


def declarations(model_cls: type[HybridModel]) -> dict[str, Param]:
    """Every settable name of a model with its declaration (qualified where needed)."""
    out: dict[str, Param] = dict(model_cls.parameters.params)
    for pop in model_cls.populations:
        for name, p in pop.declared_parameters.items():
            out[f"{pop.name}.{name}"] = p
    run_set = run_parameter_set(model_cls)
    out.update(run_set.params)
    if len(model_cls.populations) > 1:
        for pop in model_cls.populations:
            for name in POPULATION_RUN_SETTINGS:
                out[f"{pop.name}.{name}"] = run_set[name]
    return out


def locate(model_cls: type[HybridModel], name: str, where: str = "") -> tuple[str, str]:
    """Where a settable name belongs.

    Args:
        model_cls: The model class.
        name: As the user wrote it (qualified or not).
        where: Origin for messages (``"--set"``, a file name).

    Returns:
        ``("run" | "params", canonical name)``; population names come back qualified.

    Raises:
        UserError: An unknown or ambiguous name, naming the valid choices.
    """
    run_set = run_parameter_set(model_cls)
    pops = _populations(model_cls)
    origin = f" in {where}" if where else ""
    if name in run_set:
        return "run", name
    if name in model_cls.parameters:
        return "params", name
    if "." in name:
        pop_name, sub = name.split(".", 1)
        if pop_name not in pops:
            raise UserError(
                f"Unknown population '{pop_name}' in '{name}'{origin} for model"
                f" '{model_cls.name}'.{did_you_mean(pop_name, pops)} Populations:"
                f" {', '.join(pops)}."
            )
        if sub in POPULATION_RUN_SETTINGS:
            return "run", name
        if sub in pops[pop_name].declared_parameters:
            return "params", name
        valid = list(pops[pop_name].declared_parameters) + list(POPULATION_RUN_SETTINGS)
        raise UserError(
            f"Unknown parameter '{sub}' of population '{pop_name}'{origin}."
            f"{did_you_mean(sub, valid)} Its parameters: {', '.join(valid)}."
        )
    owners = [p for p in pops.values() if name in p.declared_parameters]
    if len(owners) == 1:
        return "params", f"{owners[0].name}.{name}"
    if len(owners) > 1:
        options = ", ".join(f"{p.name}.{name}" for p in owners)
        raise UserError(
            f"Parameter '{name}'{origin} is declared by several populations; qualify it: {options}."
        )
    valid = list(declarations(model_cls))
    raise UserError(
        f"Unknown parameter '{name}'{origin} for model '{model_cls.name}'."
        f"{did_you_mean(name, valid)} Model parameters: {list_choices(model_cls.parameters)}."
        + "".join(
            f" Population '{p.name}': {list_choices(p.declared_parameters)}."
            for p in pops.values()
            if len(p.declared_parameters)
        )
        + f" Run settings: {list_choices(run_set)}."
    )


def _flatten(section: str, values: Mapping[str, Any], model_cls: type[HybridModel]) -> dict:
    """Flatten ``[params.<pop>]`` / ``[run.<pop>]`` sub-tables into qualified names."""
    pops = _populations(model_cls)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in pops and isinstance(value, Mapping):
            for sub, v in value.items():
                out[f"{key}.{sub}"] = v
        else:
            out[key] = value
    return out


def split_settings(
    model_cls: type[HybridModel], values: Mapping[str, Any] | None, where: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``{name: value}`` into run settings and parameters (canonical names).

    Raises:
        UserError: An unknown or ambiguous name.
    """
    run: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name, value in (values or {}).items():
        section, canonical = locate(model_cls, str(name), where)
        (run if section == "run" else params)[canonical] = value
    return run, params


#: Geometry settings that replace each other: setting one drops the other from a base.
_GEOMETRY_ALIASES = {
    "shape": ("nx", "ny"),
    "nx": ("shape",),
    "ny": ("shape",),
    "spacing": ("dx",),
    "dx": ("spacing",),
}


def merge_run(base: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Run settings ``base`` (a file's, or resolved ones) updated by ``updates``.

    Setting ``shape`` replaces the base's ``nx``/``ny`` (and vice versa), ``spacing``
    replaces ``dx``, so a ``--set shape=[30]`` over a file with ``nx = 40`` is not a
    contradiction; giving both in one place still is.
    """
    out = dict(base)
    for name in updates:
        for alias in _GEOMETRY_ALIASES.get(name, ()):
            if alias not in updates:
                out.pop(alias, None)
    out.update(updates)
    return out


def resolve_params(
    model_cls: type[HybridModel], values: Mapping[str, Any] | None, where: str = ""
) -> dict[str, Any]:
    """Validate parameter values and fill in defaults (one flat, qualified dict).

    Raises:
        UserError: An unknown name or an invalid value.
    """
    flat = _flatten("params", dict(values or {}), model_cls)
    model_values: dict[str, Any] = {}
    pop_values: dict[str, dict[str, Any]] = {p.name: {} for p in model_cls.populations}
    for name, value in flat.items():
        section, canonical = locate(model_cls, name, where)
        if section == "run":
            raise UserError(
                f"'{name}'{' in ' + where if where else ''} is a run setting, not a parameter:"
                " put it in [run] (or set it with --set)."
            )
        if "." in canonical:
            pop, sub = canonical.split(".", 1)
            pop_values[pop][sub] = value
        else:
            model_values[canonical] = value
    out = model_cls.parameters.resolve(model_values, where=where)
    for pop in model_cls.populations:
        resolved = pop.declared_parameters.resolve(pop_values[pop.name], where=where)
        out.update({f"{pop.name}.{k}": v for k, v in resolved.items()})
    return out


def resolve_run(
    model_cls: type[HybridModel], values: Mapping[str, Any] | None, where: str = ""
) -> dict[str, Any]:
    """Validate run settings, fill in defaults and the geometry (``shape``, ``spacing``).

    Raises:
        UserError: An unknown name or an invalid value.
    """
    flat = _flatten("run", dict(values or {}), model_cls)
    flat.pop("populations", None)
    given = set(flat)
    run_set = run_parameter_set(model_cls)
    plain: dict[str, Any] = {}
    per_pop: dict[str, dict[str, Any]] = {}
    pops = _populations(model_cls)
    for name, value in flat.items():
        if "." in name and name.split(".", 1)[0] in pops:
            pop, sub = name.split(".", 1)
            if sub not in POPULATION_RUN_SETTINGS:
                raise UserError(
                    f"Unknown run setting '{sub}' for population '{pop}'"
                    f"{' in ' + where if where else ''}; per-population run settings:"
                    f" {', '.join(POPULATION_RUN_SETTINGS)}."
                )
            per_pop.setdefault(pop, {})[sub] = value
        else:
            plain[name] = value
    run = run_set.resolve(plain, where=where)
    run.update(geometry_from_run(run, given))
    check_output_intervals(run, model_cls.time_units)
    checked: dict[str, dict[str, Any]] = {}
    for pop, settings in per_pop.items():
        base = {k: run[k] for k in POPULATION_RUN_SETTINGS}
        resolved = run_set.resolve(
            {**{k: v for k, v in run.items() if k != "populations"}, **base, **settings},
            where=f"[run.{pop}]" + (f" of {where}" if where else ""),
        )
        checked[pop] = {k: resolved[k] for k in settings}
    run["populations"] = checked
    return run


def resolve_model_settings(
    model_cls: type[HybridModel],
    params: Mapping[str, Any] | None,
    run: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
    """Resolve a model's parameters and run settings for construction.

    Returns:
        ``(model_params, {population: its own params}, run)``.
    """
    flat = resolve_params(model_cls, params)
    model_params = {k: v for k, v in flat.items() if "." not in k}
    pop_params: dict[str, dict[str, Any]] = {p.name: {} for p in model_cls.populations}
    for k, v in flat.items():
        if "." in k:
            pop, sub = k.split(".", 1)
            pop_params[pop][sub] = v
    return model_params, pop_params, resolve_run(model_cls, run)
