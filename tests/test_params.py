"""Declared parameters: validation of types, ranges, NaN and unknown names."""

from __future__ import annotations

import math

import pytest

from biohybrid.errors import UserError
from biohybrid.params import Param, ParameterSet

DECL = ParameterSet(
    {
        "diffusion": Param(300.0, "µm²/s", "ATP diffusion coefficient", ge=0),
        "n_cells": Param(10, "cells", "Number of cells", ge=1, kind=int),
        "genotype": Param("pkd1", "1", "Germline mutation", kind=str, choices=("pkd1", "pkd2")),
        "block": Param(False, "1", "Block gap junctions", kind=bool),
    },
    title="model 'test'",
)


def test_defaults_are_filled_and_floats_coerced() -> None:
    out = DECL.resolve({"diffusion": 5})
    assert out == {"diffusion": 5.0, "n_cells": 10, "genotype": "pkd1", "block": False}
    assert isinstance(out["diffusion"], float)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"diffusion": -1.0}, "greater than or equal to 0"),
        ({"diffusion": math.nan}, "diffusion"),
        ({"diffusion": math.inf}, "diffusion"),
        ({"diffusion": "fast"}, "Valid values: a number >= 0"),
        ({"n_cells": 2.5}, "an integer >= 1"),
        ({"genotype": "pkd3"}, "one of: pkd1, pkd2"),
    ],
)
def test_bad_values_name_the_parameter_and_valid_range(values: dict, fragment: str) -> None:
    with pytest.raises(UserError) as err:
        DECL.resolve(values)
    msg = str(err.value)
    assert next(iter(values)) in msg
    assert fragment in msg


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(UserError, match="Did you mean 'diffusion'"):
        DECL.resolve({"difusion": 1.0})


def test_bool_is_not_a_number() -> None:
    with pytest.raises(UserError):
        DECL.resolve({"diffusion": True})
