"""A population whose cells run an imported SBML or CellML file (issue 13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from biohybrid.errors import UserError
from biohybrid.importers import import_model
from biohybrid.model import HybridModel
from biohybrid.organ import Biomarker
from biohybrid.populations import Population

DATA = Path(__file__).parent / "data"
CASE = DATA / "sbml" / "00001"  # SBML Test Suite case 00001: S1 -> S2, mass action


class _Imported(HybridModel):
    name = "imported-test"
    time_units = "s"
    populations = (Population("cell", model_file=str(CASE / "00001-sbml-l3v1.xml")),)
    run_defaults: ClassVar[dict[str, Any]] = {
        "t_end": 5.0, "dt_output": 0.1, "dt_ode": 0.1, "shape": [3, 2],
        "rtol": 1e-10, "atol": 1e-14,
    }  # fmt: skip
    biomarkers = (
        Biomarker("S1", "mol", "mean S1", population="cell", species="S1", reduce="mean"),
        Biomarker("S2", "mol", "mean S2", population="cell", species="S2", reduce="mean"),
    )

    def setup(self) -> None:
        for site in range(self.lattice.n_sites):
            self.add_cell(site)


def test_every_cell_runs_the_sbml_file_and_matches_the_suite() -> None:
    m = _Imported()
    assert m.population().system.species == ("S1", "S2")
    while m.running:
        m.step()
    df = m.recorder.frame()
    ref = pd.read_csv(CASE / "00001-results.csv", index_col="time")
    # the suite's own tolerances (00001-settings.txt): absolute 1e-7, relative 1e-4
    for name in ("S1", "S2"):
        sim = df[name].to_numpy()
        exp = ref[name].reindex(df.index, method="nearest").to_numpy()
        assert np.all(np.abs(sim - exp) <= 1e-7 + 1e-4 * np.abs(exp))
    y = m.population().state()
    assert np.ptp(y["S1"]) == 0.0  # identical cells stay identical in the batch


def test_cellml_file_as_a_cell_model() -> None:
    system = import_model(DATA / "cellml" / "hodgkin_huxley_squid_axon_model_1952_modified.cellml")
    assert len(system.species) == 4  # V, m, h, n (Hodgkin & Huxley 1952)
    dy = system.rhs(0.0, system.initial_state()[None, :], dict(system.params.defaults()), None)
    assert dy.shape == (1, 4) and np.all(np.isfinite(dy))


def test_unknown_file_kind_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"\.cellml.*\.sbml.*\.xml"):
        import_model(tmp_path / "model.txt")


def test_the_files_parameters_are_settable_by_qualified_name() -> None:
    m = _Imported(params={"cell.k1": 0.0})  # no reaction: S1 keeps its initial amount
    assert m.population().params["k1"] == 0.0
    while m.running:
        m.step()
    np.testing.assert_allclose(m.population().species("S1"), 1.5e-4, rtol=1e-12)
    with pytest.raises(UserError, match="Unknown parameter 'k9' of population 'cell'"):
        _Imported(params={"cell.k9": 1.0})
