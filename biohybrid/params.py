"""Declared parameters: every model parameter is declared once, with units and a meaning.

A model declares a :class:`ParameterSet` of :class:`Param`. Scenario files, ``--set``
overrides, sweeps and UI sliders are all validated against, and derived from, that one
declaration, so defaults live in exactly one place.

Validation uses pydantic (``create_model`` with ``extra="forbid"`` and
``allow_inf_nan=False``), so a NaN, a wrong type, or a value outside the declared range is
rejected with a message that names the parameter, its units and its valid range.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import pydantic

from biohybrid.errors import UserError, did_you_mean, list_choices


@dataclass(frozen=True)
class Param:
    """One declared model parameter.

    Attributes:
        default: The default value.
        units: Units as a short string, e.g. ``"µm^2/s"``; ``"1"`` for dimensionless.
        description: One-line meaning of the parameter.
        ge: Inclusive lower bound, or ``None``.
        le: Inclusive upper bound, or ``None``.
        gt: Exclusive lower bound, or ``None``.
        lt: Exclusive upper bound, or ``None``.
        kind: The Python type: ``float``, ``int``, ``bool`` or ``str``.
        choices: For ``str`` parameters, the allowed values.
        source: Citation for the default value, if it comes from a paper.
        optional: ``None`` is a valid value (meaning "derived from other settings").

    ``kind`` may also be ``list`` (a list of numbers, e.g. a shape) or ``dict`` (a number, or
    a table of positive numbers by name, e.g. a per-species tolerance); the bounds then apply
    to each number.
    """

    default: Any
    units: str
    description: str
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    kind: type = float
    choices: tuple[str, ...] | None = None
    source: str = ""
    optional: bool = False

    def range_text(self) -> str:
        """Describe the valid range, e.g. ``">= 0"`` or ``"one of: pkd1, pkd2"``."""
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        parts = []
        if self.gt is not None:
            parts.append(f"> {self.gt:g}")
        if self.ge is not None:
            parts.append(f">= {self.ge:g}")
        if self.lt is not None:
            parts.append(f"< {self.lt:g}")
        if self.le is not None:
            parts.append(f"<= {self.le:g}")
        kind = {
            float: "a number",
            int: "an integer",
            bool: "true/false",
            str: "text",
            list: "a list of numbers",
            dict: "a number or a table of numbers",
        }[self.kind]
        return kind + (" " + " and ".join(parts) if parts else "")


@dataclass(frozen=True)
class ParameterSet(Mapping[str, Param]):
    """An ordered, immutable collection of declared parameters.

    Attributes:
        params: Mapping from parameter name to its declaration.
        title: What these parameters belong to, for messages (e.g. ``"model 'demo'"``).
    """

    params: Mapping[str, Param]
    title: str = "parameters"
    _validator: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, p in self.params.items():
            if not name.isidentifier():
                raise ValueError(f"parameter name {name!r} is not a valid identifier")
            if p.kind is float and isinstance(p.default, float) and not math.isfinite(p.default):
                raise ValueError(f"default of {name!r} is not finite")
        fields: dict[str, Any] = {}
        for name, p in self.params.items():
            annotation: Any = p.kind
            if p.choices:
                from typing import Literal

                annotation = Literal[p.choices]  # type: ignore[valid-type]
            bounds = {"ge": p.ge, "le": p.le, "gt": p.gt, "lt": p.lt}
            number = Annotated[pydantic.StrictFloat | pydantic.StrictInt, pydantic.Field(**bounds)]
            if p.kind is float:
                annotation = pydantic.StrictFloat | pydantic.StrictInt
            elif p.kind is list:
                annotation = list[number]
                bounds = {}
            elif p.kind is dict:
                annotation = number | dict[str, number]
                bounds = {}
            if p.optional:
                annotation = annotation | None
            fields[name] = (annotation, pydantic.Field(default=p.default, **bounds))
        model = pydantic.create_model(
            "Params",
            __config__=pydantic.ConfigDict(extra="forbid", allow_inf_nan=False, strict=False),
            **fields,
        )
        object.__setattr__(self, "_validator", model)

    def __getitem__(self, key: str) -> Param:
        return self.params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def defaults(self) -> dict[str, Any]:
        """Return ``{name: default}`` for every parameter."""
        return {name: p.default for name, p in self.params.items()}

    def resolve(self, values: Mapping[str, Any] | None = None, where: str = "") -> dict[str, Any]:
        """Validate ``values`` against the declarations and fill in defaults.

        Args:
            values: Parameter values to set; every key must be a declared parameter.
            where: Where the values came from, for messages (e.g. a file name).

        Returns:
            ``{name: value}`` for every declared parameter, floats as ``float``.

        Raises:
            UserError: On an unknown name, a wrong type, a NaN/Inf, or an out-of-range value.
        """
        values = dict(values or {})
        origin = f" in {where}" if where else ""
        for key in values:
            if key not in self.params:
                raise UserError(
                    f"Unknown parameter '{key}'{origin} for {self.title}.{did_you_mean(key, self)}"
                    f" Valid parameters: {list_choices(self)}."
                )
        try:
            model = self._validator(**values)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            name = str(err["loc"][0]) if err["loc"] else "?"
            p = self.params.get(name)
            got = values.get(name, "?")
            if p is None:
                raise UserError(f"Invalid parameters{origin}: {err['msg']}.") from None
            raise UserError(
                f"Invalid value {got!r} for parameter '{name}'{origin} ({p.description}, in"
                f" {p.units}): {err['msg'].lower()}. Valid values: {p.range_text()}."
            ) from None
        out = model.model_dump()
        for name, p in self.params.items():
            if p.kind is float and out[name] is not None:
                out[name] = float(out[name])
        return out

    def table(self, values: Mapping[str, Any] | None = None) -> list[tuple[str, Any, str, str]]:
        """Return rows ``(name, value, units, description)`` for display.

        Args:
            values: Resolved values; defaults are shown where missing.

        Returns:
            One tuple per parameter, in declaration order.
        """
        values = values or {}
        return [
            (name, values.get(name, p.default), p.units, p.description)
            for name, p in self.params.items()
        ]
