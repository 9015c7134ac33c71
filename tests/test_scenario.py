"""Scenario files and overrides: every bad input is a UserError naming the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from biohybrid.errors import UserError
from biohybrid.registry import bundled_scenarios
from biohybrid.scenario import load_scenario, parse_assignments


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sc.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_resolves_with_units_and_overrides() -> None:
    sc = load_scenario("demo", {"t_end": 60, "diffusion": 10.0}, seed=7)
    assert sc.model == "demo"
    assert sc.seed == 7
    assert sc.run["t_end"] == 60.0
    assert sc.params["diffusion"] == 10.0
    assert sc.params["k_off"] == 60.0  # a declared default fills in


def test_every_bundled_scenario_resolves() -> None:
    names = bundled_scenarios()
    assert "demo" in names
    for name in names:
        assert load_scenario(name).name == name


def test_unknown_scenario_lists_bundled_ones() -> None:
    with pytest.raises(UserError, match=r"Unknown scenario 'dem0'.*Did you mean 'demo'.*demo"):
        load_scenario("dem0")


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_scenario(str(tmp_path / "nope.toml"))


def test_unknown_set_parameter_suggests_closest() -> None:
    with pytest.raises(UserError) as err:
        load_scenario("demo", {"difusion": 1.0})
    msg = str(err.value)
    assert "Did you mean 'diffusion'" in msg
    assert "t_end" in msg and "k_on" in msg  # lists the valid names


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"diffusion": -5.0}, "greater than or equal to 0"),
        ({"diffusion": "fast"}, "a number >= 0"),
        ({"diffusion": float("nan")}, "diffusion"),
        ({"nx": 2.5}, "an integer"),
        ({"t_end": 0}, "greater than 0"),
    ],
)
def test_bad_values_are_rejected(overrides: dict, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        load_scenario("demo", overrides)


def test_malformed_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, 'model = "demo"\n[run\nt_end = 1\n')
    with pytest.raises(UserError, match="Malformed scenario file"):
        load_scenario(str(path))


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = _write(tmp_path, 'model = "demo"\n[parms]\nk_on = 1.0\n')
    with pytest.raises(UserError, match=r"Unknown key 'parms'.*Did you mean 'params'"):
        load_scenario(str(path))


def test_unknown_model(tmp_path: Path) -> None:
    path = _write(tmp_path, 'model = "demos"\n')
    with pytest.raises(UserError, match=r"Unknown model 'demos'.*Known models: .*demo"):
        load_scenario(str(path))


def test_bad_value_in_file_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, 'model = "demo"\n[params]\ndiffusion = -1.0\n')
    with pytest.raises(UserError, match=r"diffusion.*sc.toml"):
        load_scenario(str(path))


def test_scenario_given_as_path(tmp_path: Path) -> None:
    path = _write(tmp_path, 'model = "demo"\nseed = 3\n[run]\nt_end = 30.0\n')
    sc = load_scenario(str(path))
    assert (sc.name, sc.seed, sc.run["t_end"]) == ("sc", 3, 30.0)


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b=2.5", "c=true", "d=pkd1", "e=1e-3"]) == {
        "a": 1,
        "b": 2.5,
        "c": True,
        "d": "pkd1",
        "e": 1e-3,
    }
    with pytest.raises(UserError, match="NAME=VALUE"):
        parse_assignments(["t_end"])
