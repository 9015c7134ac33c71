"""The engine: rows follow agents through division and death; clocks line up; ODEs are right."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from biohybrid.errors import UserError
from biohybrid.intracellular import OdeSystem
from biohybrid.model import HybridModel
from biohybrid.models.demo import DemoModel
from biohybrid.organ import Biomarker
from biohybrid.params import Param, ParameterSet
from biohybrid.schedule import Schedule
from biohybrid.tissue import FieldSpec


def _decay_rhs(t: float, y: np.ndarray, p: dict, u: np.ndarray) -> np.ndarray:
    return -p["k"] * y + u[:, :1] * 0.0


class ClockModel(HybridModel):
    """Cells with y' = -k y; records when each process runs."""

    name = "clock-test"
    time_units = "s"
    parameters = ParameterSet({"k": Param(0.5, "1/s", "decay rate", ge=0)})
    run_defaults: ClassVar[dict[str, Any]] = {
        "t_end": 8.0,
        "dt_ode": 0.5,
        "dt_field": 0.25,
        "dt_behaviour": 1.0,
        "dt_output": 2.0,
        "nx": 3,
        "ny": 3,
        "rtol": 1e-10,
        "atol": 1e-12,
    }
    biomarkers = (Biomarker("y_mean", "1", "mean state"),)

    def build_system(self, population: str) -> OdeSystem:
        return OdeSystem(
            "decay",
            ("y",),
            ParameterSet({"k": Param(0.5, "1/s", "decay rate")}),
            _decay_rhs,
            {"y": 1.0},
            inputs=("f",),
        )

    def build_fields(self) -> list[FieldSpec]:
        return [FieldSpec("f", diffusion=1.0)]

    def setup(self) -> None:
        self.log: dict[str, list[float]] = {"ode": [], "field": [], "behaviour": [], "output": []}
        for s in range(self.nx * self.ny):
            self.add_cell(s)

    def cell_inputs(self, cells: Any, rows: np.ndarray) -> np.ndarray:
        self.log["ode"].append(self.t)
        return super().cell_inputs(cells, rows)

    def cell_outputs(self, cells: Any, rows: np.ndarray, y: Any) -> dict:
        self.log["field"].append(self.t)
        return {}

    def behaviour(self, cells: Any, rows: np.ndarray, y: Any, dt: float) -> tuple:
        self.log["behaviour"].append(self.t)
        return super().behaviour(cells, rows, y, dt)

    def measure(self) -> dict[str, float]:
        if hasattr(self, "log"):
            self.log["output"].append(self.t)
        return {"y_mean": float(self.table.species_values("y").mean())}


def test_clocks_line_up() -> None:
    m = ClockModel(seed=1)
    while m.running:
        m.step()
    assert m.t == 8.0
    np.testing.assert_allclose(m.log["ode"], np.arange(0, 8, 0.5))
    np.testing.assert_allclose(m.log["field"], np.arange(0, 8, 0.25))
    np.testing.assert_allclose(m.log["behaviour"], np.arange(1, 8.5, 1.0))
    np.testing.assert_allclose(m.log["output"], [0, 2, 4, 6, 8])  # t = 0 row, then every 2 s
    assert m.counters["ode_macro_steps"] == 16
    assert m.counters["field_steps"] == 32


def test_ode_matches_exact_solution_across_macro_steps() -> None:
    m = ClockModel(params={"k": 0.7}, seed=1)
    while m.running:
        m.step()
    df = m.recorder.frame()
    np.testing.assert_allclose(
        df["y_mean"].to_numpy(), np.exp(-0.7 * df.index.to_numpy()), rtol=1e-6
    )


def test_long_horizons_do_not_drift() -> None:
    s = Schedule.from_clocks(
        t_end=1000.0, dt_ode=0.1, dt_field=0.1, dt_behaviour=0.1, dt_output=0.1
    )
    assert s.n_ticks == 10000
    assert s.time(s.n_ticks) == pytest.approx(1000.0, abs=1e-12)
    assert s.n_outputs == 10000


