"""Declared parameters: every model parameter is declared once, with units and a meaning.

A model declares a :class:`ParameterSet` of :class:`Param`. Scenario files, ``--set``
overrides, sweeps and UI sliders are all validated against, and derived from, that one
declaration, so defaults live in exactly one place.

Validation uses pydantic (``create_model`` with ``extra="forbid"`` and
``allow_inf_nan=False``), so a NaN, a wrong type, or a value outside the declared range is
rejected with a message that names the parameter, its units and its valid range.

Types are strict: ``true``/``false`` is not a number or an integer, ``1.5`` is not an
integer (``2.0`` is accepted as ``2``), ``1`` is not ``true`` and text is not a number.
NumPy scalars count as the matching Python scalars.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pydantic

from biohybrid.errors import UserError, did_you_mean, list_choices


def _plain(value: Any) -> Any:
    """A NumPy scalar as the matching Python scalar; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _number(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, bool):
        raise ValueError("true/false is not a number")
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ValueError("the number is too large") from None
    return value


def _whole(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, bool):
        raise ValueError("true/false is not a whole number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    if isinstance(value, str):
        raise ValueError("text is not a whole number")
    return value


def _truth(value: Any) -> Any:
    value = _plain(value)
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _text(value: Any) -> Any:
    value = _plain(value)
    if not isinstance(value, str):
        raise ValueError("expected text")
    return value


_ANNOTATIONS: dict[type, Any] = {
    float: Annotated[pydantic.StrictFloat, pydantic.BeforeValidator(_number)],
    int: Annotated[pydantic.StrictInt, pydantic.BeforeValidator(_whole)],
    bool: Annotated[pydantic.StrictBool, pydantic.BeforeValidator(_truth)],
    str: Annotated[pydantic.StrictStr, pydantic.BeforeValidator(_text)],
}


def show_value(value: Any) -> str:
    """A value as a user typed it: ``true``/``false`` for booleans, else its ``repr``."""
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Overrides(dict[str, Any]):
    """``{name: value}`` overrides that remember where they were given, for messages.

    The command line tags its ``--set`` values with ``origin="--set"``; a plain mapping
    from the Python API is reported as ``overrides``.

    Args:
        values: The overrides.
        origin: Where they were given (``"--set"``, ``"overrides"``).
    """

    def __init__(self, values: Mapping[str, Any] | None = None, origin: str = "overrides"):
        super().__init__(values or {})
        self.origin = origin


def overrides_origin(overrides: Any) -> str:
    """Where ``overrides`` were given: an :class:`Overrides`' origin, else ``"overrides"``."""
    return getattr(overrides, "origin", "overrides")


def check_overrides(overrides: Any, what: str = "overrides") -> dict[str, Any]:
    """Check that ``overrides`` is a ``{name: value}`` mapping with text names.

    Args:
        overrides: ``None`` or a mapping.
        what: How it was given, for messages.

    Returns:
        A plain ``dict`` copy (empty for ``None``).

    Raises:
        UserError: If it is not a mapping (e.g. the text ``"t_end=60"``) or a name is not text.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        hint = overrides.split("=", 1)
        example = (
            f"{{{hint[0].strip()!r}: {hint[1].strip()}}}"
            if len(hint) == 2 and hint[0].strip().isidentifier()
            else "{'t_end': 60.0}"
        )
        raise UserError(
            f"{what} must be a mapping of names to values, e.g. {example}; got the text"
            f" {overrides!r} (NAME=VALUE text is for the command line's --set)."
        )
    if not isinstance(overrides, Mapping):
        raise UserError(
            f"{what} must be a mapping of names to values, e.g. {{'t_end': 60.0}}; got a"
            f" {type(overrides).__name__}."
        )
    for key in overrides:
        if not isinstance(key, str):
            raise UserError(f"The names in {what} must be text, got {key!r}.")
    return dict(overrides)


def check_whole(
    value: Any, what: str, minimum: int | None = 0, none_ok: bool = False
) -> int | None:
    """Check a whole-number argument (a seed, a worker count): an ``int``, not a bool.

    Args:
        value: The value (a Python or NumPy integer).
        what: Its name for messages (e.g. ``"seed"``, ``"workers"``).
        minimum: The smallest value allowed (``None``: no bound, the caller checks).
        none_ok: Whether ``None`` (meaning "the default") is allowed.

    Returns:
        The value as an ``int`` (or ``None``).

    Raises:
        UserError: If it is not a whole number >= ``minimum``.
    """
    if value is None and none_ok:
        return None
    value = _plain(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
    ):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise UserError(
            f"{what} must be a whole number{bound}, got {show_value(value)}"
            f"{'' if isinstance(value, int | float) else f' ({type(value).__name__})'}."
        )
    return int(value)


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
            annotation: Any = _ANNOTATIONS.get(p.kind, p.kind)
            if p.choices:
                annotation = Annotated[
                    Literal[p.choices],  # type: ignore[valid-type]
                    pydantic.BeforeValidator(_text),
                ]
            bounds = {"ge": p.ge, "le": p.le, "gt": p.gt, "lt": p.lt}
            number = Annotated[_ANNOTATIONS[float], pydantic.Field(**bounds)]
            if p.kind is list:
                annotation = list[pydantic.StrictInt | pydantic.StrictFloat]
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
            msg = str(err["msg"]).removeprefix("Value error, ")
            if p is None:
                raise UserError(f"Invalid parameters{origin}: {msg}.") from None
            raise UserError(
                f"Invalid value {show_value(got)} for parameter '{name}'{origin}"
                f" ({p.description}, in {p.units}): {msg[:1].lower() + msg[1:]}."
                f" Valid values: {p.range_text()}."
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
