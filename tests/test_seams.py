"""The engine's seams: populations, qualified parameters, n-D shapes, motility, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import biohybrid
from biohybrid.cells.motility import Motility
from biohybrid.errors import UserError
from biohybrid.intracellular import OdeSystem
from biohybrid.model import HybridModel
from biohybrid.models.demo import DemoModel
from biohybrid.models.paracrine import ParacrineModel
from biohybrid.organ import Biomarker
from biohybrid.params import Param, ParameterSet
from biohybrid.scenario import load_scenario
from biohybrid.settings import merge_run
from biohybrid.stages import Stage

EXE = str(Path(sys.executable).with_name("biohybrid"))
SMALL = {"t_end": 60.0, "shape": [8, 8, 4]}


def test_two_populations_each_integrated_with_its_own_species() -> None:
    m = ParacrineModel(run=SMALL, seed=2)
    assert set(m.cells) == {"source", "responder"}
    assert m.cells["source"].system.species == ("a",)
    assert m.cells["responder"].system.species == ("r",)
    occupied = np.concatenate([c.sites() for c in m.cells.values()])
    assert np.unique(occupied).size == occupied.size  # at most one cell per site
    while m.running:
        m.step()
    a = m.cells["source"].species("a")
    # da/dt = k_act (1 - a) - k_inact a from a = 0: a(t) = a* (1 - exp(-(k_act + k_inact) t))
    k_act, k_inact = 0.1, 0.02
    expected = k_act / (k_act + k_inact) * (1 - np.exp(-(k_act + k_inact) * 60.0))
    np.testing.assert_allclose(a, expected, rtol=1e-5)
    df = m.recorder.frame()
    assert df["n_source"].iloc[-1] == m.cells["source"].n == 8
    assert df["source_activity"].iloc[-1] == pytest.approx(expected, rel=1e-5)
    assert df["bound_mean"].iloc[-1] > 0  # responders sensed the secreted factor


def test_qualified_parameter_reaches_only_its_population() -> None:
    sc = load_scenario("paracrine", {"responder.k_on": 0.0, "source.secretion": 5.0})
    assert sc.params["responder.k_on"] == 0.0
    assert sc.params["source.secretion"] == 5.0
    m = ParacrineModel(params=sc.params, run=SMALL, seed=1)
    assert m.cells["responder"].params["k_on"] == 0.0
    assert "k_on" not in m.cells["source"].params
    assert m.cells["source"].params["secretion"] == 5.0
    # an unqualified name is accepted where it is unique
    assert load_scenario("paracrine", {"hop_rate": 0.2}).params["responder.hop_rate"] == 0.2


def test_two_population_model_runs_from_the_cli(tmp_path: Path, cli_env: dict) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [EXE, "run", "paracrine", "--set", "t_end=60", "--set", "shape=[8,8,4]",
         "--set", "responder.k_on=0", "--out", str(out)],
        capture_output=True, text=True, env=cli_env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "completed"
    assert man["scenario"]["params"]["responder.k_on"] == 0.0
    df = biohybrid.run("paracrine", overrides={**SMALL, "responder.k_on": 0.0}, write=False)
    assert df.biomarkers["bound_mean"].max() == 0.0  # no binding when k_on = 0


@pytest.mark.parametrize("shape", [[30], [12, 10], [8, 7, 6]])
def test_demo_runs_in_every_dimension(shape: list[int]) -> None:
    m = DemoModel(params={"seed_radius": 2.0}, run={"t_end": 120.0, "shape": shape}, seed=1)
    assert m.lattice.shape == tuple(shape)
    n0 = m.table.n_alive
    coords = m.lattice.coordinates(m.table.attrs["site"][m.table.live_rows()])
    centre = (np.asarray(shape) - 1) / 2
    assert np.all(((coords - centre) ** 2).sum(axis=1) <= 4.0)  # a ball of radius 2 sites
    while m.running:
        m.step()
    assert m.table.n_alive >= n0 - 2
    assert m.recorder.frame()["signal_total"].iloc[-1] > 0


def test_nx_ny_shorthand_still_works_and_contradictions_are_refused() -> None:
    assert load_scenario("demo", {"nx": 7, "ny": 5}).run["shape"] == [7, 5]
    assert load_scenario("demo", {"shape": [9]}).run["shape"] == [9]  # replaces the file's nx/ny
    with pytest.raises(UserError, match="contradicts"):
        load_scenario("demo", {"shape": [9, 9], "nx": 4})


class _Walkers(HybridModel):
    name = "walkers-test"
    time_units = "s"
    parameters = ParameterSet({"rate": Param(0.5, "1/s", "hop rate", ge=0)})
    run_defaults: ClassVar[dict[str, Any]] = {
        "t_end": 40.0, "dt_behaviour": 0.2, "dt_output": 40.0, "dt_ode": 40.0,
        "shape": [40, 40], "spacing": [2.0],
    }  # fmt: skip
    biomarkers = (Biomarker("n", "cells", "count", population="cell", reduce="count"),)

    def build_system(self, population: str) -> OdeSystem:
        return OdeSystem("tag", ("tag",), ParameterSet({}), lambda t, y, p, u: 0 * y, {"tag": 0})

    def setup(self) -> None:
        for i, site in enumerate(self.rng.choice(self.lattice.n_sites, 60, replace=False)):
            self.add_cell(int(site), state=[float(i)])

    def motility(self, cells: Any, rows: np.ndarray, y: Any) -> Motility:
        return Motility(rate=self.params["rate"])


def test_moving_cells_keep_their_rows_state_and_attributes() -> None:
    m = _Walkers(seed=4)
    m.table.add_attr("start", fill=-1.0)
    rows = m.table.live_rows()
    m.table.attrs["start"][rows] = m.table.attrs["site"][rows]
    tags = m.table.species_values("tag", rows).copy()
    while m.running:
        m.step()
    assert m.counters["moves"] > 100
    rows2 = m.table.live_rows()
    np.testing.assert_array_equal(rows2, rows)
    np.testing.assert_array_equal(m.table.species_values("tag", rows2), tags)
    sites = m.table.attrs["site"][rows2]
    assert np.unique(sites).size == sites.size
    for row in rows2:  # the Mesa agent sits where its row says
        agent = m.agent_at_row(int(row))
        assert m.site_of(agent.cell.coordinate) == m.table.attrs["site"][row]
    assert np.any(sites != m.table.attrs["start"][rows2])


# ---------------------------------------------------------------------- declaration errors
def _model(**kw: Any) -> type[HybridModel]:
    attrs = {
        "name": "err-test",
        "time_units": "s",
        "run_defaults": {"t_end": 10.0, "dt_output": 1.0, "dt_ode": 1.0, "shape": [3]},
        "biomarkers": (Biomarker("n", "cells", "count", population="cell", reduce="count"),),
        "build_system": lambda self, pop: OdeSystem(
            "z", ("z",), ParameterSet({}), lambda t, y, p, u: 0 * y, {"z": 0.0}
        ),
        "setup": lambda self: None,
    }
    attrs.update(kw)
    return type("ErrModel", (HybridModel,), attrs)


@pytest.mark.parametrize(
    ("cls_kw", "run", "fragment"),
    [
        ({}, {"dt_ode": 3.0}, "not a whole multiple of dt_ode"),
        ({}, {"dt_ode": 20.0}, "longer than t_end"),
        ({}, {"shape": [4, 0]}, "whole numbers >= 1"),
        ({}, {"shape": [2, 2, 2, 2]}, "1, 2 or 3 axes"),
        ({}, {"spacing": [1.0, 2.0]}, "one value per axis"),
        ({}, {"method": "euler"}, "rodas4"),
        ({}, {"splitting": "yoshida"}, "strang"),
        ({}, {"atol": {"nope": 1e-3}}, "unknown species 'nope'"),
        (
            {"build_stages": lambda self: [Stage("x", "dt_nowhere", lambda m, a, b: None)]},
            {},
            "unknown clock 'dt_nowhere'",
        ),
        (
            {"build_stages": lambda self: [Stage.ode()]},
            {},
            "must include Stage.output",
        ),
        (
            {
                "biomarkers": (
                    Biomarker("m", "1", "x", population="cell", species="w", reduce="mean"),
                )
            },
            {},
            "unknown species 'w'",
        ),
        (
            {"biomarkers": (Biomarker("m", "1", "x", population="glia", reduce="count"),)},
            {},
            "unknown population 'glia'",
        ),
    ],
)
def test_declaration_errors_name_the_problem(cls_kw: dict, run: dict, fragment: str) -> None:
    cls = _model(**cls_kw)
    with pytest.raises(UserError) as info:
        cls(run=run)
    assert fragment in str(info.value)


def test_unknown_population_and_ambiguous_names() -> None:
    with pytest.raises(UserError, match=r"Unknown population .neuron..*source, responder"):
        load_scenario("paracrine", {"neuron.k_on": 1.0})
    with pytest.raises(UserError, match="Unknown parameter 'k_of' of population 'responder'"):
        load_scenario("paracrine", {"responder.k_of": 1.0})
    with pytest.raises(UserError, match="responder"):
        ParacrineModel(run=SMALL).add_cell(0)  # which population? it must be named


def test_named_species_and_per_species_atol() -> None:
    sc = load_scenario("demo", {"atol": {"x": 1e-4}})
    run = merge_run(sc.run, {"t_end": 60.0, "nx": 6, "ny": 6})
    m = DemoModel(params=sc.params, run=run, seed=1)
    atol = np.asarray(m.stepper.atol, dtype=float).ravel()
    assert atol.tolist() == [1e-9, 1e-4]  # r keeps the scalar default, x gets its own
    y = m.population().state()
    np.testing.assert_array_equal(y["x"], m.table.species_values("x"))
    with pytest.raises(UserError, match="unknown species 'q'"):
        y["q"]


def test_a_lattice_that_cannot_fit_is_refused_before_allocating(monkeypatch) -> None:
    """Issue 12 item 17: estimate memory first, refuse with the estimate and free memory."""
    import biohybrid.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1.0e6)  # 1 MB free
    with pytest.raises(UserError, match=r"needs about .* GB .* free memory"):
        DemoModel(run={"nx": 40, "ny": 40})
    monkeypatch.setattr(memory, "available_bytes", lambda: 1.0e12)
    assert DemoModel(run={"nx": 4, "ny": 4}).lattice.n_sites == 16
    # the estimate is linear in the number of sites, at the measured 5.25 kB per site
    assert memory.estimate_bytes(10**6) == pytest.approx(5.25e9)


def test_the_cli_refuses_4096_squared_quickly(tmp_path: Path, cli_env: dict) -> None:
    out = tmp_path / "big"
    proc = subprocess.run(
        [EXE, "run", "demo", "--set", "nx=4096", "--set", "ny=4096", "--out", str(out)],
        capture_output=True, text=True, env=cli_env, timeout=120,
    )  # fmt: skip
    free = __import__("biohybrid.memory", fromlist=["x"]).available_bytes()
    if free is not None and free > 4096**2 * 5250:  # pragma: no cover - a huge machine
        pytest.skip("this machine could hold 4096² sites")
    assert proc.returncode == 2, proc.stderr
    assert "free memory" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