@pytest.mark.parametrize(
    "clocks",
    [
        {"t_end": 10.0, "dt_ode": 0.3, "dt_field": 0.2, "dt_behaviour": 1.0, "dt_output": 1.0},
        {"t_end": 10.5, "dt_ode": 0.5, "dt_field": 0.5, "dt_behaviour": 1.0, "dt_output": 1.0},
        {"t_end": 10.0, "dt_ode": -1.0, "dt_field": 0.5, "dt_behaviour": 1.0, "dt_output": 1.0},
    ],
)
def test_clocks_that_do_not_line_up_are_user_errors(clocks: dict) -> None:
    with pytest.raises(UserError):
        Schedule.from_clocks(**clocks)


def _check_rows_follow_agents(m: HybridModel) -> None:
    agents = list(m.agents)
    rows = [a.row for a in agents]
    assert len(set(rows)) == len(rows), "two agents share a row"
    assert m.table.n_alive == len(agents)
    np.testing.assert_array_equal(np.sort(rows), m.table.live_rows())
    for a in agents:
        assert m.table.attrs["site"][a.row] == m.site_of(a.cell.coordinate)
        assert m.agent_at_row(a.row) is a


def test_rows_follow_agents_through_division_and_death() -> None:
    m = DemoModel(
        params={"seed_radius": 2.0, "div_rate": 0.02, "death_rate": 0.002},
        run={"t_end": 600.0, "nx": 12, "ny": 12},
        seed=3,
    )
    _check_rows_follow_agents(m)
    while m.running:
        m.step()
        _check_rows_follow_agents(m)
    assert m.counters["divisions"] > 10
    assert m.counters["deaths"] > 0


def test_daughter_inherits_parent_state_and_freed_rows_are_reused() -> None:
    m = DemoModel(params={"seed_radius": 1.0}, run={"nx": 5, "ny": 5}, seed=0)
    parent = next(iter(m.agents))
    m.table.row(parent.row)[:] = [0.25, 0.75]
    daughter = m.divide_cell(parent)
    assert daughter is not None
    np.testing.assert_array_equal(m.table.row(daughter.row), [0.25, 0.75])
    assert daughter.cell in parent.cell.connections.values()
    freed = daughter.row
    m.remove_cell(daughter)
    assert not m.table.is_alive(freed)
    again = m.divide_cell(parent)
    assert again is not None and again.row == freed
    _check_rows_follow_agents(m)


def test_contact_inhibition_blocks_division_when_surrounded() -> None:
    m = DemoModel(params={"seed_radius": 5.0}, run={"nx": 3, "ny": 3}, seed=0)
    centre = m.agent_at_row(int(np.flatnonzero(m.table.attrs["site"] == 4)[0]))
    assert m.divide_cell(centre) is None


def test_same_seed_same_trajectory_different_seed_differs() -> None:
    run = {"t_end": 300.0, "nx": 12, "ny": 12}
    params = {"seed_radius": 2.0, "div_rate": 0.02}
    frames = []
    for seed in (5, 5, 6):
        m = DemoModel(params=params, run=run, seed=seed)
        while m.running:
            m.step()
        frames.append(m.recorder.frame())
    assert frames[0].equals(frames[1])
    assert not frames[0].equals(frames[2])


def test_field_couples_cells_to_each_other() -> None:
    """Secretion by the colony raises the signal and, through it, the response."""
    base = {"t_end": 120.0, "nx": 12, "ny": 12}
    hi = DemoModel(params={"s_max": 50.0, "seed_radius": 3.0}, run=base, seed=1)
    lo = DemoModel(params={"s_max": 0.0, "seed_radius": 3.0}, run=base, seed=1)
    for m in (hi, lo):
        while m.running:
            m.step()
    assert hi.measure()["signal_total"] > 2 * lo.measure()["signal_total"]
    assert hi.measure()["mean_response"] > lo.measure()["mean_response"]
